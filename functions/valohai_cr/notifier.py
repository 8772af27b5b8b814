"""Notifying Valohai: the setup token, NotificationPolicy, and the durable redelivery path.

An event that is not delivered in time is put on the redelivery queue (REDELIVERY_QUEUE_URL, a
FIFO queue with one message group per setup) unsigned, with where to send it and which secret
holds the token; the queue's consumer signs it afresh. What a failed delivery does to the
CloudFormation operation is decided by `Stakes`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from valohai_cr.delivery import Outcome, Sender, Urllib3Transport, events_url
from valohai_cr.errors import ResourceFailure
from valohai_cr.events import Event, EventType
from valohai_cr.properties import Properties
from valohai_cr.tags import PURPOSE, SETUP_TOKEN_PURPOSE, STACK_ID, as_dict
from valohai_cr.work import Work

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

#: The most of a function's time one notification may take (attempts and backoff).
DELIVERY_BUDGET = 30.0
#: Time a delivery leaves unused, so that what it could not deliver can still be queued.
QUEUEING_RESERVE = 1.0
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{32,256}")
#: 2: FIFO messages, each naming its setup (stack_id) and its kind (event or token_cleanup).
MESSAGE_FORMAT = 2
REDELIVERY_QUEUE_ENV = "REDELIVERY_QUEUE_URL"


class Policy(StrEnum):
    """The NotificationPolicy property."""

    BEST_EFFORT = "BestEffort"
    REQUIRED = "Required"


class Stakes(Enum):
    """What an event that could not be delivered does to the operation that sent it."""

    #: A Delete: never fails; an event that cannot even be queued is logged and dropped.
    ADVISORY = "advisory"
    #: BestEffort: queued for redelivery; fails only when it cannot be queued.
    QUEUEABLE = "queueable"
    #: A registration under BestEffort: as QUEUEABLE, but a definitive rejection fails.
    ACCEPTANCE = "acceptance"
    #: Required: fails unless Valohai accepted it now.
    REQUIRED = "required"

    @classmethod
    def of(cls, request_type: str, policy: Policy, *, registration: bool = False) -> Stakes:
        if request_type == "Delete":
            return cls.ADVISORY
        if policy is Policy.REQUIRED:
            return cls.REQUIRED
        return cls.ACCEPTANCE if registration else cls.QUEUEABLE


class Delivery(StrEnum):
    """The `Delivery` attribute of a notifying resource."""

    DELIVERED = "delivered"
    QUEUED = "queued"
    DROPPED = "dropped"


class Destination(NamedTuple):
    api_url: str
    token_secret_arn: str


#: SQS's longest MessageGroupId; a longer stack ARN (a long stack name) is grouped by its hash.
MAX_GROUP_ID = 128


def message_group(stack_id: str) -> str:
    """The FIFO message group of a setup's messages: one group per setup, in order within it."""
    if len(stack_id) <= MAX_GROUP_ID:
        return stack_id
    return hashlib.sha256(stack_id.encode()).hexdigest()


class Redelivery(NamedTuple):
    """A queued event; `cleanup_token` deletes the token secret once this (final) event is in."""

    destination: Destination
    event: Event
    cleanup_token: bool = False

    @property
    def group(self) -> str:
        return message_group(self.event.stack_id)

    @property
    def deduplication_id(self) -> str:
        """The event's idempotency key: queueing the same event twice queues it once."""
        return self.event.key

    def to_message(self) -> str:
        return json.dumps(
            {
                "format": MESSAGE_FORMAT,
                "kind": "event",
                "api_url": self.destination.api_url,
                "token_secret_arn": self.destination.token_secret_arn,
                "stack_id": self.event.stack_id,
                "event_type": self.event.type.value,
                "idempotency_key": self.event.key,
                "body": self.event.body.decode(),
                "cleanup_token": self.cleanup_token,
            }
        )


class TokenCleanup(NamedTuple):
    """Deletes a setup's token secret, queued after its final event was delivered directly.

    In the setup's message group it runs only once every earlier message of the setup was
    delivered or dead-lettered, so no queued event is left without a token to sign it."""

    stack_id: str
    token_secret_arn: str

    @property
    def group(self) -> str:
        return message_group(self.stack_id)

    @property
    def deduplication_id(self) -> str:
        """Deterministic: a final event forwarded twice queues one cleanup."""
        return hashlib.sha256(f"token-cleanup\n{self.token_secret_arn}".encode()).hexdigest()

    def to_message(self) -> str:
        return json.dumps(
            {
                "format": MESSAGE_FORMAT,
                "kind": "token_cleanup",
                "stack_id": self.stack_id,
                "token_secret_arn": self.token_secret_arn,
            }
        )


