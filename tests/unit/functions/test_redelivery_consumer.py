"""The redelivery consumer: signs queued events afresh, reports what SQS must offer again."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from conftest import HANDOFF, FakeContext, Inbox, Invoker, sqs_event

from valohai_hybrid.standin import Fault, StandIn

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
        QueueUrl=redelivery_queue, MaxNumberOfMessages=10
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


def test_one_bad_message_does_not_stop_the_others(
    consume: Any, queued: list[dict[str, Any]], standin: StandIn
) -> None:
    broken = [
        {**queued[0], "MessageId": "broken", "Body": "{not json"},
        {**queued[0], "MessageId": "old", "Body": json.dumps({"format": 99})},
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
