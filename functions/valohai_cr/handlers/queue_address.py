"""QueueAddressFunction: Custom::ValohaiQueueAddress."""

import boto3

from valohai_cr import runtime
from valohai_cr.lifecycle import CustomResource
from valohai_cr.queue_address import QueueAddressProvider


def _provider() -> QueueAddressProvider:
    secrets = boto3.client("secretsmanager", config=runtime.CLIENT_CONFIG)
    ssm = boto3.client("ssm", config=runtime.CLIENT_CONFIG)
    return QueueAddressProvider(ssm, runtime.notifier(secrets))


logger = runtime.logger("valohai-queue-address")
resource = CustomResource(_provider, logger)
handler = resource.handler
