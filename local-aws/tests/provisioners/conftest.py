"""Provisioners run against moto's backends in-process: each test gets a fresh mock AWS."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from localaws.cloudformation.provisioners.base import ResourceContext
from moto import mock_aws

ACCOUNT = "123456789012"
REGION = "eu-west-1"
STACK_NAME = "unit-stack"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/5b1d2c1e-0000-0000"

MakeContext = Callable[..., ResourceContext]
StockStack = Callable[..., dict[str, str]]


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
                "example": "1",
                **tags,
            },
        )

    return make


@pytest.fixture
def stock_stack() -> StockStack:
    """Create a stack with moto's own CloudFormation: the canaries' way to show its gaps.

    Returns a function taking the template and the types moto is expected to skip for want
    of a model (it warns about each), and giving {logical id: physical id} of the rest.
    """

    def create(template: dict[str, Any], skipped: tuple[str, ...] = ()) -> dict[str, str]:
        cfn = boto3.client("cloudformation")
        with warnings.catch_warnings(record=True) as caught:  # moto parses lazily: both calls
            warnings.simplefilter("always")
            cfn.create_stack(StackName="canary", TemplateBody=json.dumps(template))
            resources = cfn.describe_stack_resources(StackName="canary")["StackResources"]
        warned = " ".join(str(w.message) for w in caught)
        for resource_type in skipped:
            assert f"Tried to parse {resource_type} but it's not supported" in warned
        # moto lists a resource it skipped (no model) without a logical id.
        return {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in resources
            if "LogicalResourceId" in r
        }

    return create
