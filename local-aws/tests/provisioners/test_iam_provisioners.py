"""IAM provisioners: roles, instance profiles and policies as IAM's API reports them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from localaws.cloudformation.provisioners import iam
from localaws.cloudformation.provisioners.base import (
    ProvisionError,
    ResourceContext,
)

Ctx = Callable[..., ResourceContext]
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def document(*actions: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
    }


@pytest.fixture
def client() -> Any:
    return boto3.client("iam")


@pytest.fixture
def boundary(client: Any) -> str:
    policy = client.create_policy(
        PolicyName="Boundary", PolicyDocument=json.dumps(document("s3:*"))
    )
    return str(policy["Policy"]["Arn"])


def test_role_lifecycle(make_ctx: Ctx, client: Any, boundary: str) -> None:
    ctx = make_ctx("AWS::IAM::Role", "QueueRole")
    props = {
        "RoleName": "ExampleQueueRole",
        "Path": "/example/",
        "Description": "queue machine",
        "MaxSessionDuration": "7200",
        "AssumeRolePolicyDocument": EC2_TRUST,
        "PermissionsBoundary": boundary,
        "Policies": [{"PolicyName": "secrets", "PolicyDocument": document("secretsmanager:Get*")}],
        "ManagedPolicyArns": [BASIC_EXECUTION],
        "Tags": [{"Key": "Name", "Value": "queue"}],
    }
    made = iam.Role().create(ctx, props)

    role = client.get_role(RoleName="ExampleQueueRole")["Role"]
    assert made.physical_id == "ExampleQueueRole"
    assert (
        made.get_att("Arn")
        == role["Arn"]
        == ("arn:aws:iam::123456789012:role/example/ExampleQueueRole")
    )
    assert made.get_att("RoleId") == role["RoleId"]
    assert role["Description"] == "queue machine"
    assert role["MaxSessionDuration"] == 7200
    assert role["AssumeRolePolicyDocument"] == EC2_TRUST
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    # IAM roles get the stack's own tags, not CloudFormation's aws:* system tags.
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == {"Name": "queue", "example": "1"}
    inline = client.get_role_policy(RoleName="ExampleQueueRole", PolicyName="secrets")
    assert inline["PolicyDocument"] == document("secretsmanager:Get*")
    attached = client.list_attached_role_policies(RoleName="ExampleQueueRole")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [BASIC_EXECUTION]

    updated = {
        **props,
        "Description": "queue",
        "AssumeRolePolicyDocument": LAMBDA_TRUST,
        "Policies": [{"PolicyName": "logs", "PolicyDocument": document("logs:PutLogEvents")}],
        "ManagedPolicyArns": [boundary],
        "Tags": [{"Key": "Owner", "Value": "ml"}],
    }
    del updated["PermissionsBoundary"]
    iam.Role().update(ctx, made, props, updated)

    role = client.get_role(RoleName="ExampleQueueRole")["Role"]
    assert role["Description"] == "queue"
    assert role["AssumeRolePolicyDocument"] == LAMBDA_TRUST
    assert "PermissionsBoundary" not in role
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == {"Owner": "ml", "example": "1"}
    assert client.list_role_policies(RoleName="ExampleQueueRole")["PolicyNames"] == ["logs"]
    attached = client.list_attached_role_policies(RoleName="ExampleQueueRole")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [boundary]

    for _ in range(2):
        iam.Role().delete(ctx, made, updated)
    assert "ExampleQueueRole" not in [r["RoleName"] for r in client.list_roles()["Roles"]]


def test_generated_role_name_fits_iam_limit(make_ctx: Ctx) -> None:
    ctx = make_ctx("AWS::IAM::Role", "AVeryLongLogicalIdForTheMultipartUploadRoleOfTheDataBucket")
    made = iam.Role().create(ctx, {"AssumeRolePolicyDocument": EC2_TRUST})

    assert len(made.physical_id) <= 64
    assert made.physical_id.startswith("AVeryLongLogicalId")


def test_unknown_managed_policy_fails_like_iam(make_ctx: Ctx, client: Any) -> None:
    arn = "arn:aws:iam::aws:policy/NoSuchPolicy"
    with pytest.raises(ProvisionError, match=f"Policy {arn} does not exist or is not attachable"):
        iam.Role().create(
            make_ctx("AWS::IAM::Role"),
            {"RoleName": "r", "AssumeRolePolicyDocument": EC2_TRUST, "ManagedPolicyArns": [arn]},
        )
    assert client.list_roles()["Roles"] == []  # nothing half-made is left behind


def test_instance_profile_roles_change_in_place(make_ctx: Ctx, client: Any) -> None:
    for name in ("first", "second"):
        client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    ctx = make_ctx("AWS::IAM::InstanceProfile", "Profile")
    props = {"InstanceProfileName": "ExampleQueueInstanceProfile", "Roles": ["first"]}
    made = iam.InstanceProfile().create(ctx, props)

    profile = client.get_instance_profile(InstanceProfileName="ExampleQueueInstanceProfile")
    assert made.get_att("Arn") == profile["InstanceProfile"]["Arn"]
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == ["first"]

    iam.InstanceProfile().update(ctx, made, props, {**props, "Roles": ["second"]})
    profile = client.get_instance_profile(InstanceProfileName="ExampleQueueInstanceProfile")
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == ["second"]

    for _ in range(2):
        iam.InstanceProfile().delete(ctx, made, props)
    assert client.list_instance_profiles()["InstanceProfiles"] == []


def test_inline_policy_on_roles_and_users(make_ctx: Ctx, client: Any) -> None:
    client.create_role(RoleName="ExampleMaster", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    client.create_user(UserName="deployer")
    ctx = make_ctx("AWS::IAM::Policy", "BucketAccess")
    props = {
        "PolicyName": "bucket",
        "PolicyDocument": document("s3:GetObject"),
        "Roles": ["ExampleMaster"],
        "Users": ["deployer"],
    }
    made = iam.Policy().create(ctx, props)

    assert made.physical_id.startswith("unit--Bucke-")
    got = client.get_role_policy(RoleName="ExampleMaster", PolicyName="bucket")
    assert got["PolicyDocument"] == document("s3:GetObject")
    assert client.list_user_policies(UserName="deployer")["PolicyNames"] == ["bucket"]

    renamed = {**props, "PolicyName": "data", "Users": []}
    iam.Policy().update(ctx, made, props, renamed)
    assert client.list_role_policies(RoleName="ExampleMaster")["PolicyNames"] == ["data"]
    assert client.list_user_policies(UserName="deployer")["PolicyNames"] == []

    for _ in range(2):
        iam.Policy().delete(ctx, made, renamed)
    assert client.list_role_policies(RoleName="ExampleMaster")["PolicyNames"] == []


def test_managed_policy_versions_and_attachments(make_ctx: Ctx, client: Any) -> None:
    client.create_role(RoleName="worker", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    ctx = make_ctx("AWS::IAM::ManagedPolicy", "WorkerPolicy")
    props = {"PolicyDocument": document("ec2:DescribeInstances"), "Roles": ["worker"]}
    made = iam.ManagedPolicy().create(ctx, props)

    policy = client.get_policy(PolicyArn=made.physical_id)["Policy"]
    assert policy["PolicyName"].startswith("unit-stack-WorkerPolicy-")
    assert made.get_att("PolicyArn") == made.physical_id
    attached = client.list_attached_role_policies(RoleName="worker")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [made.physical_id]

    assert made.get_att("DefaultVersionId") == "v1"
    current = props
    for action in ("a", "b", "c", "d", "e", "f"):
        changed = {**current, "PolicyDocument": document(f"ec2:{action}")}
        made = iam.ManagedPolicy().update(ctx, made, current, changed)
        current = changed
    versions = client.list_policy_versions(PolicyArn=made.physical_id)["Versions"]
    default = next(v for v in versions if v["IsDefaultVersion"])
    assert len(versions) == 5
    assert made.get_att("DefaultVersionId") == default["VersionId"] == "v7"
    text = client.get_policy_version(PolicyArn=made.physical_id, VersionId=default["VersionId"])
    assert text["PolicyVersion"]["Document"] == document("ec2:f")

    for _ in range(2):
        iam.ManagedPolicy().delete(ctx, made, current)
    assert client.list_attached_role_policies(RoleName="worker")["AttachedPolicies"] == []
    assert client.list_policies(Scope="Local")["Policies"] == []


# Canaries: stock moto CloudFormation behaviour this module replaces.


def test_canary_moto_role_ignores_managed_policy_arns(stock_stack: Any, client: Any) -> None:
    managed = client.create_policy(PolicyName="p", PolicyDocument=json.dumps(document("s3:*")))
    stock_stack(
        {
            "Resources": {
                "Role": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {
                        "RoleName": "canary",
                        "AssumeRolePolicyDocument": EC2_TRUST,
                        "ManagedPolicyArns": [managed["Policy"]["Arn"]],
                    },
                }
            }
        }
    )
    assert client.list_attached_role_policies(RoleName="canary")["AttachedPolicies"] == []


def test_canary_moto_never_deletes_managed_policies(client: Any) -> None:
    cfn = boto3.client("cloudformation")
    template = {
        "Resources": {
            "Policy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {"PolicyDocument": document("s3:*")},
            }
        }
    }
    cfn.create_stack(StackName="canary", TemplateBody=json.dumps(template))
    cfn.delete_stack(StackName="canary")
    assert len(client.list_policies(Scope="Local")["Policies"]) == 1


def test_a_numeric_sid_reaches_iam_as_a_string(make_ctx: Ctx, client: Any) -> None:
    """IAM User Guide, "IAM JSON policy elements: Sid": a Sid holds letters and digits; a
    template may write one as a YAML number (`Sid: 1`), which CloudFormation accepts, so every
    IAM type takes it and IAM keeps the string "1" (a Sid given as JSON text goes as it is)."""

    def numbered(sid: int, action: str) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [{"Sid": sid, "Effect": "Allow", "Action": action, "Resource": "*"}],
        }

    trust = {**EC2_TRUST, "Statement": [{**EC2_TRUST["Statement"][0], "Sid": 1}]}
    role = iam.Role().create(
        make_ctx("AWS::IAM::Role"),
        {
            "AssumeRolePolicyDocument": trust,
            "Policies": [{"PolicyName": "own", "PolicyDocument": numbered(2, "s3:GetObject")}],
        },
    )
    iam.Policy().create(
        make_ctx("AWS::IAM::Policy"),
        {
            "PolicyName": "extra",
            "PolicyDocument": numbered(3, "sqs:SendMessage"),
            "Roles": [role.physical_id],
        },
    )
    managed = iam.ManagedPolicy().create(
        make_ctx("AWS::IAM::ManagedPolicy"), {"PolicyDocument": numbered(4, "kms:Decrypt")}
    )

    def sids(document: Any) -> list[Any]:
        parsed = json.loads(document) if isinstance(document, str) else document
        return [s["Sid"] for s in parsed["Statement"]]

    name = role.physical_id
    assert sids(client.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]) == ["1"]
    for policy, sid in (("own", "2"), ("extra", "3")):
        document = client.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        assert sids(document) == [sid]
    version = client.get_policy_version(PolicyArn=managed.physical_id, VersionId="v1")
    assert sids(version["PolicyVersion"]["Document"]) == ["4"]
