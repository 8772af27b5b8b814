"""A launch while AWS misbehaves, injected at the local AWS into the calls the functions make:
throttled for a few calls (ridden out), failing for longer than the retries last, and hanging
past a function's timeout. Each launch ends in a defined state within its ServiceTimeout, and
Valohai hears of each event once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from localaws.harness import LocalAwsHandle

from tests.support.reliability import (
    LIFE_EVENTS,
    QUEUE_ADDRESS_SERVICE_TIMEOUT,
    REGION,
    Launcher,
    delivered_exactly_once,
    nothing_left,
    stack_status,
)
from valohai_hybrid.local.standin import StandIn

pytestmark = pytest.mark.usefixtures("no_faults")

#: How often the functions' boto3 clients try a call: once and 3 retries (botocore's
#: max_attempts counts retries; functions/valohai_cr/runtime.py).
SDK_ATTEMPTS = 4


def _arm(local_aws: LocalAwsHandle, **fault: object) -> None:
    local_aws.control("faults", {"region": REGION, **fault})


def _injected(local_aws: LocalAwsHandle, action: str) -> int:
    return sum(f["action"] == action for f in local_aws.control("faults")["injected"])


def test_a_throttled_secrets_manager_is_ridden_out(
    local_aws: LocalAwsHandle, launcher: Launcher, standin: StandIn
) -> None:
    before = _injected(local_aws, "CreateSecret")
    _arm(local_aws, service="secretsmanager", action="CreateSecret", count=SDK_ATTEMPTS - 1)

    workers = launcher.launch(launcher.parameters(standin))

    assert workers.succeeded, workers.errors
    assert _injected(local_aws, "CreateSecret") - before == SDK_ATTEMPTS - 1
    assert local_aws.control("faults")["armed"] == []
    assert launcher.terminate(workers).succeeded
    delivered_exactly_once(standin, workers.stack_id, LIFE_EVENTS)


def test_ssm_failing_longer_than_the_retries_fails_the_launch_with_the_cause(
    local_aws: LocalAwsHandle, launcher: Launcher, standin: StandIn
) -> None:
    _arm(
        local_aws,
        service="ssm",
        action="PutParameter",
        count=SDK_ATTEMPTS,
        code="InternalServerError",
        status=500,
        message="injected SSM outage",
    )
    parameters = launcher.parameters(standin)

    failed = launcher.launch(parameters)

    assert failed.status == "FAILED"
    errors = " ".join(failed.errors)
    assert "QueueAddressRegistration" in errors
    assert "Recording the queue address in /valohai-hybrid/queue-address/" in errors
    assert "InternalServerError" in errors
    assert stack_status(local_aws, failed) == "ROLLBACK_COMPLETE"
    nothing_left(local_aws, failed, parameters)
    # Nothing was registered with Valohai; it hears why the setup failed, once.
    (status,) = delivered_exactly_once(standin, failed.stack_id, ("stack.status_changed",))
    assert status.body["data"]["status"] == "ROLLBACK_COMPLETE"


@pytest.fixture
def queue_address_function(local_aws: LocalAwsHandle, launcher: Launcher) -> Iterator[str]:
    """The queue address function with a 5 s timeout for one test (its own is 900 s): a hung
    call meets the deadline in seconds instead of minutes."""
    ssm = local_aws.client("ssm", REGION)
    name = ssm.get_parameter(Name="/valohai-hybrid/service-token/queue-address")["Parameter"][
        "Value"
    ]
    lambda_ = local_aws.client("lambda", REGION)
    timeout = lambda_.get_function_configuration(FunctionName=name)["Timeout"]
    lambda_.update_function_configuration(FunctionName=name, Timeout=5)
    yield name
    lambda_.update_function_configuration(FunctionName=name, Timeout=timeout)


def test_a_function_that_reaches_its_timeout_answers_failed_and_the_launch_rolls_back(
    local_aws: LocalAwsHandle,
    launcher: Launcher,
    standin: StandIn,
    queue_address_function: str,
) -> None:
    # Secrets Manager hangs on the first read of the setup token (the queue address function
    # reads it to sign the registration): longer than the function's timeout.
    _arm(local_aws, service="secretsmanager", action="GetSecretValue", count=1, delay=30)
    parameters = launcher.parameters(standin)

    failed = launcher.launch(parameters, timeout=QUEUE_ADDRESS_SERVICE_TIMEOUT)

    assert failed.status == "FAILED"
    errors = " ".join(failed.errors)
    assert "Timed out while reading the setup token" in errors
    assert "the function reached its Lambda timeout" in errors
    assert stack_status(local_aws, failed) == "ROLLBACK_COMPLETE"
    # The address the Create had claimed is free again (the rollback's Delete found it by
    # the record, the timed-out answer having no address as its id) and Valohai is told.
    nothing_left(local_aws, failed, parameters)
    received = delivered_exactly_once(
        standin, failed.stack_id, ("queue_address.deregistered", "stack.status_changed")
    )
    (status,) = [e for e in received if e.type == "stack.status_changed"]
    assert status.body["data"]["status"] == "ROLLBACK_COMPLETE"
    # The timed-out request got exactly one answer, and the rollback's Delete one more.
    answers = [
        r
        for r in local_aws.control("custom-resource-responses")
        if r["body"] and r["body"]["StackId"] == failed.stack_id
    ]
    assert [(r["logical_id"], r["request_type"], r["body"]["Status"]) for r in answers] == [
        ("QueueAddressRegistration", "Create", "FAILED"),
        ("QueueAddressRegistration", "Delete", "SUCCESS"),
    ]
