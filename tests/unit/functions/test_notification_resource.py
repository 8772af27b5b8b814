"""Custom::ValohaiNotification through its handler: hand-off events, policy, redelivery."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.functions import (
    HANDOFF,
    OTHER_TOKEN,
    STACK_ID,
    TOKEN,
    Inbox,
    Invoker,
    create_token_secret,
    queued_messages,
)
from valohai_hybrid.local.standin import Fault, StandIn
from valohai_hybrid.local.standin.verify import key_id

RESOURCE = "Custom::ValohaiNotification"
pytestmark = pytest.mark.usefixtures("fast_backoff")


@pytest.fixture
def invoke(load_handler: Any, inbox: Inbox, redelivery_queue: str) -> Invoker:
    return Invoker(load_handler("notification").handler, inbox, RESOURCE)


@pytest.fixture
def props(standin: StandIn, token_secret_arn: str) -> dict[str, Any]:
    return {
        "ValohaiApiUrl": standin.url,
        "SetupTokenSecretArn": token_secret_arn,
        "NotificationPolicy": "BestEffort",
        "Handoff": dict(HANDOFF),
    }


def test_create_hands_the_setup_over_signed_with_the_setup_token(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    response = invoke("Create", props)

    assert response["Status"] == "SUCCESS"
    assert response["Data"]["Delivery"] == "delivered"
    [event] = standin.receiver.events("setup.created")
    assert event.key_id == key_id(TOKEN)
    assert event.idempotency_key == response["Data"]["EventId"]
    handoff = event.body["data"]["handoff"]
    assert handoff["queue_public_ip"] == "203.0.113.10"
    assert handoff["subnet_ids"] == ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    assert event.body["stack"] == {
        "id": STACK_ID,
        "name": "valohai-setup",
        "account_id": "123456789012",
        "region": "eu-west-1",
    }


def test_a_retried_create_is_delivered_exactly_once(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    event = invoke.event("Create", props)

    responses = [invoke.send(event).body for _ in range(3)]

    assert len({(r["PhysicalResourceId"], r["Data"]["EventId"]) for r in responses}) == 1
    assert len(standin.receiver.events()) == 1
    assert [a.outcome for a in standin.receiver.attempts()] == [
        "accepted",
        "duplicate",
        "duplicate",
    ]


def test_update_and_delete_keep_the_physical_id_and_send_their_events(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    physical_id = invoke("Create", props)["PhysicalResourceId"]
    changed = {**props, "Handoff": {**HANDOFF, "QueuePublicIp": "203.0.113.99"}}

    update = invoke("Update", changed, physical_id=physical_id, old_properties=props)
    delete = invoke.event("Delete", changed, physical_id=physical_id)
    deletes = [invoke.send(delete).body for _ in range(3)]

    assert update["PhysicalResourceId"] == physical_id
    assert {(d["Status"], d["PhysicalResourceId"]) for d in deletes} == {("SUCCESS", physical_id)}
    [updated] = standin.receiver.events("setup.updated")
    assert updated.body["data"]["handoff"]["queue_public_ip"] == "203.0.113.99"
    assert len(standin.receiver.events("setup.deleted")) == 1


def test_rollback_delete_after_a_failed_create_succeeds_without_an_event(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    broken = {**props, "Handoff": {"AccountId": "123"}}
    failed = invoke("Create", broken)

    rollback = invoke("Delete", broken, physical_id=failed["PhysicalResourceId"])

    assert (failed["Status"], rollback["Status"]) == ("FAILED", "SUCCESS")
    assert "Handoff" in failed["Reason"]
    assert standin.receiver.events() == []


def test_server_errors_and_429_are_retried_until_accepted(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    standin.receiver.inject(Fault(count=2, status=503))
    standin.receiver.inject(Fault(count=1, status=429, retry_after=1))

    response = invoke("Create", props)

    assert response["Data"]["Delivery"] == "delivered"
    attempts = standin.receiver.attempts()
    assert [a.status for a in attempts] == [503, 503, 429, 202]
    assert attempts[3].received_at - attempts[2].received_at >= 1.0  # Retry-After honoured


@pytest.mark.parametrize(
    "fault", [Fault(count=1000, status=500), Fault(count=1000, delay=30)], ids=["500", "hanging"]
)
def test_best_effort_queues_what_valohai_does_not_take_and_succeeds_in_time(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, redelivery_queue: str, fault: Fault
) -> None:
    standin.receiver.inject(fault)

    response = invoke.send(invoke.event("Create", props), seconds=3.5).body

    assert (response["Status"], response["Data"]["Delivery"]) == ("SUCCESS", "queued")
    [message] = queued_messages(redelivery_queue)
    assert message["event_type"] == "setup.created"
    assert message["idempotency_key"] == response["Data"]["EventId"]
    assert message["stack_id"] == STACK_ID  # the consumer finds the token from the stack
    assert "token_secret_arn" not in message


def test_queued_events_are_grouped_by_setup_within_sqs_limits(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, redelivery_queue: str
) -> None:
    """One FIFO message group per setup (at most 128 characters, even for a long stack name);
    the event's key deduplicates it."""
    long_named = STACK_ID.replace("valohai-setup", "s" * 128)
    standin.receiver.inject(Fault(count=1000, status=500))
    keys = {}
    for stack_id in (STACK_ID, long_named):
        response = invoke.send(invoke.event("Create", props, stack_id=stack_id), seconds=3).body
        keys[stack_id] = response["Data"]["EventId"]

    messages = boto3.client("sqs").receive_message(
        QueueUrl=redelivery_queue, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]

    groups = {
        json.loads(json.loads(m["Body"])["payload"])["stack_id"]: m["Attributes"] for m in messages
    }
    assert groups[STACK_ID]["MessageGroupId"] == STACK_ID
    assert len(groups[long_named]["MessageGroupId"]) <= 128 < len(long_named)
    assert groups[long_named]["MessageGroupId"] != STACK_ID
    assert {s: a["MessageDeduplicationId"] for s, a in groups.items()} == keys


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (Fault(count=1000, status=500), "HTTP 500"),
        (Fault(count=1000, delay=30), "no answer within"),
    ],
    ids=["500", "hanging"],
)
def test_required_fails_the_stack_with_the_cause_before_the_deadline(
    invoke: Invoker,
    props: dict[str, Any],
    standin: StandIn,
    redelivery_queue: str,
    fault: Fault,
    cause: str,
) -> None:
    standin.receiver.inject(fault)

    response = invoke.send(
        invoke.event("Create", {**props, "NotificationPolicy": "Required"}), seconds=3.5
    ).body

    assert response["Status"] == "FAILED"
    assert "Valohai did not accept the setup.created event" in response["Reason"]
    assert cause in response["Reason"]
    assert queued_messages(redelivery_queue) == []


