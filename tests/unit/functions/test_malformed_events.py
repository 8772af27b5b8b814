"""Every malformed event: at most one answer, FAILED with a reason a person can act on, and
nothing changed; none at all when it names no CloudFormation ResponseURL to answer.

The matrix is systematic: each field of a Create, an Update and a Delete, for two functions
(the Redis secret and the queue address, which keeps records in SSM), replaced by each kind of
bad value. A property-based test then throws arbitrary JSON at the handler.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from localaws.lambda_runtime.bootstrap import route_hosts

from tests.support.functions import (
    CLOUDFORMATION,
    RESPONSE_HOST,
    FakeContext,
    Inbox,
    Invoker,
)
from valohai_hybrid.local.standin import StandIn

pytestmark = pytest.mark.usefixtures("fast_backoff")

MISSING = object()
BAD_VALUES: dict[str, Any] = {
    "missing": MISSING,
    "null": None,
    "number": 7,
    "list": ["x"],
    "map": {"a": "b"},
    "empty": "",
    "blank": "   ",
    "huge": "x" * 5000,
    "not-a-stack": "not-a-stack",
    "control characters": "\x00\u202e\n",
}
IDENTITY = ("RequestType", "StackId", "RequestId", "LogicalResourceId")
#: Bad in general, but the shape CloudFormation's value has: not malformed there.
WELL_SHAPED = {"RequestId=not-a-stack"}
#: What a reason must never be: Python's words instead of the problem's.
INTERNALS = re.compile(
    r"Internal error|NoneType|has no attribute|object is not|Traceback|KeyError|TypeError|"
    r"not subscriptable|unhashable"
)


@pytest.fixture
def handlers(load_handler: Any, redelivery_queue: str) -> dict[str, Any]:
    return {
        "redis_secret": load_handler("redis_secret").handler,
        "queue_address": load_handler("queue_address").handler,
    }


def base_events(
    function: str, inbox: Inbox, standin: StandIn, token_secret_arn: str
) -> list[dict[str, Any]]:
    if function == "redis_secret":
        resource_type, props = "Custom::ValohaiRedisSecret", {"SecretName": "MatrixSecret"}
        physical_id = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:Gone-AbCdEf"
    else:
        resource_type = "Custom::ValohaiQueueAddress"
        props = {
            "QueueAddress": "matrix.vqueue.net",
            "PublicIp": "203.0.113.10",
            "ValohaiApiUrl": standin.url,
            "SetupTokenSecretArn": token_secret_arn,
        }
        physical_id = "gone.vqueue.net"
    invoker = Invoker(lambda *_: None, inbox, resource_type)
    return [
        invoker.event("Create", props),
        invoker.event("Update", props, physical_id=physical_id, old_properties=props),
        invoker.event("Delete", props, physical_id=physical_id),
    ]


@pytest.fixture
def state(aws: None) -> Callable[[], tuple[Any, ...]]:
    """What a refused event must not change (read by clients made once: the matrix reads it
    hundreds of times, and making a client costs more than the call)."""
    ssm, secretsmanager = boto3.client("ssm"), boto3.client("secretsmanager")

    def read() -> tuple[Any, ...]:
        parameters = ssm.describe_parameters()["Parameters"]
        secrets = secretsmanager.list_secrets(IncludePlannedDeletion=True)
        return (
            sorted(p["Name"] for p in parameters),
            sorted((s["Name"], "DeletedDate" in s) for s in secrets["SecretList"]),
        )

    return read


def cases(base: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    fields = [*IDENTITY, "ResponseURL", "ResourceProperties", "ResourceType"]
    if base["RequestType"] != "Create":
        fields.append("PhysicalResourceId")
    if base["RequestType"] == "Update":
        fields.append("OldResourceProperties")
    for field in fields:
        for kind, value in BAD_VALUES.items():
            event = dict(base)
            if value is MISSING:
                event.pop(field, None)
            else:
                event[field] = value
            if event.get(field, MISSING) == base.get(field, MISSING):
                continue
            yield f"{base['RequestType']} {field}={kind}", event


def violations(
    name: str,
    field: str,
    event: dict[str, Any],
    answers: list[dict[str, Any]],
    before: tuple[Any, ...],
    seconds: float,
    state: Callable[[], tuple[Any, ...]],
) -> list[str]:
    problems = []
    if seconds > 5:
        problems.append(f"{name}: took {seconds:.1f} s")
    if field == "ResponseURL":
        if answers:
            problems.append(f"{name}: answered a ResponseURL that is not CloudFormation's")
        if state() != before:
            problems.append(f"{name}: changed something")
        return problems
    if len(answers) != 1:
        return [*problems, f"{name}: {len(answers)} answers"]
    body = answers[0]
    reason = body.get("Reason", "")
    if len(json.dumps(body)) > 4096 or not 0 < len(body.get("PhysicalResourceId", "")) <= 1024:
        problems.append(f"{name}: answer CloudFormation refuses")
    if INTERNALS.search(reason):
        problems.append(f"{name}: reason in Python's words: {reason}")
    refused = name.split(" ")[-1] not in WELL_SHAPED and (
        field in IDENTITY
        or field == "PhysicalResourceId"
        or (field.endswith("Properties") and not isinstance(event.get(field, {}), dict))
    )
    if refused:
        if body["Status"] != "FAILED":
            problems.append(f"{name}: {body['Status']} for a malformed event")
        if state() != before:
            problems.append(f"{name}: a malformed event changed something")
        if field not in reason and "Refused" not in reason:
            problems.append(f"{name}: the reason does not name {field}: {reason}")
    elif body["Status"] == "FAILED" and not reason:
        problems.append(f"{name}: FAILED without a reason")
    return problems


@pytest.mark.parametrize("request_type", ["Create", "Update", "Delete"])
@pytest.mark.parametrize("function", ["redis_secret", "queue_address"])
def test_malformed_events_get_one_failed_answer_naming_the_problem(
    function: str,
    request_type: str,
    handlers: dict[str, Any],
    inbox: Inbox,
    standin: StandIn,
    token_secret_arn: str,
    state: Callable[[], tuple[Any, ...]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    (base,) = [
        event
        for event in base_events(function, inbox, standin, token_secret_arn)
        if event["RequestType"] == request_type
    ]
    tried, failed = 0, []
    for name, event in cases(base):
        field = name.split(" ")[1].split("=")[0]
        CLOUDFORMATION.begin(base)  # CloudFormation is waiting for the well-formed one
        before = state()
        seen = len(inbox.everything())
        started = time.monotonic()
        handlers[function](event, FakeContext(20))
        seconds = time.monotonic() - started
        time.sleep(0.005)
        answers = [response.body for response in inbox.everything()[seen:]]
        tried += 1
        failed += violations(f"{function} {name}", field, event, answers, before, seconds, state)
    with capsys.disabled():
        print(
            f"\nmalformed {function} {request_type} events: {tried} tried, "
            f"{tried - len(failed)} passed, {len(failed)} failed"
        )
    assert failed == [], "\n".join(failed)
    assert tried >= 60  # every field of the event, each with most kinds of bad value


def test_a_malformed_event_never_answers_the_previous_request(
    handlers: dict[str, Any], inbox: Inbox, standin: StandIn, token_secret_arn: str
) -> None:
    first, *_ = base_events("redis_secret", inbox, standin, token_secret_arn)
    CLOUDFORMATION.begin(first)
    handlers["redis_secret"](first, FakeContext(20))
    later = [
        {**first, "ResponseURL": None},
        *({**first, field: None, "ResponseURL": inbox.new_url()} for field in IDENTITY),
    ]
    for event in later:
        handlers["redis_secret"](event, FakeContext(20))

    assert len(inbox.responses(first["ResponseURL"])) == 1
    for event in later[1:]:
        [answer] = inbox.responses(event["ResponseURL"])
        assert answer.body["Status"] == "FAILED"


def test_a_stack_id_that_is_not_an_arn_claims_no_queue_address(
    handlers: dict[str, Any], inbox: Inbox, standin: StandIn, token_secret_arn: str
) -> None:
    create = base_events("queue_address", inbox, standin, token_secret_arn)[0]

    handlers["queue_address"]({**create, "StackId": "not-a-stack"}, FakeContext(20))

    [answer] = inbox.responses(create["ResponseURL"])
    assert answer.body["Status"] == "FAILED"
    assert answer.body["Reason"] == (
        "StackId must be a CloudFormation stack ARN, got 'not-a-stack'"
    )
    assert boto3.client("ssm").describe_parameters()["Parameters"] == []
    assert standin.receiver.attempts() == []


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never says a word (a hung ResponseURL)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("where", ["hung", "unreachable"])
def test_a_hung_or_unreachable_response_url_does_not_hold_the_function(
    handlers: dict[str, Any],
    inbox: Inbox,
    standin: StandIn,
    token_secret_arn: str,
    silent_server: int,
    where: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The function gives up answering after a few bounded tries: it is not billed, nor its
    concurrency held, until its 60 s deadline. (The answer's budget, 10 s, is made 2 s here.)"""
    monkeypatch.setattr("valohai_cr.answer.BUDGET_SECONDS", 2.0)
    event = base_events("redis_secret", inbox, standin, token_secret_arn)[2]  # a Delete
    port = silent_server if where == "hung" else closed_port()
    CLOUDFORMATION.begin(event)

    started = time.monotonic()
    with route_hosts({RESPONSE_HOST: ("127.0.0.1", port)}):
        handlers["redis_secret"](event, FakeContext(60))
    seconds = time.monotonic() - started

    assert seconds < 3.5  # the answer's budget, whatever the deadline
    assert inbox.responses(event["ResponseURL"]) == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = st.sampled_from(
    [
        "RequestType",
        "StackId",
        "RequestId",
        "LogicalResourceId",
        "PhysicalResourceId",
        "ResourceProperties",
        "OldResourceProperties",
        "ResourceType",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(changes=st.dictionaries(FIELDS, JSON, min_size=1, max_size=4), kind=st.integers(0, 2))
def test_arbitrary_events_get_at_most_one_answer_in_plain_words(
    handlers: dict[str, Any],
    inbox: Inbox,
    standin: StandIn,
    token_secret_arn: str,
    changes: dict[str, Any],
    kind: int,
) -> None:
    base = base_events("queue_address", inbox, standin, token_secret_arn)[kind]
    event = {**base, **changes}
    CLOUDFORMATION.begin(base)

    handlers["queue_address"](event, FakeContext(20))

    answers = inbox.responses(base["ResponseURL"])
    assert len(answers) == 1
    assert not INTERNALS.search(answers[0].body["Reason"]), answers[0].body["Reason"]
    assert 0 < len(answers[0].body["PhysicalResourceId"]) <= 1024
