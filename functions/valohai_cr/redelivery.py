"""The redelivery consumer: delivers queued events, signing each with a fresh timestamp.

Fed by the redelivery queue (an SQS event source reporting batch item failures). A message
that is not delivered is reported as failed, so SQS offers it again after its visibility
timeout, and moves it to the dead-letter queue after the queue's maxReceiveCount.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from valohai_cr.delivery import Outcome, Sender
from valohai_cr.errors import ResourceFailure
from valohai_cr.notifier import DELIVERY_BUDGET, Redelivery, SetupTokens
from valohai_cr.work import Work

log = logging.getLogger(__name__)


class RedeliveryConsumer:
    def __init__(self, tokens: SetupTokens, sender: Sender) -> None:
        self._tokens = tokens
        self._sender = sender

    def consume(self, messages: Iterable[tuple[str, str]], work: Work) -> list[str]:
        """Redeliver (message id, body) pairs; returns the ids of those to offer again."""
        failed = []
        for message_id, body in messages:
            try:
                self._redeliver(body, work)
            except (ValueError, ResourceFailure) as error:
                log.warning(
                    "Redelivery failed, SQS will offer it again: %s",
                    error,
                    extra={"message_id": message_id},
                )
                failed.append(message_id)
            except Exception:
                # One bad message must not stop the others: report it and carry on.
                log.exception("Unexpected error in redelivery", extra={"message_id": message_id})
                failed.append(message_id)
        return failed

    def _redeliver(self, body: str, work: Work) -> None:
        redelivery = Redelivery.from_message(body)
        destination, event = redelivery.destination, redelivery.event
        token = self._tokens.read(destination.token_secret_arn, work)
        result = self._sender.deliver(
            event, destination.api_url, token, work.limited(DELIVERY_BUDGET)
        )
        if result.outcome is not Outcome.DELIVERED:
            raise ResourceFailure(f"{event.type.value} event {event.key}: {result.detail}")
        log.info("Redelivered the %s event", event.type.value, extra={"idempotency_key": event.key})
        if redelivery.cleanup_token:
            self._tokens.delete(destination.token_secret_arn, work)
