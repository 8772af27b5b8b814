"""The EventBridge stack-status forwarder, and the redelivery consumer that finishes its job."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from botocore.stub import Stubber
from valohai_cr.delivery import Sender, Urllib3Transport
from valohai_cr.forwarder import StackStatusForwarder
from valohai_cr.notifier import Notifier, RedeliveryQueue, SetupTokens, platform_key
from valohai_cr.work import Work

from tests.support.functions import (
    ACCOUNT,
    HANDOFF,
    REGION,
    TEMPLATE,
    TOKEN,
    AwsCalls,
    FakeContext,
    Inbox,
    Invoker,
    Logs,
    create_token_secret,
    queued_messages,
    sqs_event,
    stack_status,
)
from valohai_hybrid.local.standin import Fault, StandIn

pytestmark = pytest.mark.usefixtures("fast_backoff")


@pytest.fixture
def setup_stack(aws: None, standin: StandIn) -> tuple[str, str]:
    """A launched product stack (with ValohaiApiUrl) and its setup-token secret."""
    stack_id = boto3.client("cloudformation").create_stack(
        StackName="valohai-setup",
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": "ValohaiApiUrl", "ParameterValue": standin.url}],
    )["StackId"]
    return stack_id, create_token_secret(stack_id, TOKEN)


@pytest.fixture
def forward(load_handler: Any, redelivery_queue: str) -> Any:
    handler = load_handler("stack_status").handler
    return lambda event, seconds=20: handler(event, FakeContext(seconds))["outcome"]


def token_exists(arn: str) -> bool:
    try:
        boto3.client("secretsmanager").describe_secret(SecretId=arn)
    except boto3.client("secretsmanager").exceptions.ResourceNotFoundException:
        return False
    return True


def test_a_rolled_back_update_is_reported_and_the_token_kept(
    forward: Any, setup_stack: tuple[str, str], standin: StandIn
) -> None:
    stack_id, token_arn = setup_stack

    outcome = forward(stack_status(stack_id, "UPDATE_ROLLBACK_COMPLETE", "Resource failed"))

    assert outcome == "delivered"
    [event] = standin.receiver.events("stack.status_changed")
    assert event.body["data"]["status"] == "UPDATE_ROLLBACK_COMPLETE"
    assert event.body["data"]["status_reason"] == "Resource failed"
    assert event.body["data"]["final"] is False
    assert event.body["occurred_at"] == "2025-06-01T12:00:00Z"
    assert token_exists(token_arn)


def later(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as SQS offers them once the redelivery interval has passed (a second time)."""
    return [
        {**m, "Attributes": {**m.get("Attributes", {}), "ApproximateReceiveCount": "2"}}
        for m in messages
    ]


def payload(message: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = json.loads(json.loads(message["Body"])["payload"])
    return fields


@pytest.fixture
def consume(load_handler: Any, redelivery_queue: str) -> Any:
    """Run the redelivery consumer on everything the queue offers now; its batch item failures."""

    def run() -> list[str]:
        messages = boto3.client("sqs").receive_message(
            QueueUrl=redelivery_queue, MaxNumberOfMessages=10, AttributeNames=["All"]
        )["Messages"]
        result = load_handler("redelivery").handler(sqs_event(later(messages)), FakeContext(20))
        return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]

    return run


@pytest.mark.parametrize("status", ["DELETE_COMPLETE", "ROLLBACK_COMPLETE"])
def test_the_final_event_is_reported_once_and_then_the_token_is_deleted(
    forward: Any, consume: Any, setup_stack: tuple[str, str], standin: StandIn, status: str
) -> None:
    stack_id, token_arn = setup_stack
    event = stack_status(stack_id, status)

    assert [forward(event) for _ in range(2)] == ["delivered", "delivered"]
    assert token_exists(token_arn)  # deleted by the consumer, behind any queued event
    assert consume() == []
    assert forward(event) == "ignored: not a Valohai Hybrid setup stack"

    [received] = standin.receiver.events()
    assert received.body["data"]["final"] is True
    assert not token_exists(token_arn)


