"""EventBridge rule provisioner: the stack-status rule of the notifier."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from localaws.cloudformation.provisioners import events
from localaws.cloudformation.provisioners.base import ResourceContext

Ctx = Callable[..., ResourceContext]
NOTIFIER = "arn:aws:lambda:eu-west-1:123456789012:function:example-notifier"
DLQ = "arn:aws:sqs:eu-west-1:123456789012:notifier-dlq"
PATTERN = {"source": ["aws.cloudformation"], "detail-type": ["CloudFormation Stack Status Change"]}


@pytest.fixture
def client() -> Any:
    return boto3.client("events")


def test_rule_lifecycle(make_ctx: Ctx, client: Any) -> None:
    ctx = make_ctx("AWS::Events::Rule", "StackEvents")
    target = {
        "Id": "notifier",
        "Arn": NOTIFIER,
        "Input": '{"kind": "stack-status"}',
        "DeadLetterConfig": {"Arn": DLQ},
        "RetryPolicy": {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600},
    }
    props = {
        "Name": "example-stack-events",
        "Description": "stack status changes",
        "EventPattern": json.dumps(PATTERN),  # templates may give the pattern as text
        "Targets": [target],
        "Tags": [{"Key": "Name", "Value": "stack-events"}],
    }
    made = events.Rule().create(ctx, props)

    rule = client.describe_rule(Name="example-stack-events")
    assert made.physical_id == "example-stack-events" == made.get_att("RuleName")
    assert made.get_att("Arn") == rule["Arn"]
    assert json.loads(rule["EventPattern"]) == PATTERN
    assert (rule["State"], rule["Description"]) == ("ENABLED", "stack status changes")
    assert client.list_targets_by_rule(Rule="example-stack-events")["Targets"] == [target]
    tags = {
        t["Key"]: t["Value"] for t in client.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"]
    }
    assert tags["Name"] == "stack-events"
    assert tags["aws:cloudformation:logical-id"] == "StackEvents"

    moved = {"Id": "queue", "Arn": DLQ}
    updated = {
        **props,
        "EventPattern": PATTERN,
        "State": "DISABLED",
        "Targets": [moved],
        "Tags": [],
    }
    events.Rule().update(ctx, made, props, updated)

    assert client.describe_rule(Name="example-stack-events")["State"] == "DISABLED"
    assert client.list_targets_by_rule(Rule="example-stack-events")["Targets"] == [moved]
    keys = {t["Key"] for t in client.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"]}
    assert "Name" not in keys

    for _ in range(2):
        events.Rule().delete(ctx, made, updated)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.describe_rule(Name="example-stack-events")


def test_rule_on_a_custom_bus(make_ctx: Ctx, client: Any) -> None:
    client.create_event_bus(Name="example")
    ctx = make_ctx("AWS::Events::Rule", "OnBus")
    props = {"EventBusName": "example", "EventPattern": PATTERN}
    made = events.Rule().create(ctx, props)

    name = made.get_att("RuleName")
    assert made.physical_id == f"example|{name}"
    assert name.startswith("unit-stack-OnBus-")
    assert client.describe_rule(Name=name, EventBusName="example")["Arn"] == made.get_att("Arn")

    for _ in range(2):
        events.Rule().delete(ctx, made, props)
    assert client.list_rules(EventBusName="example")["Rules"] == []


def test_canary_moto_breaks_on_a_pattern_given_as_text(client: Any) -> None:
    template = {
        "Resources": {
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {"EventPattern": json.dumps(PATTERN)},
            }
        }
    }
    with pytest.raises(AttributeError, match="'str' object has no attribute 'items'"):
        boto3.client("cloudformation").create_stack(
            StackName="canary", TemplateBody=json.dumps(template)
        )
