"""SQS event source mappings that poll like Lambda's: batches, visibility timeout, partial batch
failures, redrive to the queue's dead-letter queue, FIFO groups in order."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from typing import Any

from moto.awslambda.models import EventSourceMapping
from moto.awslambda.utils import get_backend
from moto.sqs.exceptions import QueueDoesNotExist, ReceiptHandleIsInvalid
from moto.sqs.models import sqs_backends

from localaws.locking import BACKEND_LOCK

from . import roles
from .common import SQS_POLL_SECONDS, _stopping
from .environments import _Environment
from .invocations import _queued

_LOG = logging.getLogger(__name__)


def _poll_sqs(mapping: EventSourceMapping) -> None:
    """Lambda's SQS poller for one mapping, until the mapping is deleted or moto is reset."""
    while not _stopping.is_set() and _still_mapped(mapping):
        try:
            if mapping.enabled:
                _deliver_sqs_batch(mapping)
            else:
                _stopping.wait(SQS_POLL_SECONDS)
        except Exception:
            _LOG.exception("SQS event source mapping %s failed", mapping.uuid)
            _stopping.wait(SQS_POLL_SECONDS)


def _still_mapped(mapping: EventSourceMapping) -> bool:
    with BACKEND_LOCK:
        backend = get_backend(mapping.account_id, mapping.region)
        return backend.get_event_source_mapping(mapping.uuid) is mapping


def _deliver_sqs_batch(mapping: EventSourceMapping) -> None:
    """Receive a batch, invoke the function with it, delete what it processed.

    A failed batch stays in flight until the queue's visibility timeout, then is received again
    (and moved to the queue's dead-letter queue by its redrive policy), as in Lambda.
    """
    queue_arn = mapping.event_source_arn
    _, _, _, region, account, name = queue_arn.split(":")
    sqs = sqs_backends[account][region]
    # Short polls under the lock, waits outside it: moto's long poll would hold the server.
    with BACKEND_LOCK:
        try:
            source = sqs.get_queue(name)
        except QueueDoesNotExist:
            source = None
        fn = get_backend(mapping.account_id, mapping.region).get_function(mapping.function_arn)
        refused = _poll_refused(fn.role, fn.function_name, queue_arn)
        if refused is not None:
            # Lambda keeps the mapping and retries; the messages stay in the queue.
            _LOG.warning("SQS event source mapping %s cannot poll: %s", mapping.uuid, refused)
            source = None
        if source is not None:
            _release_timed_out(source)
            messages = sqs.receive_message(
                name, mapping.batch_size, 0, int(source.attributes["VisibilityTimeout"])
            )
        else:
            messages = []
        if messages:
            event = {"Records": [_sqs_record(m, queue_arn, region) for m in messages]}
            environment = _Environment.of(fn)
    if not messages:
        _stopping.wait(SQS_POLL_SECONDS)
        return
    result = _queued(environment, event, str(uuid.uuid4()))
    if result is None or result.function_error:
        return
    failed = _batch_item_failures(mapping, result.payload, [m.id for m in messages])
    with BACKEND_LOCK:
        refused = roles.denial(fn.role, fn.function_name, "sqs:DeleteMessage", queue_arn)
        if refused is not None:
            _LOG.warning("SQS event source mapping %s cannot delete: %s", mapping.uuid, refused)
            return
        for message in messages:
            if message.id not in failed and message.receipt_handle:
                with contextlib.suppress(ReceiptHandleIsInvalid):
                    sqs.delete_message(name, message.receipt_handle)


def _poll_refused(role_arn: str, function_name: str, queue_arn: str) -> str | None:
    """The denial of a poll (ReceiveMessage, GetQueueAttributes) by the execution role."""
    for action in ("sqs:ReceiveMessage", "sqs:GetQueueAttributes"):
        refused = roles.denial(role_arn, function_name, action, queue_arn)
        if refused is not None:
            return refused
    return None


def _release_timed_out(queue: Any) -> None:
    """Forget the in-flight state of messages whose visibility timeout has passed.

    moto's receive_message skips a FIFO group while one of its messages is in flight, but
    releases timed-out messages one at a time as it meets them: of a failed batch that times
    out together, the group's first message is skipped (its later ones still count as in
    flight) and the last is received first, out of order. Released beforehand, the group is
    received from its first message, as SQS does.
    """
    for message in [m for m in queue.pending_messages if m.visible]:
        queue.pending_messages.discard(message)


def _batch_item_failures(mapping: EventSourceMapping, payload: bytes, ids: list[str]) -> set[str]:
    """The messages a ReportBatchItemFailures function reported; an unreadable report fails all."""
    if "ReportBatchItemFailures" not in (mapping.function_response_types or []):
        return set()
    try:
        response = json.loads(payload) or {}
        return {item["itemIdentifier"] for item in response.get("batchItemFailures") or []}
    except (ValueError, TypeError, KeyError, AttributeError):
        return set(ids)


def _sqs_record(message: Any, queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": message.sender_id,
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if message.group_id:
        attributes |= {
            "MessageGroupId": message.group_id,
            "MessageDeduplicationId": message.deduplication_id,
            "SequenceNumber": message.sequence_number,
        }
    record = {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {
            name: {
                "dataType": value["DataType"],
                "stringListValues": [],
                "binaryListValues": [],
                **{
                    key[0].lower() + key[1:]: value[key]
                    for key in ("StringValue", "BinaryValue")
                    if key in value
                },
            }
            for name, value in message.message_attributes.items()
        },
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.message_attributes:
        record["md5OfMessageAttributes"] = message.attribute_md5
    return record
