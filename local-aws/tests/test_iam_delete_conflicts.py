"""IAM refuses to delete what still has subordinate entities, through the API and through
CloudFormation, as AWS does (DeleteConflict, HTTP 409)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def _document(action: str) -> str:
    """A policy allowing `action` on everything, as JSON text."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
        }
    )


OWN = json.loads(_document("s3:*"))


def _conflict(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert error["Error"]["Code"] == "DeleteConflict"
    return str(error["Error"]["Message"])


def test_the_iam_api_refuses_deletions_aws_refuses(local_aws: LocalAwsHandle) -> None:
    """IAM API Reference, DeleteRole: "you must delete the items attached to the role manually,
    or the deletion fails" (inline policies, attached managed policies, instance profiles);
    DeletePolicy: "you must first detach the policy from all users, groups, and roles ... In
    addition, you must delete all the policy's versions"; DeleteInstanceProfile: "The instance
    profile must not have an associated role". Each answers DeleteConflict, HTTP 409."""
    iam = local_aws.client("iam")
    role = unique("conflicted")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName=role, PolicyName="inline", PolicyDocument=_document("s3:*"))
    assert _conflict(iam.delete_role, RoleName=role) == (
        "Cannot delete entity, must delete policies first."
    )
    iam.delete_role_policy(RoleName=role, PolicyName="inline")

    policy = iam.create_policy(PolicyName=unique("managed"), PolicyDocument=_document("s3:*"))
    arn = policy["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    assert _conflict(iam.delete_role, RoleName=role) == (
        "Cannot delete entity, must detach all policies first."
    )
    assert _conflict(iam.delete_policy, PolicyArn=arn) == (
        "Cannot delete a policy attached to entities."
    )
    iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=_document("sqs:*"), SetAsDefault=True)
    assert _conflict(iam.delete_policy, PolicyArn=arn).startswith(
        "This policy has more than one version."
    )
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    iam.delete_policy(PolicyArn=arn)

    profile = unique("profile")
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    assert _conflict(iam.delete_role, RoleName=role) == (
        "Cannot delete entity, must remove roles from instance profile first."
    )
    assert _conflict(iam.delete_instance_profile, InstanceProfileName=profile) == (
        "Cannot delete entity, must remove roles from instance profile first."
    )
    iam.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=role)
    iam.delete_instance_profile(InstanceProfileName=profile)
    iam.delete_role(RoleName=role)


def _failed_deletion(local_aws: LocalAwsHandle, stack: str) -> dict[str, str]:
    """Delete `stack`, which must end DELETE_FAILED; the reasons of its failed resources."""
    cloudformation = local_aws.client("cloudformation")
    cloudformation.delete_stack(StackName=stack)
    assert local_aws.wait_for_stack(stack)["StackStatus"] == "DELETE_FAILED"
    events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    return {
        e["LogicalResourceId"]: e["ResourceStatusReason"]
        for e in events
        if e["ResourceStatus"] == "DELETE_FAILED"
        and e["ResourceType"] != "AWS::CloudFormation::Stack"
    }


def _deleted(local_aws: LocalAwsHandle, stack: str) -> None:
    cloudformation = local_aws.client("cloudformation")
    stack_id = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackId"]
    cloudformation.delete_stack(StackName=stack_id)
    assert local_aws.wait_for_stack(stack_id)["StackStatus"] == "DELETE_COMPLETE"


def test_a_stack_cannot_delete_a_role_or_policy_another_stack_still_attaches(
    local_aws: LocalAwsHandle,
) -> None:
    """CloudFormation's AWS::IAM::Role handler removes only the role's own Policies and
    ManagedPolicyArns, and AWS::IAM::ManagedPolicy detaches only its own Roles/Users/Groups:
    a role given an inline policy by another stack, or a managed policy another stack's role
    attaches, fails to delete with IAM's DeleteConflict message (DELETE_FAILED, e.g. "Cannot
    delete entity, must delete policies first." as users report from AWS for out-of-band
    policies). Deleting the attaching stack first lets the owner go, the order AWS needs."""
    cloudformation = local_aws.client("cloudformation")
    role = unique("owned")
    owner, attacher = unique("owner"), unique("attacher")
    cloudformation.create_stack(
        StackName=owner,
        Capabilities=["CAPABILITY_NAMED_IAM"],
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "Role": {
                        "Type": "AWS::IAM::Role",
                        "Properties": {
                            "RoleName": role,
                            "AssumeRolePolicyDocument": json.loads(TRUST),
                            "Policies": [
                                {
                                    "PolicyName": "own",
                                    "PolicyDocument": json.loads(_document("s3:*")),
                                }
                            ],
                        },
                    },
                    "Shared": {
                        "Type": "AWS::IAM::ManagedPolicy",
                        "Properties": {"PolicyDocument": json.loads(_document("sqs:*"))},
                    },
                },
                "Outputs": {"Shared": {"Value": {"Ref": "Shared"}}},
            }
        ),
    )
    described = local_aws.wait_for_stack(owner)
    assert described["StackStatus"] == "CREATE_COMPLETE"
    shared = described["Outputs"][0]["OutputValue"]
    cloudformation.create_stack(
        StackName=attacher,
        Capabilities=["CAPABILITY_IAM"],
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "Access": {
                        "Type": "AWS::IAM::Policy",
                        "Properties": {
                            "PolicyName": "attached-by-another-stack",
                            "PolicyDocument": json.loads(_document("sqs:*")),
                            "Roles": [role],
                        },
                    },
                    "Other": {
                        "Type": "AWS::IAM::Role",
                        "Properties": {
                            "AssumeRolePolicyDocument": json.loads(TRUST),
                            "ManagedPolicyArns": [shared],
                        },
                    },
                }
            }
        ),
    )
    assert local_aws.wait_for_stack(attacher)["StackStatus"] == "CREATE_COMPLETE"

    assert _failed_deletion(local_aws, owner) == {
        "Shared": "Cannot delete a policy attached to entities.",
        "Role": "Cannot delete entity, must delete policies first.",
    }
    iam = local_aws.client("iam")
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["attached-by-another-stack"]

    _deleted(local_aws, attacher)
    _deleted(local_aws, owner)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role)
