"""Injected faults: the next N matching calls fail as AWS would fail them, then service resumes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from localaws.harness import LocalAwsHandle, unique

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture(autouse=True)
def disarm(local_aws: LocalAwsHandle) -> Iterator[None]:
    yield
    local_aws.control_delete("faults")


def _arm(local_aws: LocalAwsHandle, **fault: Any) -> None:
    local_aws.control("faults", fault)


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("secretsmanager", lambda c: c.list_secrets(), "ThrottlingException"),
        ("cloudformation", lambda c: c.describe_stacks(), "Throttling"),
        ("ec2", lambda c: c.describe_vpcs(), "RequestLimitExceeded"),
        ("s3", lambda c: c.list_buckets(), "SlowDown"),
        ("lambda", lambda c: c.list_functions(), "TooManyRequestsException"),
        ("ssm", lambda c: c.describe_parameters(), "ThrottlingException"),
    ],
)
def test_each_protocol_gets_the_error_its_sdk_expects(
    local_aws: LocalAwsHandle, service: str, call: Any, code: str
) -> None:
    client = local_aws.client(service, config=NO_RETRIES)
    _arm(local_aws, service=service, count=2, code=code, status=400 if service != "s3" else 503)
    for _ in range(2):
        with pytest.raises(ClientError) as error:
            call(client)
        assert error.value.response["Error"]["Code"] == code
    call(client)  # the third call is served


def test_only_the_named_action_fails(local_aws: LocalAwsHandle) -> None:
    ssm = local_aws.client("ssm", config=NO_RETRIES)
    name = f"/{unique('fault')}"
    _arm(
        local_aws,
        service="ssm",
        action="PutParameter",
        count=1,
        code="InternalServerError",
        status=500,
        message="injected",
    )
    ssm.describe_parameters()
    with pytest.raises(ClientError, match="injected"):
        ssm.put_parameter(Name=name, Value="v", Type="String")
    ssm.put_parameter(Name=name, Value="v", Type="String")
    state = local_aws.control("faults")
    assert state["armed"] == []
    assert {"service": "ssm", "action": "PutParameter", "code": "InternalServerError"} in state[
        "injected"
    ]


def test_sdk_retries_ride_out_a_short_throttle(local_aws: LocalAwsHandle) -> None:
    secrets = local_aws.client(
        "secretsmanager", config=Config(retries={"total_max_attempts": 4, "mode": "standard"})
    )
    _arm(local_aws, service="secretsmanager", action="ListSecrets", count=2)
    secrets.list_secrets()
    assert local_aws.control("faults")["armed"] == []


def test_a_fault_for_one_region_leaves_the_others_alone(local_aws: LocalAwsHandle) -> None:
    _arm(local_aws, service="ssm", region="eu-south-1", count=1, code="ThrottlingException")
    local_aws.client("ssm", "eu-west-1", config=NO_RETRIES).describe_parameters()
    with pytest.raises(ClientError, match="ThrottlingException"):
        local_aws.client("ssm", "eu-south-1", config=NO_RETRIES).describe_parameters()
    assert local_aws.control("faults")["armed"] == []


def test_a_delayed_fault_holds_the_answer_like_a_hung_endpoint(local_aws: LocalAwsHandle) -> None:
    """The client's read timeout fires first, as against an endpoint that does not answer."""
    _arm(local_aws, service="ssm", action="DescribeParameters", count=1, delay=3)
    impatient = local_aws.client(
        "ssm", config=Config(read_timeout=1, retries={"total_max_attempts": 1})
    )
    with pytest.raises(ReadTimeoutError):
        impatient.describe_parameters()
    local_aws.client("ssm", config=NO_RETRIES).describe_parameters()  # served again


@pytest.mark.parametrize(
    ("fault", "problem"),
    [({"count": 0}, "count must be at least 1"), ({"count": 1, "delay": -1}, "delay must be")],
)
def test_a_nonsensical_fault_is_refused_with_the_reason(
    local_aws: LocalAwsHandle, fault: dict[str, Any], problem: str
) -> None:
    with pytest.raises(RuntimeError, match=problem):
        _arm(local_aws, service="ssm", **fault)
