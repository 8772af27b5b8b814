"""The redelivery consumer: delivers queued events, signing each with a fresh timestamp.

Fed by the redelivery FIFO queue (an SQS event source reporting batch item failures). A message
that is not delivered is reported as failed, so SQS offers it again after its visibility
timeout (the redelivery interval), and moves it to the dead-letter queue after the queue's
maxReceiveCount. SQS hands a new message out at once, so an event received for the first time
less than half an interval after it was queued is only put back: its first retry comes one
interval after the attempt that failed, as the contract says (one that waited behind others of
its setup that long is tried with them). Messages of a
message group (a setup) are handled in order: once one fails, the later ones of its group in the
batch are reported failed untried, as Lambda requires of FIFO batches, so that none overtakes it.

An event that fails on its last receipt (the queue's maxReceiveCount) is moved to the dead-letter
queue by the consumer itself, so that the setup's later messages, received (and counted) with
it, are handled rather than dead-lettered with it: a token deletion queued behind a final event
Valohai never took still runs.

Nothing in a message is trusted before its platform-key MAC is checked, and the token is found
from the setup the message names (the secret tagged with its stack id), never from the message.
A message that can never succeed (forged, malformed, refused by Valohai, or whose setup's token
is gone) is dropped with an error in the log rather than retried for a day.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from valohai_cr.delivery import Outcome, Sender
from valohai_cr.errors import PropertyError, ResourceFailure
from valohai_cr.notifier import (
    DELIVERY_BUDGET,
    ForgedMessage,
    PlatformKey,
    Redelivery,
    SetupTokens,
    TokenCleanup,
    open_message,
)
from valohai_cr.work import Work

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)


class QueueRecord(NamedTuple):
    """One message of a batch; `group` is its MessageGroupId (None outside a FIFO queue)."""

    message_id: str
    group: str | None
    body: str
    #: SQS's ApproximateReceiveCount: 1 the first time the message is handed out.
    receive_count: int = 1
    #: SQS's SentTimestamp, in Unix seconds: when it was queued.
    sent_at: float = 0.0


class DeadLetters:
    """The redelivery queue's dead-letter queue, and the receipt on which an event goes there."""

    def __init__(self, url: str, max_receive_count: int, make_client: Callable[[], SQSClient]):
        self.max_receive_count = max_receive_count
        self._url = url
        self._make_client = make_client
        self._client: SQSClient | None = None

    def put(self, record: QueueRecord, work: Work) -> None:
        if self._client is None:
            self._client = self._make_client()
        with work.step("moving an event given up on to the dead-letter queue"):
            self._client.send_message(
                QueueUrl=self._url,
                MessageBody=record.body,
                MessageGroupId=record.group or "ungrouped",
                MessageDeduplicationId=record.message_id,
            )


class RedeliveryConsumer:
    def __init__(
        self,
        tokens: SetupTokens,
        sender: Sender,
        key: PlatformKey,
        dead_letters: DeadLetters,
        *,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = tokens
        self._sender = sender
        self._key = key
        self._dead_letters = dead_letters
        self._interval = interval
        self._clock = clock

    def consume(self, records: Iterable[QueueRecord], work: Work) -> list[str]:
        """Handle a batch in order; returns the ids of the messages to offer again."""
        failed: list[str] = []
        blocked: set[str] = set()
        for record in records:
            held_back = record.group is not None and record.group in blocked
            if held_back or not self._handled(record, work):
                failed.append(record.message_id)
                if record.group is not None:
                    blocked.add(record.group)
        return failed

    def _handled(self, record: QueueRecord, work: Work) -> bool:
        """True when the message is done with (SQS deletes it), False to have it offered again."""
        extra = {"message_id": record.message_id}
        try:
            message = open_message(record.body, self._key.get(work))
            if isinstance(message, TokenCleanup):
                # Every earlier message of the setup is done: nothing is left to sign.
                token_arn = self._tokens.find(message.stack_id, work)
                if token_arn is not None:
                    self._tokens.delete(token_arn, work)
                return True
            if self._just_queued(record):
                log.info("Event queued just now: its first retry waits one interval", extra=extra)
                return False
            try:
                return self._redeliver(message, work)
            except ResourceFailure as error:
                if record.receive_count < self._dead_letters.max_receive_count:
                    raise
                self._dead_letters.put(record, work)
                log.error("Gave up on an event, moved to the dead-letter queue: %s", error)
                return True
        except ForgedMessage as error:
            log.error("Dropped a message the platform did not write: %s", error, extra=extra)
            return True
        except PropertyError as error:
            log.error("Dropped an event that cannot be sent: %s", error.reason, extra=extra)
            return True
        except ResourceFailure as error:
            log.warning("Redelivery failed, SQS will offer it again: %s", error, extra=extra)
            return False
        except ValueError as error:
            log.error("Dropped an unusable redelivery message: %s", error, extra=extra)
            return True
        except Exception:
            # One bad message must not stop the other setups: report it and carry on.
            log.exception("Unexpected error in redelivery", extra=extra)
            return False

    def _just_queued(self, record: QueueRecord) -> bool:
        return record.receive_count <= 1 and self._clock() - record.sent_at < self._interval / 2

    def _redeliver(self, redelivery: Redelivery, work: Work) -> bool:
        event = redelivery.event
        what = f"{event.type.value} event {event.key}"
        token_arn = self._tokens.find(event.stack_id, work)
        if token_arn is None:
            log.error("Dropped the %s: its setup's token is gone, nothing can sign it", what)
            return True
        token = self._tokens.read(token_arn, work)
        result = self._sender.deliver(
            event, redelivery.api_url, token, work.limited(DELIVERY_BUDGET)
        )
        if result.outcome is Outcome.REJECTED:
            log.error("Valohai rejected the %s: %s; not retrying it", what, result.detail)
            return True
        if result.outcome is not Outcome.DELIVERED:
            raise ResourceFailure(f"{what}: {result.detail}")
        log.info("Redelivered the %s event", event.type.value, extra={"idempotency_key": event.key})
        return True
