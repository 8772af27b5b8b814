"""The redelivery consumer: signs queued events afresh, reports what SQS must offer again, and
acts only on messages the platform sealed (tried here the way an attacker would: by writing to
the queue)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from valohai_cr.events import EventType, build, idempotency_key
from valohai_cr.notifier import TokenCleanup, message_group, seal

from tests.support.functions import (
    HANDOFF,
    OTHER_STACK_ID,
    OTHER_TOKEN,
    PLATFORM_KEY,
    STACK_ID,
    TOKEN,
    FakeContext,
    Inbox,
    Invoker,
    create_token_secret,
    sqs_event,
)
from valohai_hybrid.local.standin import Fault, StandIn

pytestmark = pytest.mark.usefixtures("fast_backoff")


@pytest.fixture
def queued(
    load_handler: Any, inbox: Inbox, redelivery_queue: str, standin: StandIn, token_secret_arn: str
) -> list[dict[str, Any]]:
    """Two hand-off events Valohai did not take, as they sit on the redelivery queue."""
    notify = Invoker(load_handler("notification").handler, inbox, "Custom::ValohaiNotification")
    props = {
        "ValohaiApiUrl": standin.url,
        "SetupTokenSecretArn": token_secret_arn,
        "Handoff": HANDOFF,
    }
    standin.receiver.inject(Fault(count=1000, status=500))
    for logical_id in ("First", "Second"):
        assert (
            notify.send(notify.event("Create", props, logical_id=logical_id), seconds=2.5).body[
                "Data"
            ]["Delivery"]
            == "queued"
        )
    standin.receiver.reset()
    messages: list[Any] = boto3.client("sqs").receive_message(
        QueueUrl=redelivery_queue, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    assert len(messages) == 2
    return messages


def again(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as SQS offers them the second time, one redelivery interval later."""
    return [
        {**m, "Attributes": {**m.get("Attributes", {}), "ApproximateReceiveCount": "2"}}
        for m in messages
    ]


@pytest.fixture
def consume(load_handler: Any) -> Any:
    handler = load_handler("redelivery").handler
    return lambda messages, seconds=20: handler(sqs_event(messages), FakeContext(seconds))


def payload(message: dict[str, Any]) -> dict[str, Any]:
    """What a sealed message carries."""
    fields: dict[str, Any] = json.loads(json.loads(message["Body"])["payload"])
    return fields


def test_queued_events_are_delivered_with_their_original_body_and_key(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    assert consume(again(queued)) == {"batchItemFailures": []}

    received = standin.receiver.events()
    assert [e.idempotency_key for e in received] == [payload(m)["idempotency_key"] for m in queued]
    assert [json.dumps(e.body, sort_keys=True, separators=(",", ":")) for e in received] == [
        payload(m)["body"] for m in queued
    ]


def test_the_first_retry_waits_one_redelivery_interval(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    """SQS hands a queued event out at once: it goes back untried, so SQS offers it again
    after its visibility timeout, the platform's RedeliveryIntervalSeconds."""
    result = consume(queued)

    assert result == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in queued]}
    assert standin.receiver.attempts() == []