QueuedMessage = Redelivery | TokenCleanup


def parse_message(message: str) -> QueuedMessage:
    """Parse a redelivery queue message; ValueError says what is wrong with it."""
    try:
        fields: dict[str, Any] = json.loads(message)
        if fields.get("format") != MESSAGE_FORMAT:
            raise ValueError(f"unsupported message format {fields.get('format')!r}")
        stack_id = str(fields["stack_id"])
        if fields["kind"] == "token_cleanup":
            return TokenCleanup(stack_id, str(fields["token_secret_arn"]))
        if fields["kind"] != "event":
            raise ValueError(f"unknown message kind {fields['kind']!r}")
        destination = Destination(str(fields["api_url"]), str(fields["token_secret_arn"]))
        event = Event(
            EventType(fields["event_type"]),
            str(fields["idempotency_key"]),
            str(fields["body"]).encode(),
            stack_id,
        )
        return Redelivery(destination, event, bool(fields.get("cleanup_token", False)))
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"malformed redelivery message: {type(error).__name__}: {error}"
        ) from error


class SetupTokens:
    """The setup-token secrets: read one, find a stack's, delete one after the final event."""

    def __init__(self, secrets: SecretsManagerClient) -> None:
        self._secrets = secrets

    def read(self, secret_arn: str, work: Work) -> str:
        with work.step(f"reading the setup token from {secret_arn}"):
            value = self._secrets.get_secret_value(SecretId=secret_arn).get("SecretString", "")
        token = value.strip()
        if not TOKEN_PATTERN.fullmatch(token):
            raise ResourceFailure(
                f"The secret {secret_arn} does not hold a setup token (expected 32-256 characters "
                "of letters, digits and ._~-): put the token Valohai gave you into it"
            )
        return token

    def find(self, stack_id: str, work: Work) -> str | None:
        """The ARN of the live setup-token secret tagged with `stack_id`, if there is one."""
        with work.step(f"looking for the setup token of {stack_id}"):
            pages = self._secrets.get_paginator("list_secrets").paginate(
                Filters=[
                    {"Key": "tag-key", "Values": [STACK_ID]},
                    {"Key": "tag-value", "Values": [stack_id]},
                ]
            )
            for page in pages:
                for secret in page.get("SecretList", []):
                    tags = as_dict(secret.get("Tags", []))
                    if tags.get(STACK_ID) == stack_id and tags.get(PURPOSE) == SETUP_TOKEN_PURPOSE:
                        return secret["ARN"]
        return None

    def delete(self, secret_arn: str, work: Work) -> None:
        """Force-delete a setup-token secret (only one tagged as such); gone already is fine."""
        with work.step(f"deleting the setup token secret {secret_arn}"):
            try:
                tags = as_dict(self._secrets.describe_secret(SecretId=secret_arn).get("Tags", []))
            except self._secrets.exceptions.ResourceNotFoundException:
                return
            if tags.get(PURPOSE) != SETUP_TOKEN_PURPOSE:
                raise ResourceFailure(f"Refusing to delete {secret_arn}: it is not a setup token")
            self._secrets.delete_secret(SecretId=secret_arn, ForceDeleteWithoutRecovery=True)
        log.info("Deleted the setup token secret", extra={"secret_arn": secret_arn})


class RedeliveryQueue:
    """The SQS FIFO queue the redelivery consumer reads; its client is made on first use.

    One message group per setup keeps a setup's messages in order while other setups' go on."""

    def __init__(self, url: str, make_client: Callable[[], SQSClient]) -> None:
        self._url = url
        self._make_client = make_client
        self._client: SQSClient | None = None

    def put(self, message: QueuedMessage) -> None:
        if self._client is None:
            self._client = self._make_client()
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=message.to_message(),
            MessageGroupId=message.group,
            MessageDeduplicationId=message.deduplication_id,
        )


