"""With enforcement on, what the local AWS does on a principal's behalf is authorized too:
Service Catalog's launch role reads the template copy in Service Catalog's own bucket (another
account: the role's policy and the bucket's must both allow)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from localaws.harness import ROLE_POLICY, LocalAwsHandle, policy_document, unique

PARAMETER = """
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Name: {name}
      Type: String
      Value: launched
"""

#: A role an instance profile holds: EC2 may assume it.
TRUST_EC2 = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
#: The statement AWS's launch-constraint guide requires of every launch role.
TEMPLATE_COPIES = {
    "Sid": "ServiceCatalogTemplateCopies",
    "Effect": "Allow",
    "Action": "s3:GetObject",
    "Resource": "*",
    "Condition": {"StringEquals": {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}},
}


def _launch_role(aws: LocalAwsHandle, *statements: dict[str, Any]) -> str:
    """A launch role allowed `statements`: its name, as a launch constraint takes it."""
    arn = aws.iam_role("launch", {"Service": "servicecatalog.amazonaws.com"}, *statements)
    return arn.rsplit("/", 1)[1]


def _product(aws: LocalAwsHandle, upload: Callable[..., str], role_name: str) -> tuple[str, str]:
    """A portfolio with a one-parameter product launched as `role_name`: (product, artifact)."""
    sc = aws.client("servicecatalog")
    created = sc.create_product(
        Name=unique("setting"),
        Owner="tests",
        ProductType="CLOUD_FORMATION_TEMPLATE",
        ProvisioningArtifactParameters={
            "Name": "v1",
            "Info": {"LoadTemplateFromURL": upload(PARAMETER.format(name=unique("/launched/")))},
        },
    )
    product_id = created["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    portfolio_id = sc.create_portfolio(DisplayName=unique("iam"), ProviderName="tests")[
        "PortfolioDetail"
    ]["Id"]
    sc.associate_product_with_portfolio(ProductId=product_id, PortfolioId=portfolio_id)
    sc.create_constraint(
        PortfolioId=portfolio_id,
        ProductId=product_id,
        Type="LAUNCH",
        Parameters=json.dumps({"LocalRoleName": role_name}),
    )
    return product_id, created["ProvisioningArtifactDetail"]["Id"]


def _launched(aws: LocalAwsHandle, product: tuple[str, str]) -> dict[str, Any]:
    sc = aws.client("servicecatalog")
    record = sc.provision_product(
        ProductId=product[0],
        ProvisioningArtifactId=product[1],
        ProvisionedProductName=unique("pp"),
    )["RecordDetail"]
    for _ in range(600):
        detail: dict[str, Any] = sc.describe_record(Id=record["RecordId"])["RecordDetail"]
        if detail["Status"] in ("SUCCEEDED", "FAILED"):
            return detail
    raise AssertionError(f"record {record['RecordId']} never settled")


STACK_PERMISSIONS = {
    "Sid": "Stack",
    "Effect": "Allow",
    "Action": [
        "ssm:PutParameter",
        "ssm:GetParameters",
        "ssm:DeleteParameter",
        "ssm:AddTagsToResource",
    ],
    "Resource": "*",
}


def test_a_launch_role_must_read_service_catalogs_template_copy(
    enforcing: LocalAwsHandle, upload: Callable[..., str]
) -> None:
    """Service Catalog Administrator Guide, "Launch constraints": the launch role needs
    s3:GetObject on objects tagged servicecatalog:provisioning=true; without it the launch
    fails with S3's AccessDenied, and with it the same product launches."""
    without = _launch_role(enforcing, STACK_PERMISSIONS)
    failed = _launched(enforcing, _product(enforcing, upload, without))
    assert failed["Status"] == "FAILED"
    (error,) = failed["RecordErrors"]
    assert error["Code"] == "AccessDenied"
    assert (
        f"assumed-role/{without}/AWSCloudFormation is not authorized to perform: s3:GetObject"
        in (error["Description"])
    )
    assert ":s3:::servicecatalog-provisioning-" in error["Description"]

    with_copies = _launch_role(enforcing, STACK_PERMISSIONS, TEMPLATE_COPIES)
    launched = _launched(enforcing, _product(enforcing, upload, with_copies))
    assert launched["Status"] == "SUCCEEDED", launched.get("RecordErrors")


