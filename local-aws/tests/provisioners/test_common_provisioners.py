"""Shared helpers: CloudFormation-style generated names and the tags resources receive."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from localaws.cloudformation.provisioners.base import (
    ProvisionError,
    ResourceContext,
)
from localaws.cloudformation.provisioners.common import (
    as_bool,
    as_int,
    generated_name,
    resource_tags,
)

Ctx = Callable[..., ResourceContext]


def test_generated_name_keeps_stack_logical_id_and_random_part(make_ctx: Ctx) -> None:
    name = generated_name(make_ctx("AWS::IAM::Role", "QueueRole"), 64)

    assert re.fullmatch(r"unit-stack-QueueRole-[A-Z0-9]{12}", name)
    assert name != generated_name(make_ctx("AWS::IAM::Role", "QueueRole"), 64)


@pytest.mark.parametrize("limit", [20, 32, 63])
def test_generated_name_shortens_stack_then_logical_id(make_ctx: Ctx, limit: int) -> None:
    ctx = make_ctx("AWS::S3::Bucket", "AnExceptionallyLongLogicalIdentifierForABucket")
    name = generated_name(ctx, limit, lower=True)

    assert len(name) <= limit
    assert name == name.lower()
    assert re.search(r"-[a-z0-9]{12}$", name)
    assert not name.startswith("-")
    assert "--" not in name


def test_system_tags_go_only_where_cloudformation_puts_them(make_ctx: Ctx) -> None:
    own = {"Tags": [{"Key": "Name", "Value": "x"}, {"Key": "example", "Value": "2"}]}

    bucket = resource_tags(make_ctx("AWS::S3::Bucket", "Data"), own)
    role = resource_tags(make_ctx("AWS::IAM::Role", "Role"), own)

    assert bucket["aws:cloudformation:logical-id"] == "Data"
    assert bucket["example"] == "2"  # the resource's own tag wins over the stack's
    assert role == {"Name": "x", "example": "2"}


def test_tags_may_be_a_map(make_ctx: Ctx) -> None:
    tags = resource_tags(make_ctx("AWS::SSM::Parameter"), {"Tags": {"team": "ml"}})

    assert tags["team"] == "ml"


def test_loose_template_values() -> None:
    assert (as_bool("True"), as_bool("false"), as_bool(None, True), as_bool(0)) == (
        True,
        False,
        True,
        False,
    )
    assert (as_int("8"), as_int(8), as_int(None)) == (8, 8, None)
    with pytest.raises(ProvisionError, match="Value 'eight' is not an integer"):
        as_int("eight")