def test_a_signature_valohai_rejects_fails_required_and_is_final_under_best_effort(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, redelivery_queue: str
) -> None:
    """A 401 is a definitive answer (the contract): never retried, nor queued for redelivery."""
    unknown = create_token_secret(STACK_ID.replace("valohai-setup", "unknown"), "z" * 40)

    required = invoke(
        "Create", {**props, "SetupTokenSecretArn": unknown, "NotificationPolicy": "Required"}
    )
    best_effort = invoke("Create", {**props, "SetupTokenSecretArn": unknown})

    assert required["Status"] == "FAILED"
    assert "Valohai rejected the setup.created event: HTTP 401" in required["Reason"]
    assert (best_effort["Status"], best_effort["Data"]["Delivery"]) == ("SUCCESS", "rejected")
    assert queued_messages(redelivery_queue) == []
    assert [a.status for a in standin.receiver.attempts()] == [401, 401]


def test_a_reason_quotes_valohais_status_never_its_body(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    """The stand-in answers errors with a JSON body ({"error": ...}): Valohai's words are not
    ours to put into the customer's stack events."""
    standin.receiver.inject(Fault(count=1000, status=500))
    unknown = create_token_secret(STACK_ID.replace("valohai-setup", "unknown"), "z" * 40)

    failed = invoke.send(
        invoke.event("Create", {**props, "NotificationPolicy": "Required"}), seconds=3.5
    ).body
    standin.receiver.reset()
    rejected = invoke(
        "Create", {**props, "SetupTokenSecretArn": unknown, "NotificationPolicy": "Required"}
    )

    assert "HTTP 500" in failed["Reason"]
    assert "HTTP 401" in rejected["Reason"]
    for reason in (failed["Reason"], rejected["Reason"]):
        assert "error" not in reason
        assert "injected fault" not in reason
        assert "X-Valohai" not in reason


def test_an_update_that_leaves_the_hand_off_as_it_was_sends_nothing(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    physical_id = invoke("Create", props)["PhysicalResourceId"]
    policy_only = {**props, "NotificationPolicy": "Required"}

    update = invoke("Update", policy_only, physical_id=physical_id, old_properties=props)

    assert (update["Status"], update["Data"]["Delivery"]) == ("SUCCESS", "unchanged")
    assert standin.receiver.events("setup.updated") == []
    assert [a.event_type for a in standin.receiver.attempts()] == ["setup.created"]


def test_producer_and_user_agent_are_the_release_the_platform_was_published_as(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """template.yaml sets VALOHAI_HYBRID_RELEASE to the release it publishes (its first
    Releases entry): a new release says so, whatever the package's own version."""
    monkeypatch.setenv("VALOHAI_HYBRID_RELEASE", "0.2.3")

    invoke("Create", props)

    [created] = standin.receiver.events()
    assert created.body["producer"] == "valohai-hybrid-aws/0.2.3"
    assert [a.user_agent for a in standin.receiver.attempts()] == ["valohai-hybrid-aws/0.2.3"]


def test_delete_never_fails_on_valohai_even_when_required(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, redelivery_queue: str
) -> None:
    required = {**props, "NotificationPolicy": "Required"}
    physical_id = invoke("Create", required)["PhysicalResourceId"]
    standin.receiver.inject(Fault(count=1000, status=500))

    response = invoke.send(
        invoke.event("Delete", required, physical_id=physical_id), seconds=4
    ).body

    assert response["Status"] == "SUCCESS"
    assert [m["event_type"] for m in queued_messages(redelivery_queue)] == ["setup.deleted"]


def test_a_delete_waits_at_most_the_contracts_5_s_for_valohai(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, redelivery_queue: str
) -> None:
    physical_id = invoke("Create", props)["PhysicalResourceId"]
    standin.receiver.inject(Fault(count=1000, delay=30))  # Valohai hangs

    started = time.monotonic()
    response = invoke.send(invoke.event("Delete", props, physical_id=physical_id), seconds=60).body
    waited = time.monotonic() - started

    assert response["Status"] == "SUCCESS"
    assert waited < 6.0  # 5 s and the queueing; it was 27 s
    assert [m["event_type"] for m in queued_messages(redelivery_queue)] == ["setup.deleted"]


def test_an_unreadable_token_fails_create_but_not_delete(
    invoke: Invoker, props: dict[str, Any], redelivery_queue: str
) -> None:
    missing = props["SetupTokenSecretArn"] + "x"

    create = invoke("Create", {**props, "SetupTokenSecretArn": missing})
    delete = invoke("Delete", {**props, "SetupTokenSecretArn": missing}, physical_id="p")

    assert create["Status"] == "FAILED"
    assert "Reading the setup token" in create["Reason"]
    assert "GetSecretValue: ResourceNotFoundException" in create["Reason"]
    assert delete["Status"] == "SUCCESS"
    assert [m["event_type"] for m in queued_messages(redelivery_queue)] == ["setup.deleted"]


def test_when_valohai_is_down_and_the_queue_fails_create_fails_naming_both(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, aws_calls: Any
) -> None:
    standin.receiver.inject(Fault(count=1000, status=502))
    aws_calls.failing = {"SendMessage": "AccessDenied"}

    response = invoke.send(invoke.event("Create", props), seconds=4, calls=aws_calls).body

    assert response["Status"] == "FAILED"
    assert "HTTP 502" in response["Reason"]
    assert "SendMessage: AccessDenied" in response["Reason"]


def test_without_a_redelivery_queue_the_function_answers_failed_saying_so(
    load_handler: Any, inbox: Inbox, props: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDELIVERY_QUEUE_URL", raising=False)
    invoke = Invoker(load_handler("notification").handler, inbox, RESOURCE)

    response = invoke("Create", props)

    assert response["Status"] == "FAILED"
    assert "REDELIVERY_QUEUE_URL is not set" in response["Reason"]
    assert response["PhysicalResourceId"]


def test_the_other_token_is_told_apart_by_its_key_id(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    other = create_token_secret(STACK_ID.replace("valohai-setup", "second"), OTHER_TOKEN)

    invoke("Create", {**props, "SetupTokenSecretArn": other})

    assert [e.key_id for e in standin.receiver.events()] == [key_id(OTHER_TOKEN)]


handoffs = st.dictionaries(
    st.sampled_from([*HANDOFF, "Extra"]),
    st.one_of(st.text(max_size=12), st.sampled_from(list(HANDOFF.values())), st.integers()),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    handoff=st.one_of(
        handoffs, st.builds(lambda d: {**HANDOFF, **d}, handoffs), st.text(max_size=5)
    ),
    policy=st.sampled_from(["BestEffort", "Required", "Sometimes", ""]),
)
def test_any_handoff_gets_one_answer_and_a_failure_names_what_is_wrong(
    invoke: Invoker, props: dict[str, Any], handoff: Any, policy: str
) -> None:
    response = invoke("Create", {**props, "Handoff": handoff, "NotificationPolicy": policy})

    if response["Status"] == "FAILED":
        assert "Handoff" in response["Reason"] or "NotificationPolicy" in response["Reason"]
    else:
        assert response["Data"]["Delivery"] == "delivered"
