"""The response guarantees of every custom resource: one answer, in time, saying why."""

from __future__ import annotations

import time
from typing import Any

import pytest
from valohai_cr import runtime
from valohai_cr.lifecycle import TIMER_LEAD_SECONDS, CustomResource
from valohai_cr.resource import Result
from valohai_cr.work import Work

from tests.support.functions import AwsCalls, FakeContext, Inbox, Invoker, Logs

RESOURCE = "Custom::ValohaiRedisSecret"


@pytest.fixture
def invoke(load_handler: Any, inbox: Inbox) -> Invoker:
    return Invoker(load_handler("redis_secret").handler, inbox, RESOURCE)


def test_a_hung_aws_call_gets_one_failed_answer_before_the_deadline_naming_the_step(
    invoke: Invoker, inbox: Inbox, aws_calls: AwsCalls, logs: Logs
) -> None:
    aws_calls.stall = {"DescribeSecret": 2.2}
    event = invoke.event("Create", {})

    response = invoke.send(event, seconds=2.5, calls=aws_calls)  # asserts one answer, in time

    assert response.body["Status"] == "FAILED"
    assert response.body["Reason"] == (
        "Timed out while looking up the secret ValohaiRedisSecret: "
        "the function reached its Lambda timeout"
    )
    assert response.body["PhysicalResourceId"]
    assert "Not answering this event twice" in logs.text
    assert aws_calls.calls == ["DescribeSecret"]  # nothing was created after answering


def test_delete_answers_at_once(invoke: Invoker) -> None:
    arn = invoke("Create", {})["PhysicalResourceId"]

    started = time.monotonic()
    response = invoke("Delete", {}, physical_id=arn)

    assert response["Status"] == "SUCCESS"
    assert time.monotonic() - started < 1.5


def test_a_long_reason_keeps_its_beginning(invoke: Invoker) -> None:
    response = invoke("Create", {f"Typo{n:03}": "x" for n in range(60)})

    assert response["Status"] == "FAILED"
    assert response["Reason"].startswith("Unknown property Typo000, Typo001")
    assert len(response["Reason"]) == 256
    assert response["Reason"].endswith("...")


def test_an_unexpected_error_is_a_failed_answer_naming_it(inbox: Inbox, aws: None) -> None:
    class Broken:
        def create(self, event: Any, work: Work) -> Result:
            return Result("x", {"Ratio": str(1 / 0)})

        update = delete = create

    resource = CustomResource(
        Broken, runtime.logger("test-broken"), cloudformation=runtime.cloudformation
    )
    invoke = Invoker(resource.handler, inbox, RESOURCE)

    response = invoke("Create", {})

    assert response["Status"] == "FAILED"
    assert response["Reason"] == "Internal error (ZeroDivisionError): division by zero"


def test_debug_logging_never_shows_the_event_nor_aws_requests(
    load_handler: Any, inbox: Inbox, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    invoke = Invoker(load_handler("redis_secret").handler, inbox, RESOURCE)
    event = invoke.event("Create", {})

    invoke.send(event)

    assert logs.records()
    assert event["ResponseURL"] not in logs.text
    assert "SecretString" not in logs.text
    chatty = ("botocore", "boto3", "urllib3")
    assert not [
        r
        for r in logs.records()
        if r["level"] == "DEBUG" and str(r.get("name", "")).startswith(chatty)
    ]


def test_the_response_never_arrives_after_the_deadline_even_with_little_time(
    invoke: Invoker,
) -> None:
    event = invoke.event("Create", {})

    # Less time than the timer's lead: it fires at once and the answer has what is left.
    response = invoke.send(event, seconds=TIMER_LEAD_SECONDS - 0.1)

    assert response.body["Status"] == "FAILED"
    assert "Timed out" in response.body["Reason"] or "Ran out of time" in response.body["Reason"]


def test_the_handler_returns_only_once_the_timers_answer_has_arrived(
    invoke: Invoker, inbox: Inbox
) -> None:
    """Lambda freezes the environment when the handler returns: an answer the timer was still
    sending then never reaches CloudFormation. `send` checks the answer is there on return."""
    event = invoke.event("Create", {})
    inbox.delay = 0.3
    try:
        response = invoke.send(event, seconds=TIMER_LEAD_SECONDS - 0.1)
    finally:
        inbox.delay = 0.0

    assert response.body["Status"] == "FAILED"


def test_work_budget_follows_the_lambda_context() -> None:
    work = Work.for_lambda(FakeContext(10), reserve=2)

    assert 7.5 < work.remaining() <= 8
