"""The redelivery consumer: delivers queued events, signing each with a fresh timestamp.

Fed by the redelivery FIFO queue (an SQS event source reporting batch item failures). A message
that is not delivered is reported as failed, so SQS offers it again after its visibility
timeout, and moves it to the dead-letter queue after the queue's maxReceiveCount. Messages of a
message group (a setup) are handled in order: once one fails, the later ones of its group in the
batch are reported failed untried, as Lambda requires of FIFO batches, so that none overtakes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

from valohai_cr.delivery import Outcome, Sender
from valohai_cr.errors import ResourceFailure
from valohai_cr.notifier import (
    DELIVERY_BUDGET,
    Redelivery,
    SetupTokens,
    TokenCleanup,
    parse_message,
)
from valohai_cr.work import Work

log = logging.getLogger(__name__)


class QueueRecord(NamedTuple):
    """One message of a batch; `group` is its MessageGroupId (None outside a FIFO queue)."""

    message_id: str
    group: str | None
    body: str


class RedeliveryConsumer:
    def __init__(self, tokens: SetupTokens, sender: Sender) -> None:
        self._tokens = tokens
        self._sender = sender

    def consume(self, records: Iterable[QueueRecord], work: Work) -> list[str]:
        """Handle a batch in order; returns the ids of the messages to offer again."""
        failed: list[str] = []
        blocked: set[str] = set()
        for message_id, group, body in records:
            held_back = group is not None and group in blocked
            if held_back or not self._handled(message_id, body, work):
                failed.append(message_id)
                if group is not None:
                    blocked.add(group)
        return failed

    def _handled(self, message_id: str, body: str, work: Work) -> bool:
        try:
            self._handle(body, work)
        except (ValueError, ResourceFailure) as error:
            log.warning(
                "Redelivery failed, SQS will offer it again: %s",
                error,
                extra={"message_id": message_id},
            )
            return False
        except Exception:
            # One bad message must not stop the other setups: report it and carry on.
            log.exception("Unexpected error in redelivery", extra={"message_id": message_id})
            return False
        return True

    def _handle(self, body: str, work: Work) -> None:
        message = parse_message(body)
        if isinstance(message, TokenCleanup):
            # Every earlier message of the setup is done: nothing is left to sign.
            self._tokens.delete(message.token_secret_arn, work)
            return
        self._redeliver(message, work)
        if message.cleanup_token:
            self._tokens.delete(message.destination.token_secret_arn, work)

    def _redeliver(self, redelivery: Redelivery, work: Work) -> None:
        destination, event = redelivery.destination, redelivery.event
        token = self._tokens.read(destination.token_secret_arn, work)
        result = self._sender.deliver(
            event, destination.api_url, token, work.limited(DELIVERY_BUDGET)
        )
        if result.outcome is not Outcome.DELIVERED:
            raise ResourceFailure(f"{event.type.value} event {event.key}: {result.detail}")
        log.info("Redelivered the %s event", event.type.value, extra={"idempotency_key": event.key})
