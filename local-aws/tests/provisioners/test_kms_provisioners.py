"""KMS: keys through our provisioner, aliases through moto's own model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from localaws.cloudformation.provisioners import kms
from localaws.cloudformation.provisioners.base import ResourceContext
from localaws.cloudformation.provisioners.moto_model import MotoModelProvisioner
from localaws.cloudformation.provisioners.registry import provisioner_for

Ctx = Callable[..., ResourceContext]


@pytest.fixture
def client() -> Any:
    return boto3.client("kms")


def test_key_lifecycle(make_ctx: Ctx, client: Any) -> None:
    ctx = make_ctx("AWS::KMS::Key", "DataKey")
    props = {
        "Description": "data bucket",
        "EnableKeyRotation": "true",
        "PendingWindowInDays": 7,
        "Tags": [{"Key": "Name", "Value": "data"}],
    }
    made = kms.Key().create(ctx, props)

    metadata = client.describe_key(KeyId=made.physical_id)["KeyMetadata"]
    assert made.get_att("KeyId") == made.physical_id == metadata["KeyId"]
    assert made.get_att("Arn") == metadata["Arn"]
    assert (metadata["Description"], metadata["KeyUsage"], metadata["Enabled"]) == (
        "data bucket",
        "ENCRYPT_DECRYPT",
        True,
    )
    assert client.get_key_rotation_status(KeyId=made.physical_id)["KeyRotationEnabled"] is True
    policy = json.loads(
        client.get_key_policy(KeyId=made.physical_id, PolicyName="default")["Policy"]
    )
    assert policy["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    listed = client.list_resource_tags(KeyId=made.physical_id)["Tags"]
    # KMS keys get the stack's own tags, not CloudFormation's aws:* tags.
    assert {t["TagKey"]: t["TagValue"] for t in listed} == {"Name": "data", "example": "1"}

    own_policy = {**policy, "Id": "data-key"}
    updated = {**props, "Description": "data", "Enabled": False, "KeyPolicy": own_policy}
    kms.Key().update(ctx, made, props, updated)

    metadata = client.describe_key(KeyId=made.physical_id)["KeyMetadata"]
    assert (metadata["Description"], metadata["Enabled"]) == ("data", False)
    stored = client.get_key_policy(KeyId=made.physical_id, PolicyName="default")["Policy"]
    assert json.loads(stored) == own_policy

    for _ in range(2):
        kms.Key().delete(ctx, made, updated)
    metadata = client.describe_key(KeyId=made.physical_id)["KeyMetadata"]
    assert metadata["KeyState"] == "PendingDeletion"
    assert (metadata["DeletionDate"] - metadata["CreationDate"]).days in (6, 7)


def test_alias_through_moto_model(make_ctx: Ctx, client: Any) -> None:
    first = kms.Key().create(make_ctx("AWS::KMS::Key"), {})
    second = kms.Key().create(make_ctx("AWS::KMS::Key"), {})
    alias = provisioner_for("AWS::KMS::Alias")
    assert isinstance(alias, MotoModelProvisioner)
    ctx = make_ctx("AWS::KMS::Alias", "DataAlias")
    props = {"AliasName": "alias/example-data", "TargetKeyId": first.physical_id}
    made = alias.create(ctx, props)

    assert made.physical_id == "alias/example-data"
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in client.list_aliases()["Aliases"]}
    assert aliases["alias/example-data"] == first.physical_id

    moved = {**props, "TargetKeyId": second.physical_id}
    made = alias.update(ctx, made, props, moved)
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in client.list_aliases()["Aliases"]}
    assert aliases["alias/example-data"] == second.physical_id

    for _ in range(2):
        alias.delete(ctx, made, moved)
    assert "alias/example-data" not in [a["AliasName"] for a in client.list_aliases()["Aliases"]]


def test_canary_moto_key_model_needs_a_policy_and_deletes_at_once(client: Any) -> None:
    cfn = boto3.client("cloudformation")
    with pytest.raises(KeyError, match="KeyPolicy"):
        cfn.create_stack(
            StackName="no-policy",
            TemplateBody=json.dumps({"Resources": {"Key": {"Type": "AWS::KMS::Key"}}}),
        )
    policy = {"Version": "2012-10-17", "Statement": []}
    template = {
        "Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy}}}
    }
    cfn.create_stack(StackName="canary", TemplateBody=json.dumps(template))
    cfn.delete_stack(StackName="canary")
    assert client.list_keys()["Keys"] == []  # gone at once, no pending-deletion window
