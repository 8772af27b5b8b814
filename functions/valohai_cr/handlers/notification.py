"""NotificationFunction: Custom::ValohaiNotification."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3

from valohai_cr import runtime
from valohai_cr.lifecycle import CustomResource
from valohai_cr.notification import NotificationProvider
from valohai_cr.notifier import notifier_from_environment

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


runtime.freeze_imports()


def _sqs() -> SQSClient:
    return boto3.client("sqs", config=runtime.CLIENT_CONFIG)


def _provider() -> NotificationProvider:
    secrets = boto3.client("secretsmanager", config=runtime.CLIENT_CONFIG)
    return NotificationProvider(notifier_from_environment(secrets, _sqs))


logger = runtime.logger("valohai-notification")
resource = CustomResource(_provider, logger, cloudformation=runtime.cloudformation)
handler = resource.handler
