"""Notifying Valohai: the setup token, NotificationPolicy, and the durable redelivery path.

An event that is not delivered in time is put on the redelivery queue (REDELIVERY_QUEUE_URL, a
FIFO queue with one message group per setup) unsigned; the queue's consumer signs it afresh.
A queue message is authenticated with the platform's own key (a secret of the platform stack,
REDELIVERY_KEY_SECRET_ARN), because whoever can write to the queue would otherwise choose what
a setup's token signs and where it goes; the consumer takes the token from the stack the
message names, never from the message. What a failed delivery does to the CloudFormation
operation is decided by `Stakes`.
"""

from __future__ import annotations

import hashlib
import hmac
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
#: A Delete waits at most this long for Valohai (the contract says so): then it queues.
ADVISORY_BUDGET = 5.0
#: 3: FIFO messages, each naming its setup (stack_id) and its kind (event or token_cleanup),
#: authenticated with the platform key (`payload` + `mac`).
MESSAGE_FORMAT = 3
REDELIVERY_QUEUE_ENV = "REDELIVERY_QUEUE_URL"
REDELIVERY_KEY_ENV = "REDELIVERY_KEY_SECRET_ARN"


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
    #: Valohai refused it definitively (401, 400, ...): the contract says not to retry.
    REJECTED = "rejected"
    DROPPED = "dropped"
    #: An update that changed nothing Valohai is told: nothing was sent.
    UNCHANGED = "unchanged"


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
    """A queued event: the consumer signs it with the token of the setup `event.stack_id`."""

    api_url: str
    event: Event

    @property
    def group(self) -> str:
        return message_group(self.event.stack_id)

    @property
    def deduplication_id(self) -> str:
        """The event's idempotency key: queueing the same event twice queues it once."""
        return self.event.key

    def payload(self) -> dict[str, Any]:
        return {
            "kind": "event",
            "api_url": self.api_url,
            "stack_id": self.event.stack_id,
            "event_type": self.event.type.value,
            "idempotency_key": self.event.key,
            "body": self.event.body.decode(),
        }


class TokenCleanup(NamedTuple):
    """Deletes a setup's token secret, queued right after its final event, whatever became of it.

    In the setup's message group it runs only once every earlier message of the setup (the
    final event too, if it was queued) was delivered, refused or dead-lettered, so no queued
    event is left without a token to sign it, and no token outlives its setup."""

    stack_id: str

    @property
    def group(self) -> str:
        return message_group(self.stack_id)

    @property
    def deduplication_id(self) -> str:
        """Deterministic: a final event forwarded twice queues one cleanup."""
        return hashlib.sha256(f"token-cleanup\n{self.stack_id}".encode()).hexdigest()

    def payload(self) -> dict[str, Any]:
        return {"kind": "token_cleanup", "stack_id": self.stack_id}


QueuedMessage = Redelivery | TokenCleanup


class ForgedMessage(ValueError):
    """A queue message the platform did not write: it is dropped, never acted on."""


def seal(message: QueuedMessage, key: bytes) -> str:
    """The queue message body: the payload and the platform key's HMAC-SHA256 over it."""
    payload = json.dumps(message.payload(), sort_keys=True, separators=(",", ":"))
    mac = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"format": MESSAGE_FORMAT, "payload": payload, "mac": mac})


def open_message(message: str, key: bytes) -> QueuedMessage:
    """The message the platform sealed; ForgedMessage when the MAC does not match, ValueError
    when it is otherwise unusable. Nothing of the payload is read before the MAC is checked."""
    try:
        outer = json.loads(message)
        if not isinstance(outer, dict) or outer.get("format") != MESSAGE_FORMAT:
            raise ForgedMessage("not a sealed redelivery message of the current format")
        payload, mac = outer.get("payload"), outer.get("mac")
        if not isinstance(payload, str) or not isinstance(mac, str):
            raise ForgedMessage("no payload or no MAC")
        expected = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            raise ForgedMessage("its MAC does not match the platform key")
        fields: dict[str, Any] = json.loads(payload)
        stack_id = str(fields["stack_id"])
        if fields["kind"] == "token_cleanup":
            return TokenCleanup(stack_id)
        if fields["kind"] != "event":
            raise ValueError(f"unknown message kind {fields['kind']!r}")
        event = Event(
            EventType(fields["event_type"]),
            str(fields["idempotency_key"]),
            str(fields["body"]).encode(),
            stack_id,
        )
        body = json.loads(event.body)
        if (body["stack"]["id"], body["type"], body["id"]) != (stack_id, event.type, event.key):
            raise ValueError("the event's stack, type or id differ from the message's")
        return Redelivery(str(fields["api_url"]), event)
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"malformed redelivery message: {type(error).__name__}: {error}"
        ) from error


