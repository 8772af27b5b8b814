"""Custom::ValohaiQueueAddress: validation, registration with Valohai, the SSM record, DNS wait."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from valohai_cr import runtime
from valohai_cr.delivery import Sender, Urllib3Transport
from valohai_cr.lifecycle import CustomResource
from valohai_cr.notifier import (
    Notifier,
    RedeliveryQueue,
    SetupTokens,
    notifier_from_environment,
    platform_key,
)
from valohai_cr.queue_address import PROPERTIES, QueueAddressProvider

from tests.support.functions import (
    OTHER_STACK_ID,
    OTHER_TOKEN,
    STACK_ID,
    AwsCalls,
    FakeContext,
    Inbox,
    Invoker,
    create_token_secret,
    queued_messages,
    sqs_event,
)
from valohai_hybrid.local.standin import Fault, StandIn

RESOURCE = "Custom::ValohaiQueueAddress"
ADDRESS = "acme.vqueue.net"
RECORD = f"/valohai-hybrid/queue-address/{ADDRESS}"
pytestmark = pytest.mark.usefixtures("fast_backoff")


@pytest.fixture
def invoke(load_handler: Any, inbox: Inbox, redelivery_queue: str) -> Invoker:
    return Invoker(load_handler("queue_address").handler, inbox, RESOURCE)


@pytest.fixture
def props(standin: StandIn, token_secret_arn: str) -> dict[str, Any]:
    return {
        "QueueAddress": ADDRESS,
        "PublicIp": "203.0.113.10",
        "ValohaiApiUrl": standin.url,
        "SetupTokenSecretArn": token_secret_arn,
    }


def ssm() -> Any:
    return boto3.client("ssm")


def record(address: str = ADDRESS) -> dict[str, Any] | None:
    try:
        value = ssm().get_parameter(Name=f"/valohai-hybrid/queue-address/{address}")["Parameter"][
            "Value"
        ]
    except ssm().exceptions.ParameterNotFound:
        return None
    parsed: dict[str, Any] = json.loads(value)
    return parsed


def bound_ip(standin: StandIn, address: str = ADDRESS) -> str | None:
    binding = standin.receiver.bindings().get(address)
    return binding.public_ip if binding else None


def test_create_registers_the_binding_and_records_it_in_the_account(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    response = invoke("Create", props)

    assert (response["Status"], response["PhysicalResourceId"]) == ("SUCCESS", ADDRESS)
    assert response["Data"] == {
        "QueueAddress": ADDRESS,
        "PublicIp": "203.0.113.10",
        "RecordParameter": RECORD,
    }
    assert bound_ip(standin) == "203.0.113.10"
    assert record() == {
        "address": ADDRESS,
        "public_ip": "203.0.113.10",
        "stack_id": STACK_ID,
        "logical_resource_id": "Resource",
    }
    tags = ssm().list_tags_for_resource(ResourceType="Parameter", ResourceId=RECORD)["TagList"]
    assert {"Key": "valohai", "Value": "1"} in tags
    assert {"Key": "valohai-hybrid:stack-id", "Value": STACK_ID} in tags


def test_a_retried_create_registers_once(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    event = invoke.event("Create", props)

    responses = [invoke.send(event).body for _ in range(3)]

    assert {(r["Status"], r["PhysicalResourceId"]) for r in responses} == {("SUCCESS", ADDRESS)}
    assert len(standin.receiver.events("queue_address.registered")) == 1


def test_upper_case_is_normalised(invoke: Invoker, props: dict[str, Any]) -> None:
    response = invoke("Create", {**props, "QueueAddress": "ACME.VQueue.net"})

    assert response["PhysicalResourceId"] == ADDRESS


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("https://acme.vqueue.net", "is a URL: drop the scheme"),
        ("acme.vqueue.net:63790", "contains a port or a path"),
        ("203.0.113.10", "is an IP address, not a DNS name"),
        ("acme.vqueue.net.", "ends with a dot: drop it"),
        ("acme", "is not a fully qualified name"),
        ("acme..vqueue.net", "has an empty label"),
        ("*.vqueue.net", "has an invalid label '*'"),
        ("acme_1.vqueue.net", "has an invalid label 'acme_1'"),
        ("-acme.vqueue.net", "has an invalid label '-acme'"),
        ("acme.vqueue.123", "ends with a numeric label"),
        ("a" * 64 + ".vqueue.net", "has a label longer than 63 characters"),
        ("acme vqueue.net", "contains spaces"),
        ("", "is empty"),
    ],
)
def test_an_invalid_address_fails_saying_what_is_wrong_and_what_is_right(
    invoke: Invoker, props: dict[str, Any], address: str, problem: str, standin: StandIn
) -> None:
    response = invoke("Create", {**props, "QueueAddress": address})

    assert response["Status"] == "FAILED"
    assert problem in response["Reason"]
    assert "such as acme.vqueue.net" in response["Reason"]
    assert standin.receiver.attempts() == []


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(address=st.one_of(st.text(max_size=40), st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True)))
def test_any_address_is_either_a_dns_name_or_refused_by_name(
    invoke: Invoker, props: dict[str, Any], address: str
) -> None:
    response = invoke("Create", {**props, "QueueAddress": address})

    if response["Status"] == "SUCCESS":
        labels = response["PhysicalResourceId"].split(".")
        assert len(labels) >= 2
        assert all(0 < len(label) <= 63 and label.strip("-") == label for label in labels)
    else:
        assert response["Reason"].startswith("QueueAddress")


def test_a_public_ip_that_is_not_ipv4_is_refused(invoke: Invoker, props: dict[str, Any]) -> None:
    response = invoke("Create", {**props, "PublicIp": "2001:db8::1"})

    assert response["Status"] == "FAILED"
    assert "PublicIp must be an IPv4 address" in response["Reason"]


def test_an_address_recorded_by_another_stack_is_refused_and_left_alone(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    invoke("Create", props, stack_id=OTHER_STACK_ID)
    standin.receiver.reset()

    response = invoke("Create", {**props, "PublicIp": "203.0.113.77"})

    assert response["Status"] == "FAILED"
    assert "already bound to 203.0.113.10 by stack other-setup" in response["Reason"]
    assert record()["stack_id"] == OTHER_STACK_ID  # type: ignore[index]
    assert standin.receiver.attempts() == []


def test_valohai_refusing_the_address_fails_even_best_effort_and_leaves_no_record(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, redelivery_queue: str
) -> None:
    other_setup = create_token_secret(OTHER_STACK_ID, OTHER_TOKEN)
    invoke("Create", {**props, "SetupTokenSecretArn": other_setup}, stack_id=OTHER_STACK_ID)
    ssm().delete_parameter(Name=RECORD)  # bound at Valohai by another account's setup

    response = invoke("Create", props)

    assert response["Status"] == "FAILED"
    assert "Valohai rejected the queue_address.registered event: HTTP 409" in response["Reason"]
    assert record() is None
    assert queued_messages(redelivery_queue) == []


def test_valohai_down_queues_under_best_effort_and_fails_required(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, redelivery_queue: str
) -> None:
    standin.receiver.inject(Fault(count=1000, status=500))

    required = invoke.send(
        invoke.event("Create", {**props, "NotificationPolicy": "Required"}), seconds=3.5
    ).body
    assert required["Status"] == "FAILED"
    assert record() is None

    best_effort = invoke.send(invoke.event("Create", props), seconds=3.5).body
    assert (best_effort["Status"], best_effort["PhysicalResourceId"]) == ("SUCCESS", ADDRESS)
    # The failed Create's undo deregisters what Valohai may have taken; then the registration.
    assert [m["event_type"] for m in queued_messages(redelivery_queue)] == [
        "queue_address.deregistered",
        "queue_address.registered",
    ]
    assert record() is not None


def test_a_new_public_ip_re_registers_under_the_same_id(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    invoke("Create", props)
    moved = {**props, "PublicIp": "203.0.113.20"}

    response = invoke("Update", moved, physical_id=ADDRESS, old_properties=props)

    assert (response["Status"], response["PhysicalResourceId"]) == ("SUCCESS", ADDRESS)
    assert bound_ip(standin) == "203.0.113.20"
    assert record()["public_ip"] == "203.0.113.20"  # type: ignore[index]


def test_an_update_that_changes_nothing_sends_nothing(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    invoke("Create", props)

    response = invoke(
        "Update", {**props, "DnsWaitSeconds": "60"}, physical_id=ADDRESS, old_properties=props
    )

    assert response["Status"] == "SUCCESS"
    assert len(standin.receiver.attempts()) == 1


def test_a_new_address_replaces_cleanly(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    invoke("Create", props)
    renamed = {**props, "QueueAddress": "beta.vqueue.net"}

    update = invoke("Update", renamed, physical_id=ADDRESS, old_properties=props)
    delete = invoke.event("Delete", props, physical_id=ADDRESS)
    deletes = [invoke.send(delete).body for _ in range(3)]

    assert update["PhysicalResourceId"] == "beta.vqueue.net"
    assert {d["Status"] for d in deletes} == {"SUCCESS"}
    assert set(standin.receiver.bindings()) == {"beta.vqueue.net"}
    assert record() is None
    assert record("beta.vqueue.net") is not None
    assert len(standin.receiver.events("queue_address.deregistered")) == 1


@pytest.mark.parametrize(
    "physical_id", [ADDRESS, "valohai-setup_QueueAddress_ABCD1234"], ids=["gone", "never-created"]
)
def test_delete_of_what_this_stack_never_registered_succeeds_and_sends_nothing(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, physical_id: str
) -> None:
    event = invoke.event("Delete", props, physical_id=physical_id)

    responses = [invoke.send(event).body for _ in range(3)]

    assert {r["Status"] for r in responses} == {"SUCCESS"}
    assert standin.receiver.attempts() == []


def test_delete_after_a_create_that_never_answered_releases_what_it_claimed(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    """A Create cut off by its Lambda deadline after claiming the address answered FAILED with
    a generated id (the timer's answer): the rollback Delete still frees the address."""
    invoke("Create", props)

    response = invoke("Delete", props, physical_id="valohai-setup_QueueAddress_ABCD1234")

    assert response["Status"] == "SUCCESS"
    assert record() is None
    assert bound_ip(standin) is None
    assert len(standin.receiver.events("queue_address.deregistered")) == 1


def test_delete_leaves_another_stacks_binding_alone(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    invoke("Create", props, stack_id=OTHER_STACK_ID)

    response = invoke("Delete", props, physical_id=ADDRESS)

    assert response["Status"] == "SUCCESS"
    assert record()["stack_id"] == OTHER_STACK_ID  # type: ignore[index]
    assert bound_ip(standin) == "203.0.113.10"


def test_delete_with_valohai_down_still_removes_the_record_and_queues_the_deregistration(
    invoke: Invoker, props: dict[str, Any], standin: StandIn, redelivery_queue: str
) -> None:
    invoke("Create", {**props, "NotificationPolicy": "Required"})
    standin.receiver.inject(Fault(count=1000, status=503))

    response = invoke.send(invoke.event("Delete", props, physical_id=ADDRESS), seconds=3.5).body

    assert response["Status"] == "SUCCESS"
    assert record() is None
    assert [m["event_type"] for m in queued_messages(redelivery_queue)] == [
        "queue_address.deregistered"
    ]


@pytest.mark.parametrize("flow", ["create", "delete"])
def test_every_failing_aws_call_answers_failed_naming_it(
    invoke: Invoker, props: dict[str, Any], aws_calls: AwsCalls, flow: str
) -> None:
    names = iter(range(100))

    def prepare() -> dict[str, Any]:
        address = f"q{next(names)}.vqueue.net"
        changed = {**props, "QueueAddress": address}
        if flow == "create":
            return invoke.event("Create", changed)
        invoke("Create", changed)
        return invoke.event("Delete", changed, physical_id=address)

    invoke.send(prepare(), calls=aws_calls)
    operations = list(dict.fromkeys(aws_calls.calls))
    assert len(operations) >= 2
    for operation in operations:
        event = prepare()
        aws_calls.failing = {operation: "ThrottlingException"}
        response = invoke.send(event, calls=aws_calls).body
        aws_calls.failing = {}
        if flow == "delete" and operation == "GetSecretValue":
            assert response["Status"] == "SUCCESS"  # a Delete never waits on telling Valohai
        else:
            assert response["Status"] == "FAILED", operation
            assert f"{operation}: ThrottlingException" in response["Reason"], operation


class Dns:
    """A resolver that starts answering with `ip` after `misses` lookups."""

    def __init__(self, ip: str | None, misses: int = 0) -> None:
        self.ip, self.misses, self.lookups = ip, misses, 0

    def __call__(self, name: str) -> set[str]:
        self.lookups += 1
        if self.ip is None or self.lookups <= self.misses:
            return {"198.51.100.1"} if self.lookups == 1 else set()
        return {self.ip}


@pytest.fixture
def invoke_with_dns(aws_calls: AwsCalls, inbox: Inbox, redelivery_queue: str) -> Any:
    def make(dns: Dns) -> Invoker:
        def provider() -> QueueAddressProvider:
            secrets = boto3.client("secretsmanager")
            notifier = notifier_from_environment(secrets, lambda: boto3.client("sqs"))
            return QueueAddressProvider(ssm(), notifier, resolver=dns, poll_interval=0.05)

        resource = CustomResource(
            provider, runtime.logger("test-queue-address"), cloudformation=runtime.cloudformation
        )
        return Invoker(resource.handler, inbox, RESOURCE)

    return make


def test_dns_wait_succeeds_once_the_address_resolves_to_the_ip(
    invoke_with_dns: Any, props: dict[str, Any]
) -> None:
    dns = Dns("203.0.113.10", misses=3)

    response = invoke_with_dns(dns)(
        "Create", {**props, "WaitForDns": "true", "DnsWaitSeconds": "60"}
    )

    assert response["Status"] == "SUCCESS"
    assert dns.lookups == 4


def test_dns_wait_gives_up_in_time_undoing_the_registration(
    invoke_with_dns: Any, props: dict[str, Any], standin: StandIn
) -> None:
    invoke = invoke_with_dns(Dns(None))

    response = invoke.send(
        invoke.event("Create", {**props, "WaitForDns": "true", "DnsWaitSeconds": "1"})
    ).body

    assert response["Status"] == "FAILED"
    assert "acme.vqueue.net did not resolve to 203.0.113.10 within 1 s" in response["Reason"]
    assert "set WaitForDns to false" in response["Reason"]
    assert record() is None
    assert standin.receiver.bindings() == {}


def test_dns_wait_is_cut_short_by_the_lambda_deadline(
    invoke_with_dns: Any, props: dict[str, Any]
) -> None:
    invoke = invoke_with_dns(Dns(None))

    response = invoke.send(
        invoke.event("Create", {**props, "WaitForDns": "true", "DnsWaitSeconds": "900"}),
        seconds=5.5,
    ).body

    assert response["Status"] == "FAILED"
    assert "did not resolve" in response["Reason"]


def test_an_unaccepted_signature_fails_the_registration_even_best_effort(
    invoke: Invoker, props: dict[str, Any], standin: StandIn
) -> None:
    standin.receiver.inject(Fault(count=1, status=401))

    response = invoke("Create", props)

    assert response["Status"] == "FAILED"
    assert "Valohai rejected the queue_address.registered event: HTTP 401" in response["Reason"]
    assert record() is None


any_value = st.one_of(
    st.text(max_size=15),
    st.integers(),
    # never "true": WaitForDns would then wait on the real resolver
    st.sampled_from(["false", "yes", "0", "901", "60", "Required", "BestEffort"]),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=1),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.dictionaries(st.sampled_from([*PROPERTIES, "Colour"]), any_value),
    drop=st.sets(st.sampled_from(PROPERTIES)),
)
def test_any_properties_get_one_answer_and_a_failure_names_the_property(
    invoke: Invoker, props: dict[str, Any], changes: dict[str, Any], drop: set[str]
) -> None:
    candidate = {k: v for k, v in {**props, **changes}.items() if k not in drop}

    response = invoke("Create", candidate)

    if response["Status"] == "FAILED":
        named = [*PROPERTIES, "Unknown property", "Valohai"]
        assert any(name in response["Reason"] for name in named), response["Reason"]


def test_a_required_registration_valohai_accepted_too_late_is_deregistered(
    inbox: Inbox,
    props: dict[str, Any],
    standin: StandIn,
    redelivery_queue: str,
    load_handler: Any,
) -> None:
    """Valohai takes the registration but answers after the sender gave up: the Create fails
    (Required), and its undo deregisters the address all the same (here queued, as Valohai is
    still slow, and redelivered), so no binding outlives the failed launch."""

    def provider() -> QueueAddressProvider:
        """The function with 1 s attempts (10 s in Lambda), so the test need not wait long."""
        secrets = boto3.client("secretsmanager")
        queue = RedeliveryQueue(
            os.environ["REDELIVERY_QUEUE_URL"], lambda: boto3.client("sqs"), platform_key(secrets)
        )
        sender = Sender(Urllib3Transport(), attempt_timeout=1.0)
        return QueueAddressProvider(ssm(), Notifier(SetupTokens(secrets), sender, queue))

    invoke = Invoker(
        CustomResource(
            provider, runtime.logger("test-queue-address"), cloudformation=runtime.cloudformation
        ).handler,
        inbox,
        RESOURCE,
    )
    standin.receiver.inject(Fault(count=1000, delay=1.5))
    required = {**props, "NotificationPolicy": "Required"}

    failed = invoke.send(invoke.event("Create", required), seconds=8).body
    time.sleep(2)  # every late answer is in

    assert failed["Status"] == "FAILED"
    assert "no answer within" in failed["Reason"]
    assert record() is None
    assert bound_ip(standin) == "203.0.113.10"  # Valohai did take it, late
    messages = boto3.client("sqs").receive_message(
        QueueUrl=redelivery_queue, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    offered_again = [
        {**m, "Attributes": {**m["Attributes"], "ApproximateReceiveCount": "2"}} for m in messages
    ]
    consumed = load_handler("redelivery").handler(sqs_event(offered_again), FakeContext(10))

    assert consumed == {"batchItemFailures": []}
    assert bound_ip(standin) is None
    assert [e.type for e in standin.receiver.events()] == [
        "queue_address.registered",
        "queue_address.deregistered",
    ]
