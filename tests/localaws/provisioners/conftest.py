"""Provisioners run against moto's backends in-process: each test gets a fresh mock AWS."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from valohai_hybrid.localaws.cloudformation.provisioners.base import ResourceContext

ACCOUNT = "123456789012"
REGION = "eu-west-1"
STACK_NAME = "unit-stack"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/5b1d2c1e-0000-0000"

MakeContext = Callable[..., ResourceContext]
StockStack = Callable[[dict[str, Any]], dict[str, str]]


@pytest.fixture(autouse=True)
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def make_ctx() -> MakeContext:
    """A context as the engine builds it, with a user stack tag beside the system ones."""

    def make(resource_type: str, logical_id: str = "Thing", **tags: str) -> ResourceContext:
        return ResourceContext(
            account_id=ACCOUNT,
            region=REGION,
            partition="aws",
            stack_id=STACK_ID,
            stack_name=STACK_NAME,
            logical_id=logical_id,
            resource_type=resource_type,
            stack_tags={
                "aws:cloudformation:stack-name": STACK_NAME,
                "aws:cloudformation:stack-id": STACK_ID,
                "aws:cloudformation:logical-id": logical_id,
                "valohai": "1",
                **tags,
            },
        )

    return make


@pytest.fixture
def stock_stack() -> StockStack:
    """Create a stack with moto's own CloudFormation: the canaries' way to show its gaps.

    Returns a function giving {logical id: physical id} of the stack's resources.
    """

    def create(template: dict[str, Any]) -> dict[str, str]:
        cfn = boto3.client("cloudformation")
        cfn.create_stack(StackName="canary", TemplateBody=json.dumps(template))
        resources = cfn.describe_stack_resources(StackName="canary")["StackResources"]
        # moto lists a resource it skipped (no model) without a logical id.
        return {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in resources
            if "LogicalResourceId" in r
        }

    return create
