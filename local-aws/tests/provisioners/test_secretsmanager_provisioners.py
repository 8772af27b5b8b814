"""Secrets Manager provisioner: generated values, in-place updates, immediate deletion."""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from localaws.cloudformation.provisioners import secretsmanager
from localaws.cloudformation.provisioners.base import (
    ProvisionError,
    ResourceContext,
)

Ctx = Callable[..., ResourceContext]


@pytest.fixture
def client() -> Any:
    return boto3.client("secretsmanager")


def redis_secret_props() -> dict[str, Any]:
    return {
        "Name": "ExampleRedisSecret",
        "Description": "Redis password of the queue",
        "GenerateSecretString": {"PasswordLength": "32", "ExcludePunctuation": "true"},
        "Tags": [{"Key": "Name", "Value": "redis"}],
    }


def test_secret_lifecycle(make_ctx: Ctx, client: Any) -> None:
    ctx = make_ctx("AWS::SecretsManager::Secret", "RedisSecret")
    props = redis_secret_props()
    made = secretsmanager.Secret().create(ctx, props)

    described = client.describe_secret(SecretId="ExampleRedisSecret")
    assert made.physical_id == described["ARN"] == made.get_att("Id")
    assert described["Description"] == "Redis password of the queue"
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert (tags["Name"], tags["example"]) == ("redis", "1")
    assert tags["aws:cloudformation:logical-id"] == "RedisSecret"
    password = client.get_secret_value(SecretId=made.physical_id)["SecretString"]
    assert len(password) == 32
    assert set(password) <= set(string.ascii_letters + string.digits)

    described_only = {**props, "Description": "queue password"}
    secretsmanager.Secret().update(ctx, made, props, described_only)
    assert client.get_secret_value(SecretId=made.physical_id)["SecretString"] == password
    assert client.describe_secret(SecretId=made.physical_id)["Description"] == "queue password"

    given = {**described_only, "SecretString": "s3cret", "Tags": []}
    del given["GenerateSecretString"]
    secretsmanager.Secret().update(ctx, made, described_only, given)
    assert client.get_secret_value(SecretId=made.physical_id)["SecretString"] == "s3cret"
    keys = {t["Key"] for t in client.describe_secret(SecretId=made.physical_id)["Tags"]}
    assert "example" in keys  # the stack's tag stays, the secret's own is gone
    assert "Name" not in keys

    for _ in range(2):
        secretsmanager.Secret().delete(ctx, made, given)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.describe_secret(SecretId="ExampleRedisSecret")
    # No recovery window: a new stack can take the same name straight away.
    again = secretsmanager.Secret().create(ctx, props)
    assert client.describe_secret(SecretId=again.physical_id)["Name"] == "ExampleRedisSecret"


def test_json_secret_from_template(make_ctx: Ctx, client: Any) -> None:
    made = secretsmanager.Secret().create(
        make_ctx("AWS::SecretsManager::Secret", "Credentials"),
        {
            "GenerateSecretString": {
                "SecretStringTemplate": '{"username": "example"}',
                "GenerateStringKey": "password",
                "PasswordLength": 16,
                "ExcludeCharacters": "abc",
            }
        },
    )

    value = json.loads(client.get_secret_value(SecretId=made.physical_id)["SecretString"])
    assert value["username"] == "example"
    assert len(value["password"]) == 16
    assert not set("abc") & set(value["password"])
    name = client.describe_secret(SecretId=made.physical_id)["Name"]
    prefix, suffix = name.rsplit("-", 1)
    assert (prefix, len(suffix)) == ("Credentials", 12)


def test_value_given_twice_is_refused(make_ctx: Ctx) -> None:
    with pytest.raises(ProvisionError, match="both SecretString and GenerateSecretString"):
        secretsmanager.Secret().create(
            make_ctx("AWS::SecretsManager::Secret"),
            {"SecretString": "x", "GenerateSecretString": {}},
        )


def test_name_pending_deletion_is_refused_like_aws(make_ctx: Ctx, client: Any) -> None:
    client.create_secret(Name="ExampleRedisSecret", SecretString="old")
    client.delete_secret(SecretId="ExampleRedisSecret", RecoveryWindowInDays=7)

    with pytest.raises(ProvisionError, match="already scheduled for deletion"):
        secretsmanager.Secret().create(
            make_ctx("AWS::SecretsManager::Secret"), redis_secret_props()
        )


def test_canary_moto_has_no_secret_type(stock_stack: Any, client: Any) -> None:
    ids = stock_stack(
        {
            "Resources": {
                "Secret": {
                    "Type": "AWS::SecretsManager::Secret",
                    "Properties": {"Name": "canary", "GenerateSecretString": {}},
                }
            }
        },
        skipped=("AWS::SecretsManager::Secret",),
    )
    assert "Secret" not in ids
    assert client.list_secrets()["SecretList"] == []
