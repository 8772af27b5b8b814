"""The redelivery consumer: signs queued events afresh, reports what SQS must offer again."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.support.functions import (
    HANDOFF,
    OTHER_STACK_ID,
    OTHER_TOKEN,
    STACK_ID,
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


@pytest.fixture
def consume(load_handler: Any) -> Any:
    handler = load_handler("redelivery").handler
    return lambda messages, seconds=20: handler(sqs_event(messages), FakeContext(seconds))


def test_queued_events_are_delivered_with_their_original_body_and_key(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    assert consume(queued) == {"batchItemFailures": []}

    received = standin.receiver.events()
    assert [e.idempotency_key for e in received] == [
        json.loads(m["Body"])["idempotency_key"] for m in queued
    ]
    assert [json.dumps(e.body, sort_keys=True, separators=(",", ":")) for e in received] == [
        json.loads(m["Body"])["body"] for m in queued
    ]


def test_redelivering_twice_is_harmless(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    consume(queued)
    consume(queued)

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

    result = consume(queued, seconds=3)

    assert result == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in queued]}


def test_bad_messages_do_not_stop_other_setups(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    other = {"MessageGroupId": OTHER_STACK_ID}
    broken = [
        {**queued[0], "MessageId": "broken", "Body": "{not json", "Attributes": other},
        {**queued[0], "MessageId": "old", "Body": json.dumps({"format": 1}), "Attributes": other},
    ]

    result = consume([*broken, queued[1]])

    assert result == {
        "batchItemFailures": [{"itemIdentifier": "broken"}, {"itemIdentifier": "old"}]
    }
    assert [e.idempotency_key for e in standin.receiver.events()] == [
        json.loads(queued[1]["Body"])["idempotency_key"]
    ]


def test_a_rejected_event_is_reported_too(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    standin.receiver.inject(Fault(count=1, status=401))

    result = consume(queued[:1])

    assert result == {"batchItemFailures": [{"itemIdentifier": queued[0]["MessageId"]}]}
    assert len(standin.receiver.attempts()) == 1


def _secret_exists(arn: str) -> bool:
    secrets = boto3.client("secretsmanager")
    try:
        secrets.describe_secret(SecretId=arn)
    except secrets.exceptions.ResourceNotFoundException:
        return False
    return True


def _cleanup(stack_id: str, secret_arn: str, message_id: str) -> dict[str, Any]:
    """A token-cleanup message of `stack_id`'s group, as the forwarder queues it."""
    body = json.dumps(
        {
            "format": 2,
            "kind": "token_cleanup",
            "stack_id": stack_id,
            "token_secret_arn": secret_arn,
        }
    )
    return {
        "MessageId": message_id,
        "ReceiptHandle": message_id,
        "MD5OfBody": "",
        "Body": body,
        "Attributes": {"MessageGroupId": stack_id},
    }


def test_a_setups_messages_are_delivered_in_queue_order_then_its_token_deleted(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn, token_secret_arn: str
) -> None:
    assert {m["Attributes"]["MessageGroupId"] for m in queued} == {STACK_ID}

    result = consume([*queued, _cleanup(STACK_ID, token_secret_arn, "cleanup")])

    assert result == {"batchItemFailures": []}
    assert [e.idempotency_key for e in standin.receiver.events()] == [
        json.loads(m["Body"])["idempotency_key"] for m in queued
    ]
    assert not _secret_exists(token_secret_arn)


def test_a_failed_message_fails_the_rest_of_its_setup_only(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn, token_secret_arn: str
) -> None:
    other_token = create_token_secret(OTHER_STACK_ID, OTHER_TOKEN)
    first, second = queued
    standin.receiver.inject(Fault(count=1, status=401))  # rejects the first delivery only

    result = consume(
        [
            first,
            _cleanup(OTHER_STACK_ID, other_token, "other-cleanup"),
            second,
            _cleanup(STACK_ID, token_secret_arn, "cleanup"),
        ]
    )

    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": m} for m in (first["MessageId"], second["MessageId"], "cleanup")
        ]
    }
    assert standin.receiver.events() == []  # the second event did not overtake the first
    assert _secret_exists(token_secret_arn)
    assert not _secret_exists(other_token)


def test_a_cleanup_deletes_only_a_setup_token_and_a_gone_one_is_done(
    consume: Any, token_secret_arn: str
) -> None:
    unrelated = boto3.client("secretsmanager").create_secret(
        Name="valohai-hybrid/setup-token/impostor", SecretString="x" * 40
    )["ARN"]

    assert consume([_cleanup(STACK_ID, token_secret_arn, "cleanup")]) == {"batchItemFailures": []}
    assert consume([_cleanup(STACK_ID, token_secret_arn, "again")]) == {"batchItemFailures": []}
    assert consume([_cleanup(OTHER_STACK_ID, unrelated, "impostor")]) == {
        "batchItemFailures": [{"itemIdentifier": "impostor"}]
    }
    assert not _secret_exists(token_secret_arn)
    assert _secret_exists(unrelated)
