"""StackStatusFunction: forwards "CloudFormation Stack Status Change" events from EventBridge.

Not a custom resource: an exception here makes Lambda retry the asynchronous invocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from valohai_cr import runtime
from valohai_cr.forwarder import StackStatusForwarder
from valohai_cr.notifier import SetupTokens, notifier_from_environment
from valohai_cr.work import Work

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_sqs import SQSClient


runtime.freeze_imports()


def _sqs() -> SQSClient:
    return boto3.client("sqs", config=runtime.CLIENT_CONFIG)


logger = runtime.logger("valohai-stack-status")
_secrets = boto3.client("secretsmanager", config=runtime.CLIENT_CONFIG)
forwarder = StackStatusForwarder(
    boto3.client("cloudformation", config=runtime.CLIENT_CONFIG),
    SetupTokens(_secrets),
    notifier_from_environment(_secrets, _sqs),
)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    outcome = forwarder.forward(EventBridgeEvent(event), Work.for_lambda(context))
    logger.info("Stack status change handled", extra={"outcome": outcome})
    return {"outcome": outcome}
