"""NotificationFunction: Custom::ValohaiNotification."""

import boto3

from valohai_cr import runtime
from valohai_cr.lifecycle import CustomResource
from valohai_cr.notification import NotificationProvider

logger = runtime.logger("valohai-notification")
resource = CustomResource(
    lambda: NotificationProvider(
        runtime.notifier(boto3.client("secretsmanager", config=runtime.CLIENT_CONFIG))
    ),
    logger,
)
handler = resource.handler