def test_the_token_outlives_the_setups_older_queued_events(
    forward: Any,
    consume: Any,
    load_handler: Any,
    inbox: Inbox,
    setup_stack: tuple[str, str],
    standin: StandIn,
) -> None:
    """Valohai down during the deletion: the final event, delivered directly once Valohai is back,
    overtakes the queued setup.deleted, but the token is deleted only after it is redelivered."""
    stack_id, token_arn = setup_stack
    notify = Invoker(load_handler("notification").handler, inbox, "Custom::ValohaiNotification")
    props = {"ValohaiApiUrl": standin.url, "SetupTokenSecretArn": token_arn, "Handoff": HANDOFF}
    standin.receiver.inject(Fault(count=1000, status=503))
    deletion = notify.event("Delete", props, physical_id="n", stack_id=stack_id)
    assert notify.send(deletion, seconds=2.5).body["Data"]["Delivery"] == "queued"
    standin.receiver.reset()

    assert forward(stack_status(stack_id, "DELETE_COMPLETE")) == "delivered"
    assert token_exists(token_arn)
    assert consume() == []

    assert [e.type for e in standin.receiver.events()] == ["stack.status_changed", "setup.deleted"]
    assert not token_exists(token_arn)


def test_when_the_queue_refuses_the_token_is_deleted_at_once_with_a_warning(
    forward: Any, setup_stack: tuple[str, str], aws_calls: AwsCalls, logs: Logs
) -> None:
    stack_id, token_arn = setup_stack
    aws_calls.failing["SendMessage"] = "AccessDeniedException"
    aws_calls.recording = True

    assert forward(stack_status(stack_id, "DELETE_COMPLETE")) == "delivered"

    assert not token_exists(token_arn)
    [warning] = [r for r in logs.records() if r["level"] == "WARNING"]
    assert "deleting the setup token now" in warning["message"]
    assert "Queueing the deletion of the setup token failed" in warning["message"]