# ---- CloudFormation acting as the stack's role ------------------------------------------------


def _stack_role(aws: LocalAwsHandle, *statements: dict[str, Any]) -> str:
    """A role CloudFormation may assume, allowed `statements`: its ARN."""
    return aws.iam_role("stack-role", {"Service": "cloudformation.amazonaws.com"}, *statements)


def test_cloudformation_acts_as_the_stacks_role(enforcing: LocalAwsHandle) -> None:
    """A stack's RoleARN makes every resource operation: the handler's permissions
    (AWS::SSM::Parameter's create needs ssm:PutParameter) on the resource's ARN, or the
    resource fails with AWS's message and the stack rolls back; an allowed create succeeds,
    and a delete the role may not make fails the delete."""
    cfn = enforcing.client("cloudformation")
    name = unique("/stack-role/")
    body = PARAMETER.format(name=name)
    arn = f"arn:aws:ssm:{enforcing.region}:123456789012:parameter{name}"
    reader = _stack_role(
        enforcing, {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "*"}
    )
    denied = unique("denied")
    cfn.create_stack(StackName=denied, TemplateBody=body, RoleARN=reader)
    assert enforcing.wait_for_stack(denied)["StackStatus"] == "ROLLBACK_COMPLETE"
    reason = enforcing.first_failure(denied)
    assert (
        f"assumed-role/{reader.rsplit('/', 1)[1]}/AWSCloudFormation is not authorized to perform: "
        f"ssm:PutParameter on resource: {arn} because no identity-based policy allows"
    ) in reason
    assert "HandlerErrorCode: AccessDenied" in reason

    writer = _stack_role(
        enforcing,
        {
            "Effect": "Allow",
            "Action": ["ssm:PutParameter", "ssm:AddTagsToResource", "ssm:GetParameters"],
            "Resource": arn,
        },
    )
    made = unique("made")
    cfn.create_stack(StackName=made, TemplateBody=body, RoleARN=writer)
    assert enforcing.wait_for_stack(made)["StackStatus"] == "CREATE_COMPLETE"
    cfn.delete_stack(StackName=made)
    assert enforcing.wait_for_stack(made)["StackStatus"] == "DELETE_FAILED"
    assert f"ssm:DeleteParameter on resource: {arn}" in enforcing.first_failure(made)


def test_a_custom_resource_needs_invoke_on_its_service_token(
    enforcing: LocalAwsHandle, provider_arn: str
) -> None:
    """CloudFormation invokes a custom resource's Lambda function as the stack's role."""
    cfn = enforcing.client("cloudformation")
    role = _stack_role(enforcing, {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"})
    stack = unique("custom")
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "Thing": {
                        "Type": "Custom::Thing",
                        "Properties": {"ServiceToken": provider_arn, "Prefix": unique("p")},
                    }
                }
            }
        ),
        RoleARN=role,
    )
    assert enforcing.wait_for_stack(stack)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert f"lambda:InvokeFunction on resource: {provider_arn}" in enforcing.first_failure(stack)


