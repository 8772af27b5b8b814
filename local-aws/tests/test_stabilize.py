"""`--stabilize TYPE=SECONDS`: CloudFormation waits for a resource to stabilise, as in AWS, and
stacks waiting at the same time wait side by side, not one after the other."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from localaws import control
from localaws.harness import LocalAwsHandle, unique

pytestmark = pytest.mark.localaws

WAITED = "AWS::SSM::Parameter"
WAIT_SECONDS = 2.0
TEMPLATE = """
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: stabilised
Outputs:
  Name:
    Value: !Ref Setting
"""


@pytest.fixture(scope="module")
def waiting_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAwsHandle]:
    """A local AWS of its own, whose CloudFormation waits WAIT_SECONDS per SSM parameter."""
    state = tmp_path_factory.mktemp("stabilize")
    info = control.start(state, stabilize={WAITED: WAIT_SECONDS})
    try:
        yield LocalAwsHandle(
            endpoint_url=info["endpoint_url"],
            ca_bundle=Path(info["ca_bundle"]),
            state_dir=state,
            pid=int(info["pid"]),
        )
    finally:
        control.stop(state)


def _resource_events(aws: LocalAwsHandle, stack: str) -> dict[str, datetime]:
    """The parameter's events, by status and reason, oldest first."""
    pages = aws.client("cloudformation").get_paginator("describe_stack_events")
    events = [e for page in pages.paginate(StackName=stack) for e in page["StackEvents"]]
    return {
        f"{e['ResourceStatus']} {e.get('ResourceStatusReason', '')}".strip(): e["Timestamp"]
        for e in reversed(events)
        if e["LogicalResourceId"] == "Setting"
    }


def _settled(aws: LocalAwsHandle, stack: str) -> Any:
    description = aws.wait_for_stack(stack, timeout=60)
    assert description["StackStatus"].endswith("_COMPLETE"), description
    return description


def test_a_resource_stays_in_progress_while_it_stabilises(waiting_aws: LocalAwsHandle) -> None:
    cloudformation = waiting_aws.client("cloudformation")
    ssm = waiting_aws.client("ssm")
    name = unique("stabilize")
    stack_id = cloudformation.create_stack(StackName=name, TemplateBody=TEMPLATE)["StackId"]

    # The parameter exists (created) while CloudFormation still waits for it.
    deadline = time.monotonic() + 30
    while "CREATE_IN_PROGRESS Resource creation Initiated" not in _resource_events(
        waiting_aws, name
    ):
        assert time.monotonic() < deadline, "the parameter's creation never began"
        time.sleep(0.05)
    physical = cloudformation.describe_stack_resource(StackName=name, LogicalResourceId="Setting")[
        "StackResourceDetail"
    ]
    assert physical["ResourceStatus"] == "CREATE_IN_PROGRESS"
    assert ssm.get_parameter(Name=physical["PhysicalResourceId"])["Parameter"]["Value"] == (
        "stabilised"
    )
    assert cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == (
        "CREATE_IN_PROGRESS"
    )

    _settled(waiting_aws, name)
    cloudformation.delete_stack(StackName=name)
    _settled(waiting_aws, stack_id)

    events = _resource_events(waiting_aws, stack_id)
    created = events["CREATE_COMPLETE"] - events["CREATE_IN_PROGRESS Resource creation Initiated"]
    deleted = events["DELETE_COMPLETE"] - events["DELETE_IN_PROGRESS"]
    assert created.total_seconds() >= WAIT_SECONDS
    assert deleted.total_seconds() >= WAIT_SECONDS


def _at_once(calls: list[Callable[[], object]]) -> None:
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_stacks_stabilising_at_once_wait_side_by_side(waiting_aws: LocalAwsHandle) -> None:
    """Were a wait to hold the server's lock, the second stack's parameter could not even be
    created before the first one's wait ended: the waits would not overlap."""
    cloudformation = waiting_aws.client("cloudformation")
    names = [unique("side-by-side") for _ in range(2)]

    _at_once(
        [partial(cloudformation.create_stack, StackName=n, TemplateBody=TEMPLATE) for n in names]
    )
    ids = [_settled(waiting_aws, name)["StackId"] for name in names]
    _at_once([partial(cloudformation.delete_stack, StackName=i) for i in ids])
    for stack_id in ids:
        _settled(waiting_aws, stack_id)
    first, second = (_resource_events(waiting_aws, i) for i in ids)

    for began, ended in (
        ("CREATE_IN_PROGRESS Resource creation Initiated", "CREATE_COMPLETE"),
        ("DELETE_IN_PROGRESS", "DELETE_COMPLETE"),
    ):
        assert first[began] < second[ended], (first, second)
        assert second[began] < first[ended], (first, second)


@pytest.mark.parametrize(
    ("spec", "fix"),
    [
        ("AWS::EC2::Instance", "expected TYPE=SECONDS, e.g. AWS::EC2::Instance=10"),
        ("AWS::EC2::Instance=soon", "'soon' is not a number of seconds"),
        ("AWS::EC2::Instance=-1", "the wait must be from 0 to 600 seconds"),
        ("AWS::EC2::Instance=86400", "the wait must be from 0 to 600 seconds"),
        ("EC2 instance=10", "not a resource type; write it as in a template"),
        ("AWS::EC2::Instances=10", "no such resource type; check its spelling"),
    ],
)
def test_a_bad_stabilize_option_is_refused_naming_the_fix(
    tmp_path: Path, spec: str, fix: str
) -> None:
    server = [sys.executable, "-m", "localaws.server"]
    refused = subprocess.run(
        [*server, "--state-dir", str(tmp_path), "--stabilize", spec],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert fix in refused.stderr
    assert not (tmp_path / "server.json").exists()


def test_start_refuses_a_bad_wait_before_starting_anything(tmp_path: Path) -> None:
    with pytest.raises(control.ControlError, match="the wait must be from 0 to 600 seconds"):
        control.start(tmp_path, stabilize={"AWS::EC2::Instance": float("inf")})
    assert control.status(tmp_path) is None