@pytest.mark.parametrize("status", ["CREATE_COMPLETE", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"])
def test_statuses_that_are_not_failures_or_endings_are_ignored(
    forward: Any, setup_stack: tuple[str, str], standin: StandIn, status: str
) -> None:
    assert forward(stack_status(setup_stack[0], status)) == f"ignored: {status} is not forwarded"
    assert standin.receiver.attempts() == []


def test_stacks_without_a_setup_token_are_ignored(
    forward: Any, setup_stack: tuple[str, str], standin: StandIn
) -> None:
    other = setup_stack[0].replace("valohai-setup", "unrelated")

    assert (
        forward(stack_status(other, "DELETE_COMPLETE"))
        == "ignored: not a Valohai Hybrid setup stack"
    )
    assert forward({"detail-type": "Something else", "id": "1", "detail": {}}) == (
        "ignored: not a CloudFormation stack status change"
    )
    assert standin.receiver.attempts() == []


def test_when_valohai_is_down_the_consumer_delivers_later_and_then_deletes_the_token(
    forward: Any,
    setup_stack: tuple[str, str],
    standin: StandIn,
    redelivery_queue: str,
    load_handler: Any,
) -> None:
    stack_id, token_arn = setup_stack
    standin.receiver.inject(Fault(count=1000, status=503))

    assert forward(stack_status(stack_id, "DELETE_COMPLETE"), seconds=3.5) == "queued"
    assert token_exists(token_arn)

    standin.receiver.reset()
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=redelivery_queue, MaxNumberOfMessages=10)["Messages"]
    assert [payload(m)["kind"] for m in messages] == ["event", "token_cleanup"]
    consume = load_handler("redelivery").handler
    result = consume(sqs_event(later(messages)), FakeContext(20))

    assert result == {"batchItemFailures": []}
    [event] = standin.receiver.events("stack.status_changed")
    assert payload(messages[0])["idempotency_key"] == event.idempotency_key
    assert not token_exists(token_arn)


def _stack_event(
    stack_id: str, logical: str, status: str, reason: str, minute: int, own: bool = False
) -> dict[str, Any]:
    return {
        "StackId": stack_id,
        "EventId": str(uuid.uuid4()),
        "StackName": "valohai-setup",
        "LogicalResourceId": "valohai-setup" if own else logical,
        "PhysicalResourceId": stack_id if own else f"{logical}-id",
        "ResourceType": "AWS::CloudFormation::Stack" if own else "Custom::ValohaiQueueAddress",
        "Timestamp": datetime(2025, 6, 1, 12, minute, tzinfo=UTC),
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
    }


def test_the_failed_resources_of_the_last_operation_are_listed_root_cause_first(
    aws: None, standin: StandIn, redelivery_queue: str
) -> None:
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/valohai-setup/abc"
    token_arn = create_token_secret(stack_id, TOKEN)
    cloudformation = boto3.client("cloudformation")
    newest_first = [
        _stack_event(stack_id, "", "ROLLBACK_COMPLETE", "", 9, own=True),
        _stack_event(stack_id, "Queue", "DELETE_FAILED", "cleanup failed", 8),
        _stack_event(stack_id, "", "ROLLBACK_IN_PROGRESS", "create failed", 7, own=True),
        _stack_event(stack_id, "Notify", "CREATE_FAILED", "Resource creation cancelled", 6),
        _stack_event(stack_id, "Queue", "CREATE_FAILED", "Valohai rejected ...: HTTP 409", 5),
        _stack_event(stack_id, "", "CREATE_IN_PROGRESS", "User Initiated", 4, own=True),
        _stack_event(stack_id, "Old", "UPDATE_FAILED", "an older operation", 3),
    ]
    stubber = Stubber(cloudformation)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "valohai-setup",
                    "StackId": stack_id,
                    "CreationTime": datetime.now(UTC),
                    "StackStatus": "ROLLBACK_COMPLETE",
                    "Parameters": [
                        {"ParameterKey": "ValohaiApiUrl", "ParameterValue": standin.url}
                    ],
                }
            ]
        },
    )
    stubber.add_response("describe_stack_events", {"StackEvents": newest_first})
    secrets = boto3.client("secretsmanager")
    notifier = Notifier(
        SetupTokens(secrets),
        Sender(Urllib3Transport()),
        RedeliveryQueue(redelivery_queue, lambda: boto3.client("sqs"), platform_key(secrets)),
    )
    forwarder = StackStatusForwarder(cloudformation, SetupTokens(secrets), notifier)

    with stubber:
        outcome = forwarder.forward(
            EventBridgeEvent(stack_status(stack_id, "ROLLBACK_COMPLETE")), Work(20)
        )

    assert outcome == "delivered"
    [event] = standin.receiver.events()
    assert [
        (r["logical_resource_id"], r["status"], r["status_reason"])
        for r in event.body["data"]["failed_resources"]
    ] == [
        ("Queue", "CREATE_FAILED", "Valohai rejected ...: HTTP 409"),
        ("Notify", "CREATE_FAILED", "Resource creation cancelled"),
        ("Queue", "DELETE_FAILED", "cleanup failed"),
    ]
    assert event.body["data"]["failed_resources"][0]["timestamp"] == "2025-06-01T12:05:00Z"
    assert token_exists(token_arn)
    assert queued_messages(redelivery_queue) == [{"kind": "token_cleanup", "stack_id": stack_id}]


def _stubbed_forwarder(
    stack_id: str, stack_events: list[dict[str, Any]], api_url: str, queue: str
) -> tuple[StackStatusForwarder, Stubber]:
    """A forwarder whose CloudFormation reads are stubbed (moto cannot roll a stack back)."""
    cloudformation = boto3.client("cloudformation")
    stubber = Stubber(cloudformation)
    stubber.add_response(
        "describe_stack_events", {"StackEvents": stack_events}, {"StackName": stack_id}
    )
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "valohai-setup",
                    "StackId": stack_id,
                    "CreationTime": datetime.now(UTC),
                    "StackStatus": "DELETE_COMPLETE",
                    "Parameters": [{"ParameterKey": "ValohaiApiUrl", "ParameterValue": api_url}],
                }
            ]
        },
    )
    secrets = boto3.client("secretsmanager")
    notifier = Notifier(
        SetupTokens(secrets),
        Sender(Urllib3Transport()),
        RedeliveryQueue(queue, lambda: boto3.client("sqs"), platform_key(secrets)),
    )
    return StackStatusForwarder(cloudformation, SetupTokens(secrets), notifier), stubber