def test_an_event_that_waited_behind_others_half_an_interval_is_tried_on_first_receipt(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    """It was queued while an older event of its setup was in flight: holding it back another
    whole interval would only delay it (the platform's interval is 30 s here)."""
    waited = [
        {**m, "Attributes": {**m["Attributes"], "SentTimestamp": str(int(time.time() - 16) * 1000)}}
        for m in queued
    ]

    assert consume(waited) == {"batchItemFailures": []}
    assert len(standin.receiver.events()) == 2


def test_redelivering_twice_is_harmless(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    consume(again(queued))
    consume(again(queued))

    assert len(standin.receiver.events()) == 2
    assert [a.outcome for a in standin.receiver.attempts()] == [
        "accepted",
        "accepted",
        "duplicate",
        "duplicate",
    ]


def test_what_is_still_not_delivered_is_reported_for_sqs_to_offer_again(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    standin.receiver.inject(Fault(count=1000, status=503))

    result = consume(again(queued), seconds=3)

    assert result == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in queued]}


def test_unusable_messages_are_dropped_without_stopping_other_setups(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    other = {"MessageGroupId": OTHER_STACK_ID, "ApproximateReceiveCount": "2"}
    broken = [
        {**queued[0], "MessageId": "broken", "Body": "{not json", "Attributes": other},
        {**queued[0], "MessageId": "old", "Body": json.dumps({"format": 1}), "Attributes": other},
    ]

    result = consume([*broken, *again(queued[1:])])

    # They can never succeed: retrying them for a day would only hold up their group.
    assert result == {"batchItemFailures": []}
    assert [e.idempotency_key for e in standin.receiver.events()] == [
        payload(queued[1])["idempotency_key"]
    ]


@pytest.mark.parametrize("status", [401, 400, 404])
def test_a_rejected_event_is_final_not_retried(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn, status: int
) -> None:
    standin.receiver.inject(Fault(count=1, status=status))

    result = consume(again(queued[:1]))

    assert result == {"batchItemFailures": []}
    assert len(standin.receiver.attempts()) == 1


def _secret_exists(arn: str) -> bool:
    secrets = boto3.client("secretsmanager")
    try:
        secrets.describe_secret(SecretId=arn)
    except secrets.exceptions.ResourceNotFoundException:
        return False
    return True


def _message(body: str, group: str, message_id: str, receive_count: int = 1) -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "ReceiptHandle": message_id,
        "MD5OfBody": "",
        "Body": body,
        "Attributes": {"MessageGroupId": group, "ApproximateReceiveCount": str(receive_count)},
    }


def _cleanup(stack_id: str, message_id: str) -> dict[str, Any]:
    """A token-cleanup message of `stack_id`'s group, as the platform queues it."""
    return _message(seal(TokenCleanup(stack_id), PLATFORM_KEY.encode()), stack_id, message_id)


def test_a_setups_messages_are_delivered_in_queue_order_then_its_token_deleted(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn, token_secret_arn: str
) -> None:
    assert {m["Attributes"]["MessageGroupId"] for m in queued} == {STACK_ID}

    result = consume([*again(queued), _cleanup(STACK_ID, "cleanup")])

    assert result == {"batchItemFailures": []}
    assert [e.idempotency_key for e in standin.receiver.events()] == [
        payload(m)["idempotency_key"] for m in queued
    ]
    assert not _secret_exists(token_secret_arn)


def test_a_failed_message_fails_the_rest_of_its_setup_only(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn, token_secret_arn: str
) -> None:
    other_token = create_token_secret(OTHER_STACK_ID, OTHER_TOKEN)
    first, second = again(queued)
    standin.receiver.inject(Fault(count=1000, status=503))

    result = consume(
        [first, _cleanup(OTHER_STACK_ID, "other-cleanup"), second, _cleanup(STACK_ID, "cleanup")],
        seconds=3,
    )

    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": m} for m in (first["MessageId"], second["MessageId"], "cleanup")
        ]
    }
    assert {a.idempotency_key for a in standin.receiver.attempts()} == {
        payload(first)["idempotency_key"]
    }  # the second event did not overtake the first
    assert _secret_exists(token_secret_arn)
    assert not _secret_exists(other_token)


def test_a_cleanup_deletes_only_its_setups_token_and_a_gone_one_is_done(
    consume: Any, token_secret_arn: str
) -> None:
    other_token = create_token_secret(OTHER_STACK_ID, OTHER_TOKEN)

    assert consume([_cleanup(STACK_ID, "cleanup")]) == {"batchItemFailures": []}
    assert consume([_cleanup(STACK_ID, "again")]) == {"batchItemFailures": []}
    assert not _secret_exists(token_secret_arn)
    assert _secret_exists(other_token)


def test_an_event_whose_setup_token_is_gone_is_dropped_not_retried(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn, token_secret_arn: str
) -> None:
    boto3.client("secretsmanager").delete_secret(
        SecretId=token_secret_arn, ForceDeleteWithoutRecovery=True
    )

    assert consume(again(queued)) == {"batchItemFailures": []}
    assert standin.receiver.attempts() == []


# ---- Forged messages: whoever can write to the queue, without the platform key -------------


@pytest.fixture
def attacker(standin: StandIn) -> StandIn:
    """Where a forger wants the signed event sent: a server of their own that records it (with
    nothing received yet: the session's server also heard the tests that ran before)."""
    return standin


def _forged_event(api_url: str, stack_id: str) -> dict[str, Any]:
    """A queue_address.registered of the victim's setup pointing its address at the attacker."""
    event = build(
        EventType.QUEUE_ADDRESS_REGISTERED,
        idempotency_key(EventType.QUEUE_ADDRESS_REGISTERED, "forged"),
        stack_id=stack_id,
        data={"queue_address": "acme.vqueue.net", "public_ip": "198.51.100.66"},
        occurred_at=datetime.now(UTC),
    )
    return {
        "kind": "event",
        "api_url": api_url,
        "stack_id": stack_id,
        "event_type": event.type.value,
        "idempotency_key": event.key,
        "body": event.body.decode(),
    }