def test_permissions_a_handler_uses_only_for_a_property_are_not_asked_without_it(
    enforcing: LocalAwsHandle,
) -> None:
    """AWS::IAM::Role's create handler declares iam:AttachRolePolicy but calls it only for
    ManagedPolicyArns: a role without them is created by a stack role that lacks it, and one
    with them is not."""
    cfn = enforcing.client("cloudformation")
    stack_role = _stack_role(
        enforcing,
        {
            "Effect": "Allow",
            "Action": [
                "iam:CreateRole",
                "iam:GetRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:PutRolePolicy",
                "iam:GetRolePolicy",
            ],
            "Resource": "*",
        },
    )

    def role(managed: list[str]) -> str:
        properties: dict[str, Any] = {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}
        }
        if managed:
            properties["ManagedPolicyArns"] = managed
        return json.dumps(
            {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": properties}}}
        )

    plain = unique("plain-role")
    cfn.create_stack(
        StackName=plain, TemplateBody=role([]), RoleARN=stack_role, Capabilities=["CAPABILITY_IAM"]
    )
    assert enforcing.wait_for_stack(plain)["StackStatus"] == "CREATE_COMPLETE"
    managed = unique("managed-role")
    cfn.create_stack(
        StackName=managed,
        TemplateBody=role(["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
        RoleARN=stack_role,
        Capabilities=["CAPABILITY_IAM"],
    )
    assert enforcing.wait_for_stack(managed)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert (
        "iam:AttachRolePolicy on resource: arn:aws:iam::123456789012:role/"
        in enforcing.first_failure(managed)
    )


def test_an_inline_policy_and_an_instance_profile_are_authorized_on_their_roles(
    enforcing: LocalAwsHandle,
) -> None:
    """AWS::IAM::Policy puts its document on the roles it names (iam:PutRolePolicy on each
    role), and an instance profile's AddRoleToInstanceProfile needs iam:PassRole on the role
    (IAM API Reference): a stack role allowed everything in IAM but on that role fails both."""
    iam = enforcing.client("iam")
    holder = unique("holder")
    held = iam.create_role(RoleName=holder, AssumeRolePolicyDocument=json.dumps(TRUST_EC2))
    holder_arn = held["Role"]["Arn"]
    role = _stack_role(enforcing, {"Effect": "Allow", "Action": "iam:*", "NotResource": holder_arn})
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
    }
    templates = {
        "iam:GetRolePolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {"PolicyName": "p", "Roles": [holder], "PolicyDocument": document},
        },
        "iam:PassRole": {"Type": "AWS::IAM::InstanceProfile", "Properties": {"Roles": [holder]}},
    }
    cfn = enforcing.client("cloudformation")
    for action, resource in templates.items():
        stack = unique("held")
        cfn.create_stack(
            StackName=stack,
            TemplateBody=json.dumps({"Resources": {"It": resource}}),
            RoleARN=role,
            Capabilities=["CAPABILITY_IAM"],
        )
        assert enforcing.wait_for_stack(stack)["StackStatus"] == "ROLLBACK_COMPLETE"
        assert f"{action} on resource: {holder_arn} because" in enforcing.first_failure(stack)


def test_recorded_accesses_are_judged_again_against_the_policies_as_they_are_now(
    enforcing: LocalAwsHandle,
) -> None:
    """`POST /_localaws/accesses/judge`: a stack's recorded operations, judged again after its
    role lost a permission, name the operation it would now fail; nothing is recorded."""
    name = unique("/judged/")
    allowed = {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}
    role = _stack_role(enforcing, allowed)
    stack = unique("judged")
    cfn = enforcing.client("cloudformation")
    cfn.create_stack(StackName=stack, TemplateBody=PARAMETER.format(name=name), RoleARN=role)
    assert enforcing.wait_for_stack(stack)["StackStatus"] == "CREATE_COMPLETE"
    made = [a for a in enforcing.control("accesses") if f"in stack {stack}" in a["Purpose"]]
    assert {a["Action"] for a in made} >= {"ssm:PutParameter"}
    kept = len(enforcing.control("accesses"))

    assert enforcing.control("accesses/judge", {"operations": [made]}) == {"denials": [None]}
    iam = enforcing.client("iam")
    narrower = {**allowed, "NotAction": "ssm:PutParameter"}
    del narrower["Action"]
    iam.put_role_policy(
        RoleName=role.rsplit("/", 1)[1],
        PolicyName=ROLE_POLICY,
        PolicyDocument=policy_document(narrower),
    )
    [denial] = enforcing.control("accesses/judge", {"operations": [made]})["denials"]
    assert "is not authorized to perform: ssm:PutParameter" in denial
    assert len(enforcing.control("accesses")) == kept
    with pytest.raises(RuntimeError, match="HTTP 400"):
        enforcing.control("accesses/judge", {"operations": [[{"Action": "ssm:PutParameter"}]]})