def test_a_rolled_back_setup_has_one_final_event_its_deletion_sends_nothing(
    aws: None, standin: StandIn, redelivery_queue: str
) -> None:
    """ROLLBACK_COMPLETE ended the setup: the DELETE_COMPLETE that follows when the product is
    terminated, before or after the token's deletion ran, is not a second final event (queued
    behind the token's deletion it could never be signed, and would wait there for a day)."""
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/valohai-setup/abc"
    token_arn = create_token_secret(stack_id, TOKEN)
    history = [
        _stack_event(stack_id, "", "DELETE_COMPLETE", "", 10, own=True),
        _stack_event(stack_id, "", "DELETE_IN_PROGRESS", "User Initiated", 9, own=True),
        _stack_event(stack_id, "", "ROLLBACK_COMPLETE", "", 8, own=True),
        _stack_event(stack_id, "", "CREATE_IN_PROGRESS", "User Initiated", 4, own=True),
    ]
    forwarder, stubber = _stubbed_forwarder(stack_id, history, standin.url, redelivery_queue)
    standin.receiver.inject(Fault(count=1000, status=503))  # it would have been queued

    with stubber:
        outcome = forwarder.forward(
            EventBridgeEvent(stack_status(stack_id, "DELETE_COMPLETE")), Work(20)
        )

    assert outcome == "ignored: the setup ended with its ROLLBACK_COMPLETE"
    assert standin.receiver.attempts() == []
    assert queued_messages(redelivery_queue) == []
    assert token_exists(token_arn)  # its deletion is the ROLLBACK_COMPLETE's to do


@pytest.mark.parametrize("status", [401, 400, 404])
def test_a_final_event_valohai_refuses_is_not_retried_and_the_token_still_goes(
    forward: Any,
    consume: Any,
    setup_stack: tuple[str, str],
    standin: StandIn,
    redelivery_queue: str,
    status: int,
) -> None:
    stack_id, token_arn = setup_stack
    standin.receiver.inject(Fault(count=1, status=status))

    assert forward(stack_status(stack_id, "DELETE_COMPLETE")) == "rejected"

    assert len(standin.receiver.attempts()) == 1
    assert consume() == []
    assert len(standin.receiver.attempts()) == 1  # not redelivered
    assert not token_exists(token_arn)


def test_a_final_event_that_ends_in_the_dead_letter_queue_still_retires_the_token(
    forward: Any,
    load_handler: Any,
    setup_stack: tuple[str, str],
    standin: StandIn,
    redelivery_queue: str,
) -> None:
    """Valohai stays down: SQS offers the final event and the token's deletion behind it
    together, and counts both receipts. On the last one (the queue's maxReceiveCount, 3 here)
    the consumer moves the event to the dead-letter queue itself, and the deletion runs instead
    of being dead-lettered with it (which left the token behind for good)."""
    stack_id, token_arn = setup_stack
    standin.receiver.inject(Fault(count=10_000, status=503))
    assert forward(stack_status(stack_id, "DELETE_COMPLETE"), seconds=3.5) == "queued"
    sqs = boto3.client("sqs")
    batch = sqs.receive_message(
        QueueUrl=redelivery_queue, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    assert [payload(m)["kind"] for m in batch] == ["event", "token_cleanup"]
    consume = load_handler("redelivery").handler

    def offered(receipt: int) -> list[str]:
        counted = [
            {**m, "Attributes": {**m["Attributes"], "ApproximateReceiveCount": str(receipt)}}
            for m in batch
        ]
        result = consume(sqs_event(counted), FakeContext(3))
        return [f["itemIdentifier"] for f in result["batchItemFailures"]]

    everything = [m["MessageId"] for m in batch]
    assert offered(1) == everything
    assert offered(2) == everything
    assert token_exists(token_arn)
    assert offered(3) == []

    assert not token_exists(token_arn)
    dlq = sqs.get_queue_url(QueueName="valohai-redelivery-dlq.fifo")["QueueUrl"]
    [dead] = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert dead["Body"] == batch[0]["Body"]  # still sealed: it can be moved back and redelivered
    assert standin.receiver.events() == []