class PlatformKey:
    """The platform stack's redelivery key (a secret only its functions read), read once."""

    def __init__(self, secrets: SecretsManagerClient, secret_arn: str) -> None:
        self._secrets = secrets
        self._secret_arn = secret_arn
        self._key: bytes | None = None

    def get(self, work: Work) -> bytes:
        if self._key is None:
            with work.step("reading the platform's redelivery key"):
                value = self._secrets.get_secret_value(SecretId=self._secret_arn)
            key = value.get("SecretString", "").encode()
            if len(key) < 32:
                raise ResourceFailure(
                    f"The platform's redelivery key {self._secret_arn} is shorter than 32 "
                    "characters: update the platform stack to make a new one"
                )
            self._key = key
        return self._key


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

    One message group per setup keeps a setup's messages in order while other setups' go on.
    Every message is sealed with the platform key, which the consumer checks."""

    def __init__(self, url: str, make_client: Callable[[], SQSClient], key: PlatformKey) -> None:
        self._url = url
        self._make_client = make_client
        self._key = key
        self._client: SQSClient | None = None

    def put(self, message: QueuedMessage, work: Work) -> None:
        body = seal(message, self._key.get(work))
        if self._client is None:
            self._client = self._make_client()
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=body,
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
        final: bool = False,
    ) -> Delivery:
        """Deliver now, or queue for redelivery; raise ResourceFailure when `stakes` say so.

        After a `final` event (the setup's last) the setup token is retired, whatever became
        of the event: behind it in the queue when it was queued."""
        delivery = self._deliver(event, destination, work, stakes)
        if final:
            self._retire_token(event.stack_id, destination, work)
        return delivery

    def _deliver(
        self, event: Event, destination: Destination, work: Work, stakes: Stakes
    ) -> Delivery:
        what = f"{event.type.value} event"
        try:
            token = self._tokens.read(destination.token_secret_arn, work)
        except ResourceFailure as error:
            if stakes is not Stakes.ADVISORY:
                raise
            problem = error.reason
        else:
            budget = min(DELIVERY_BUDGET, work.remaining() - QUEUEING_RESERVE)
            if stakes is Stakes.ADVISORY:
                budget = min(budget, ADVISORY_BUDGET)
            result = self._sender.deliver(event, destination.api_url, token, work.limited(budget))
            if result.outcome is Outcome.DELIVERED:
                log.info("Valohai accepted the %s", what, extra={"attempts": result.attempts})
                return Delivery.DELIVERED
            rejected = result.outcome is Outcome.REJECTED
            verb = "rejected" if rejected else "did not accept"
            problem = f"Valohai {verb} the {what}: {result.detail}"
            if stakes is Stakes.REQUIRED or (rejected and stakes is Stakes.ACCEPTANCE):
                raise ResourceFailure(problem)
            if rejected:
                # A definitive answer: sending the same request again gets the same one.
                log.error("%s; not retrying it (a 4xx other than 408/429 is final)", problem)
                return Delivery.REJECTED
        log.warning("%s; queueing it for redelivery", problem)
        return self._enqueue(Redelivery(destination.api_url, event), problem, stakes, work)

    def _retire_token(self, stack_id: str, destination: Destination, work: Work) -> None:
        """Delete the setup's token after every event of the setup still waiting for redelivery.

        Deleting it now would leave those events unsignable (lost to the dead-letter queue), so
        the deletion is queued in the setup's message group, behind them. If it cannot be
        queued, the token is deleted now all the same, at that risk: nothing else would ever
        retire it, and a setup's token must not outlive the setup as a credential that still
        signs."""
        try:
            with work.step("queueing the deletion of the setup token"):
                self._queue.put(TokenCleanup(stack_id), work)
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
                self._queue.put(redelivery, work)
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
    queue = RedeliveryQueue(platform_setting(REDELIVERY_QUEUE_ENV), sqs, platform_key(secrets))
    return Notifier(SetupTokens(secrets), Sender(Urllib3Transport()), queue)


def platform_setting(name: str) -> str:
    """An environment variable the platform stack sets on its functions."""
    value = os.environ.get(name, "")
    if not value:
        raise ResourceFailure(f"{name} is not set: the platform stack (template.yaml) sets it")
    return value


def platform_key(secrets: SecretsManagerClient) -> PlatformKey:
    return PlatformKey(secrets, platform_setting(REDELIVERY_KEY_ENV))
