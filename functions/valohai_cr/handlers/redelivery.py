"""RedeliveryFunction: consumes the redelivery queue (SQS event source, ReportBatchItemFailures)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3

from valohai_cr import runtime
from valohai_cr.delivery import Sender, Urllib3Transport
from valohai_cr.notifier import SetupTokens, platform_key, platform_setting
from valohai_cr.redelivery import DeadLetters, QueueRecord, RedeliveryConsumer
from valohai_cr.work import Work

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

runtime.freeze_imports()

logger = runtime.logger("valohai-redelivery")
_secrets = boto3.client("secretsmanager", config=runtime.CLIENT_CONFIG)
consumer = RedeliveryConsumer(
    SetupTokens(_secrets),
    Sender(Urllib3Transport()),
    platform_key(_secrets),
    DeadLetters(
        platform_setting("REDELIVERY_DEAD_LETTER_QUEUE_URL"),
        int(platform_setting("REDELIVERY_MAX_RECEIVE_COUNT")),
        lambda: boto3.client("sqs", config=runtime.CLIENT_CONFIG),
    ),
    interval=float(platform_setting("REDELIVERY_INTERVAL_SECONDS")),
)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    records = (
        QueueRecord(
            record["messageId"],
            (record.get("attributes") or {}).get("MessageGroupId"),
            record["body"],
            int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1),
            int((record.get("attributes") or {}).get("SentTimestamp") or 0) / 1000,
        )
        for record in event.get("Records", [])
    )
    failed = consumer.consume(records, Work.for_lambda(context))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
