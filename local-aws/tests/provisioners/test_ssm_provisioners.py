"""SSM parameter provisioner: the platform's published service tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from localaws.cloudformation.provisioners import ssm
from localaws.cloudformation.provisioners.base import ResourceContext

Ctx = Callable[..., ResourceContext]
TOKEN = "arn:aws:lambda:eu-west-1:123456789012:function:example-redis-secret"


@pytest.fixture
def client() -> Any:
    return boto3.client("ssm")


def tags(client: Any, name: str) -> dict[str, str]:
    listed = client.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)
    return {t["Key"]: t["Value"] for t in listed["TagList"]}


def test_parameter_lifecycle(make_ctx: Ctx, client: Any) -> None:
    ctx = make_ctx("AWS::SSM::Parameter", "RedisSecretToken")
    props = {
        "Name": "/example/service-tokens/redis-secret",
        "Type": "String",
        "Value": TOKEN,
        "Description": "ServiceToken of Custom::ExampleRedisSecret",
        "Tags": {"Name": "redis-secret-token"},  # SSM takes tags as a map
    }
    made = ssm.Parameter().create(ctx, props)

    parameter = client.get_parameter(Name=made.physical_id)["Parameter"]
    assert made.physical_id == "/example/service-tokens/redis-secret"
    assert (parameter["Value"], parameter["Type"], parameter["Version"]) == (TOKEN, "String", 1)
    assert (made.get_att("Value"), made.get_att("Type")) == (TOKEN, "String")
    assert tags(client, made.physical_id)["Name"] == "redis-secret-token"
    assert tags(client, made.physical_id)["aws:cloudformation:logical-id"] == "RedisSecretToken"

    updated = {**props, "Value": f"{TOKEN}:2", "Tags": {}}
    kept = ssm.Parameter().update(ctx, made, props, updated)

    parameter = client.get_parameter(Name=made.physical_id)["Parameter"]
    assert (parameter["Value"], parameter["Version"]) == (f"{TOKEN}:2", 2)
    assert kept.get_att("Value") == f"{TOKEN}:2"
    assert "Name" not in tags(client, made.physical_id)

    for _ in range(2):
        ssm.Parameter().delete(ctx, made, updated)
    with pytest.raises(ClientError, match="ParameterNotFound"):
        client.get_parameter(Name=made.physical_id)


def test_generated_parameter_name(make_ctx: Ctx, client: Any) -> None:
    made = ssm.Parameter().create(
        make_ctx("AWS::SSM::Parameter", "Token"), {"Type": "StringList", "Value": "a,b"}
    )

    assert made.physical_id.startswith("CFN-Token-")
    assert client.get_parameter(Name=made.physical_id)["Parameter"]["Value"] == "a,b"


def test_canary_moto_fails_on_parameter_tags(client: Any) -> None:
    template = {
        "Resources": {
            "Token": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": "canary",
                    "Type": "String",
                    "Value": "v",
                    "Tags": {"a": "b"},
                },
            }
        }
    }
    with pytest.raises(TypeError, match="string indices must be integers"):
        boto3.client("cloudformation").create_stack(
            StackName="canary", TemplateBody=json.dumps(template)
        )