class Notifier:
    def __init__(self, tokens: SetupTokens, sender: Sender, queue: RedeliveryQueue) -> None:
        self._tokens = tokens
        self._sender = sender
        self._queue = queue

    def notify(
        self,
        event: Event,
        destination: Destination,
        work: Work,
        stakes: Stakes,
        *,
        cleanup_token: bool = False,
    ) -> Delivery:
        """Deliver now, or queue for redelivery; raise ResourceFailure when `stakes` say so."""
        what = f"{event.type.value} event"
        try:
            token = self._tokens.read(destination.token_secret_arn, work)
        except ResourceFailure as error:
            if stakes is not Stakes.ADVISORY:
                raise
            problem = error.reason
        else:
            budget = min(DELIVERY_BUDGET, work.remaining() - QUEUEING_RESERVE)
            result = self._sender.deliver(event, destination.api_url, token, work.limited(budget))
            if result.outcome is Outcome.DELIVERED:
                log.info("Valohai accepted the %s", what, extra={"attempts": result.attempts})
                if cleanup_token:
                    self._retire_token(event.stack_id, destination, work)
                return Delivery.DELIVERED
            rejected = result.outcome is Outcome.REJECTED
            verb = "rejected" if rejected else "did not accept"
            problem = f"Valohai {verb} the {what}: {result.detail}"
            if stakes is Stakes.REQUIRED or (rejected and stakes is Stakes.ACCEPTANCE):
                raise ResourceFailure(problem)
        log.warning("%s; queueing it for redelivery", problem)
        return self._enqueue(Redelivery(destination, event, cleanup_token), problem, stakes, work)

    def _retire_token(self, stack_id: str, destination: Destination, work: Work) -> None:
        """Delete the setup's token after every event of the setup still waiting for redelivery.

        Deleting it now would leave those events unsignable (lost to the dead-letter queue), so
        the deletion is queued in the setup's message group, behind them. If it cannot be
        queued, the token is deleted now all the same, at that risk: nothing else would ever
        retire it, and a setup's token must not outlive the setup as a credential that still
        signs."""
        cleanup = TokenCleanup(stack_id, destination.token_secret_arn)
        try:
            with work.step("queueing the deletion of the setup token"):
                self._queue.put(cleanup)
        except ResourceFailure as error:
            log.warning(
                "%s; deleting the setup token now: events of the setup still queued, if any, "
                "can no longer be signed",
                error.reason,
            )
            self._tokens.delete(destination.token_secret_arn, work)
            return
        log.info("Queued the deletion of the setup token behind the setup's queued events")

    def _enqueue(
        self, redelivery: Redelivery, problem: str, stakes: Stakes, work: Work
    ) -> Delivery:
        try:
            with work.step(f"queueing the {redelivery.event.type.value} event for redelivery"):
                self._queue.put(redelivery)
        except ResourceFailure as error:
            if stakes is not Stakes.ADVISORY:
                raise ResourceFailure(
                    f"{problem}; and it could not be queued: {error.reason}"
                ) from error
            log.error("%s; dropped: %s", problem, error.reason)
            return Delivery.DROPPED
        return Delivery.QUEUED


_SECRET_ARN = r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"  # noqa: S105


def destination_from(props: Properties) -> Destination:
    """ValohaiApiUrl and SetupTokenSecretArn, checked: where to send and what to sign with."""
    api_url = props.text(
        "ValohaiApiUrl", expected="the Valohai API URL, such as https://app.valohai.com"
    )
    events_url(api_url)
    secret_arn = props.text(
        "SetupTokenSecretArn",
        pattern=_SECRET_ARN,
        expected="the ARN of the Secrets Manager secret that holds the setup token",
    )
    return Destination(api_url, secret_arn)


def policy_from(props: Properties) -> Policy:
    return Policy(props.choice("NotificationPolicy", list(Policy), default=Policy.BEST_EFFORT))


def notifier_from_environment(
    secrets: SecretsManagerClient, sqs: Callable[[], SQSClient]
) -> Notifier:
    """The functions' notifier: urllib3 delivery, the queue named by REDELIVERY_QUEUE_URL
    (`sqs` makes its client on first use only: a delivery that works needs none)."""
    url = os.environ.get(REDELIVERY_QUEUE_ENV, "")
    if not url:
        raise ResourceFailure(
            f"{REDELIVERY_QUEUE_ENV} is not set: the platform stack sets it to its redelivery queue"
        )
    return Notifier(SetupTokens(secrets), Sender(Urllib3Transport()), RedeliveryQueue(url, sqs))