def _forgeries(api_url: str, token_arn: str) -> list[tuple[str, str]]:
    """(what, message body) of every forgery tried: the old unsealed format naming the token
    secret, and sealed-looking ones without the platform key."""
    event = _forged_event(api_url, STACK_ID)
    cleanup = {"kind": "token_cleanup", "stack_id": STACK_ID}
    text = json.dumps(event, sort_keys=True, separators=(",", ":"))
    cleanup_text = json.dumps(cleanup, sort_keys=True, separators=(",", ":"))
    guessed = hmac.new(b"guessed-key", text.encode(), hashlib.sha256).hexdigest()
    return [
        ("unsealed event", json.dumps({**event, "format": 2, "token_secret_arn": token_arn})),
        (
            "unsealed cleanup",
            json.dumps({**cleanup, "format": 2, "token_secret_arn": token_arn}),
        ),
        ("event, no MAC", json.dumps({"format": 3, "payload": text})),
        ("event, guessed key", json.dumps({"format": 3, "payload": text, "mac": guessed})),
        ("event, empty MAC", json.dumps({"format": 3, "payload": text, "mac": ""})),
        (
            "cleanup, guessed key",
            json.dumps(
                {
                    "format": 3,
                    "payload": cleanup_text,
                    "mac": hmac.new(b"k", cleanup_text.encode(), hashlib.sha256).hexdigest(),
                }
            ),
        ),
    ]


def test_a_forged_message_on_the_queue_signs_sends_and_deletes_nothing(
    consume: Any,
    redelivery_queue: str,
    token_secret_arn: str,
    attacker: StandIn,
    logs: Any,
) -> None:
    sqs = boto3.client("sqs")
    forgeries = _forgeries(attacker.url, token_secret_arn)
    for number, (_, body) in enumerate(forgeries):
        sqs.send_message(
            QueueUrl=redelivery_queue,
            MessageBody=body,
            MessageGroupId=message_group(STACK_ID),
            MessageDeduplicationId=f"forged-{number}",
        )
    received: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=redelivery_queue, MaxNumberOfMessages=10, AttributeNames=["All"]
    ).get("Messages"):
        received.extend(batch)
    assert len(received) == len(forgeries)

    # Offered twice (the second time is when an event would be tried): dropped both times.
    assert consume(received) == {"batchItemFailures": []}
    assert consume(again(received)) == {"batchItemFailures": []}

    assert attacker.receiver.attempts() == []  # nothing signed, nothing sent anywhere
    assert _secret_exists(token_secret_arn)  # no token deleted
    assert logs.text.count("Dropped a message the platform did not write") == 2 * len(forgeries)
    assert TOKEN not in logs.text


def test_a_sealed_message_altered_on_the_way_is_dropped(
    consume: Any, queued: list[dict[str, Any]], attacker: StandIn, token_secret_arn: str
) -> None:
    """A genuine message whose destination or body was changed no longer matches its MAC."""
    sealed = json.loads(queued[0]["Body"])
    fields = json.loads(sealed["payload"])
    altered = [
        {**fields, "api_url": attacker.url},
        {**fields, "body": fields["body"].replace("203.0.113.10", "198.51.100.66")},
        {"kind": "token_cleanup", "stack_id": STACK_ID},
    ]
    messages = [
        {
            **queued[0],
            "MessageId": f"altered-{n}",
            "Body": json.dumps({**sealed, "payload": json.dumps(a, sort_keys=True)}),
        }
        for n, a in enumerate(altered)
    ]

    assert consume(again(messages)) == {"batchItemFailures": []}
    assert attacker.receiver.attempts() == []
    assert _secret_exists(token_secret_arn)


def test_a_sealed_event_is_signed_only_with_the_token_of_the_setup_it_names(
    consume: Any, attacker: StandIn, token_secret_arn: str
) -> None:
    """Even a sealed message cannot aim a setup's token at another setup's event: the token is
    found from the stack the message names, and the event must be that stack's."""
    create_token_secret(OTHER_STACK_ID, OTHER_TOKEN)
    mixed = {**_forged_event(attacker.url, OTHER_STACK_ID), "stack_id": STACK_ID}
    body = json.dumps(
        {
            "format": 3,
            "payload": (text := json.dumps(mixed, sort_keys=True)),
            "mac": hmac.new(PLATFORM_KEY.encode(), text.encode(), hashlib.sha256).hexdigest(),
        }
    )

    assert consume(again([_message(body, STACK_ID, "mixed")])) == {"batchItemFailures": []}
    assert attacker.receiver.attempts() == []
