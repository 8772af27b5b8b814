"""Log group provisioner: retention and key visible, changed in place, then gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from localaws.cloudformation.provisioners import logs
from localaws.cloudformation.provisioners.base import ResourceContext

Ctx = Callable[..., ResourceContext]
KEY = "arn:aws:kms:eu-west-1:123456789012:key/0b1f6c2e-0000-4000-8000-000000000000"


@pytest.fixture
def client() -> Any:
    return boto3.client("logs")


def group(client: Any, name: str) -> dict[str, Any]:
    found = client.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return next((g for g in found if g["logGroupName"] == name), {})


def test_log_group_lifecycle(make_ctx: Ctx, client: Any) -> None:
    ctx = make_ctx("AWS::Logs::LogGroup", "NotifierLogs")
    props = {
        "LogGroupName": "/aws/lambda/example-notifier",
        "RetentionInDays": "30",
        "KmsKeyId": KEY,
        "Tags": [{"Key": "Name", "Value": "notifier"}],
    }
    made = logs.LogGroup().create(ctx, props)

    described = group(client, "/aws/lambda/example-notifier")
    assert made.physical_id == "/aws/lambda/example-notifier"
    assert made.get_att("Arn") == described["arn"]  # both end in ":*"
    assert described["retentionInDays"] == 30
    assert described["kmsKeyId"] == KEY
    tags = client.list_tags_log_group(logGroupName=made.physical_id)["tags"]
    assert tags["Name"] == "notifier"
    assert tags["aws:cloudformation:stack-name"] == ctx.stack_name

    updated = {"LogGroupName": props["LogGroupName"], "RetentionInDays": 7}
    logs.LogGroup().update(ctx, made, props, updated)

    described = group(client, "/aws/lambda/example-notifier")
    assert described["retentionInDays"] == 7
    assert "kmsKeyId" not in described
    assert "Name" not in client.list_tags_log_group(logGroupName=made.physical_id)["tags"]

    logs.LogGroup().update(ctx, made, updated, {"LogGroupName": props["LogGroupName"]})
    assert "retentionInDays" not in group(client, "/aws/lambda/example-notifier")

    for _ in range(2):
        logs.LogGroup().delete(ctx, made, updated)
    assert group(client, "/aws/lambda/example-notifier") == {}


def test_generated_log_group_name(make_ctx: Ctx, client: Any) -> None:
    made = logs.LogGroup().create(make_ctx("AWS::Logs::LogGroup", "FlowLogs"), {})

    assert made.physical_id.startswith("unit-stack-FlowLogs-")
    assert group(client, made.physical_id)


def test_canary_moto_drops_log_group_kms_key(stock_stack: Any, client: Any) -> None:
    stock_stack(
        {
            "Resources": {
                "Logs": {
                    "Type": "AWS::Logs::LogGroup",
                    "Properties": {"LogGroupName": "canary", "KmsKeyId": KEY},
                }
            }
        }
    )
    assert "kmsKeyId" not in group(client, "canary")
