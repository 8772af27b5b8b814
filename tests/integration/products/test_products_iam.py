"""The IAM product (iam.yml) launched: the roles of Valohai and its machines, read back from IAM."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import unique

from tests.support.products import (
    EXTERNAL_ID,
    VALOHAI_PRINCIPAL,
    Aws,
    Products,
    Setup,
    allowed,
    granted_actions,
    resource_tags,
    role_policies,
)
from valohai_hybrid.products import IAM

ACCOUNT = "123456789012"
EC2 = f"arn:aws:ec2:eu-north-1:{ACCOUNT}"
AUTOSCALING_GROUP = (
    f"arn:aws:autoscaling:eu-north-1:{ACCOUNT}:autoScalingGroup:"
    "0a1b2c3d-0000-4000-8000-000000000000:autoScalingGroupName/valohai-workers"
)
TAGGED = {"aws:ResourceTag/valohai": "1"}
REQUEST_TAGGED = {"aws:RequestTag/valohai": "1"}
READ_SECRET_ACTIONS = {
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecretVersionIds",
}
#: Every permission the reference gives ValohaiMaster (and nothing else).
MASTER_ACTIONS = {
    *(
        f"ec2:{action}"
        for action in (
            "DescribeInstances",
            "DescribeVpcs",
            "DescribeKeyPairs",
            "DescribeImages",
            "DescribeSecurityGroups",
            "DescribeSubnets",
            "DescribeInstanceTypes",
            "DescribeLaunchTemplates",
            "DescribeLaunchTemplateVersions",
            "DescribeInstanceAttribute",
            "DescribeInternetGateways",
            "DescribeRouteTables",
            "CreateTags",
            "CreateLaunchTemplate",
            "CreateLaunchTemplateVersion",
            "ModifyLaunchTemplate",
            "RunInstances",
            "TerminateInstances",
            "RebootInstances",
        )
    ),
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:UpdateAutoScalingGroup",
    "autoscaling:CreateOrUpdateTags",
    "autoscaling:SetDesiredCapacity",
    "autoscaling:CreateAutoScalingGroup",
    "iam:CreateServiceLinkedRole",
    "iam:PassRole",
    "iam:GetRole",
    *READ_SECRET_ACTIONS,
    "secretsmanager:GetRandomPassword",
}
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


@pytest.fixture(scope="module")
def iam(aws: Aws) -> Any:
    return aws("iam")


@pytest.fixture(scope="module")
def master(iam: Any, iam_setup: Setup) -> list[dict[str, Any]]:
    """ValohaiMaster's policy from the IAM product (each Workers setup adds its bucket's)."""
    policy = iam.get_role_policy(RoleName="ValohaiMaster", PolicyName="ValohaiMasterPolicy")
    return [policy["PolicyDocument"]]


def trust(iam: Any, role: str) -> dict[str, Any]:
    document: dict[str, Any] = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    return document


def test_valohai_master_is_trusted_by_valohais_principal_with_the_external_id(
    iam: Any, iam_setup: Setup
) -> None:
    role = iam.get_role(RoleName="ValohaiMaster")["Role"]
    [statement] = trust(iam, "ValohaiMaster")["Statement"]

    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": VALOHAI_PRINCIPAL}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
    assert iam_setup.outputs["ValohaiMasterRoleARN"] == role["Arn"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/ValohaiMaster"
    assert resource_tags(role.get("Tags")) == {"valohai": "1"}


WEAK_TRUSTS = [
    pytest.param(
        {"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": ""},
        "ExternalId",
        "if you have none, ask your Valohai contact for one",
        id="empty-external-id",
    ),
    pytest.param(
        {"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": "x"},
        "ExternalId",
        "2-1224 letters, digits",
        id="one-character",
    ),
    pytest.param(
        {"AssumeRoleARN": "arn:aws:iam::905675611115:root", "ExternalId": EXTERNAL_ID},
        "AssumeRoleARN",
        "ask Valohai for the principal's own ARN",
        id="whole-account",
    ),
]


def assert_refused(refused: pytest.ExceptionInfo[ClientError], parameter: str, fix: str) -> None:
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidParametersException"
    assert parameter in error["Message"]
    assert fix in error["Message"]


@pytest.mark.parametrize(
    ("values", "parameter", "fix"),
    [
        pytest.param(
            {"AssumeRoleARN": VALOHAI_PRINCIPAL},
            "ExternalId",
            "must have values",
            id="no-external-id",
        ),
        *WEAK_TRUSTS,
    ],
)
def test_valohai_master_cannot_be_trusted_without_an_external_id_or_by_a_whole_account(
    iam: Any,
    products: Products,
    values: dict[str, str],
    parameter: str,
    fix: str,
) -> None:
    """A new IAM launch does not get past the parameters: nothing is provisioned."""
    before = trust(iam, "ValohaiMaster")
    name = unique("valohai-iam-weak-trust")

    with pytest.raises(ClientError) as refused:
        products.provision(IAM, name, values)

    assert_refused(refused, parameter, fix)
    servicecatalog = products.admin.client("servicecatalog")
    with pytest.raises(servicecatalog.exceptions.ResourceNotFoundException):
        servicecatalog.describe_provisioned_product(Name=name)
    assert trust(iam, "ValohaiMaster") == before


@pytest.mark.parametrize(("values", "parameter", "fix"), WEAK_TRUSTS)
def test_an_update_cannot_weaken_valohai_masters_trust(
    aws: Aws,
    iam: Any,
    products: Products,
    iam_setup: Setup,
    values: dict[str, str],
    parameter: str,
    fix: str,
) -> None:
    """Nor does an update of the launched IAM product: its stack is left as it was. (An update
    that leaves ExternalId out keeps its value, so only given values are tried here.)"""
    before = trust(iam, "ValohaiMaster")
    stack = aws("cloudformation").describe_stacks(StackName=iam_setup.stack_id)["Stacks"][0]

    with pytest.raises(ClientError) as refused:
        products.request_update(iam_setup, values)

    assert_refused(refused, parameter, fix)
    after = aws("cloudformation").describe_stacks(StackName=iam_setup.stack_id)["Stacks"][0]
    assert (after["StackStatus"], after["Parameters"]) == (
        stack["StackStatus"],
        stack["Parameters"],
    )
    assert trust(iam, "ValohaiMaster") == before


def test_valohai_master_has_exactly_the_permissions_of_the_reference(
    master: list[dict[str, Any]],
) -> None:
    assert granted_actions(master) == MASTER_ACTIONS
    # Describe actions have no resource-level permissions: they must apply to every resource.
    for action in [a for a in MASTER_ACTIONS if a.startswith(("ec2:Describe", "autoscaling:D"))]:
        assert allowed(master, action, "*"), action


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("ec2:RunInstances", f"{EC2}:instance/*"),
        ("ec2:CreateLaunchTemplate", f"{EC2}:launch-template/*"),
        ("autoscaling:CreateAutoScalingGroup", AUTOSCALING_GROUP),
    ],
)
def test_valohai_creates_only_what_it_tags_valohai_1(
    master: list[dict[str, Any]], action: str, resource: str
) -> None:
    assert allowed(master, action, resource, REQUEST_TAGGED)
    assert not allowed(master, action, resource, {"aws:RequestTag/valohai": "0"})
    assert not allowed(master, action, resource)


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("ec2:TerminateInstances", f"{EC2}:instance/i-0123456789abcdef0"),
        ("ec2:RebootInstances", f"{EC2}:instance/i-0123456789abcdef0"),
        ("ec2:CreateLaunchTemplateVersion", f"{EC2}:launch-template/lt-0123456789abcdef0"),
        ("ec2:ModifyLaunchTemplate", f"{EC2}:launch-template/lt-0123456789abcdef0"),
        ("ec2:RunInstances", f"{EC2}:launch-template/lt-0123456789abcdef0"),
        ("autoscaling:UpdateAutoScalingGroup", AUTOSCALING_GROUP),
        ("autoscaling:SetDesiredCapacity", AUTOSCALING_GROUP),
        ("autoscaling:CreateOrUpdateTags", AUTOSCALING_GROUP),
    ],
)
def test_valohai_touches_only_resources_tagged_valohai_1(
    master: list[dict[str, Any]], action: str, resource: str
) -> None:
    assert allowed(master, action, resource, TAGGED)
    # The originals' ForAllValues condition let untagged resources through: not these.
    assert not allowed(master, action, resource)
    assert not allowed(master, action, resource, {"aws:ResourceTag/valohai": "0"})
    assert not allowed(master, action, resource, {"aws:ResourceTag/Valohai": "1"})


def test_valohai_runs_instances_from_the_accounts_images_subnets_and_groups(
    master: list[dict[str, Any]],
) -> None:
    for kind in ("subnet", "security-group", "key-pair", "network-interface", "volume", "image"):
        assert allowed(master, "ec2:RunInstances", f"{EC2}:{kind}/x-0123"), kind
    assert allowed(master, "ec2:RunInstances", "arn:aws:ec2:eu-north-1::image/ami-0123")
    assert not allowed(master, "ec2:RunInstances", "arn:aws:ec2:eu-north-1:999999999999:subnet/x")


def test_tags_are_written_only_while_creating_or_on_valohai_resources(
    master: list[dict[str, Any]],
) -> None:
    instance = f"{EC2}:instance/i-0123456789abcdef0"
    assert allowed(master, "ec2:CreateTags", instance, {"ec2:CreateAction": "RunInstances"})
    assert allowed(master, "ec2:CreateTags", instance, TAGGED)
    assert not allowed(master, "ec2:CreateTags", instance)
    assert not allowed(master, "ec2:CreateTags", instance, {"ec2:CreateAction": "CreateVpc"})


def test_valohai_passes_only_the_worker_role_and_only_to_ec2(
    iam: Any, master: list[dict[str, Any]]
) -> None:
    worker = iam.get_role(RoleName="ValohaiWorkerRole")["Role"]["Arn"]
    to_ec2 = {"iam:PassedToService": "ec2.amazonaws.com"}

    assert allowed(master, "iam:PassRole", worker, to_ec2)
    assert not allowed(
        master, "iam:PassRole", worker, {"iam:PassedToService": "lambda.amazonaws.com"}
    )
    for other in ("ValohaiMaster", "ValohaiQueueRole"):
        arn = iam.get_role(RoleName=other)["Role"]["Arn"]
        assert not allowed(master, "iam:PassRole", arn, to_ec2), other
        assert not allowed(master, "iam:GetRole", arn), other
    assert allowed(master, "iam:GetRole", worker)


def test_valohai_creates_only_the_auto_scaling_service_linked_role(
    master: list[dict[str, Any]],
) -> None:
    linked = (
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/"
        "AWSServiceRoleForAutoScaling"
    )
    autoscaling = {"iam:AWSServiceName": "autoscaling.amazonaws.com"}
    assert allowed(master, "iam:CreateServiceLinkedRole", linked, autoscaling)
    assert not allowed(
        master,
        "iam:CreateServiceLinkedRole",
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
        {"iam:AWSServiceName": "ecs.amazonaws.com"},
    )


def test_worker_role_lets_a_worker_find_and_protect_itself_only(iam: Any, iam_setup: Setup) -> None:
    role = iam.get_role(RoleName="ValohaiWorkerRole")["Role"]
    policies = role_policies(iam, "ValohaiWorkerRole")

    assert trust(iam, "ValohaiWorkerRole") == EC2_TRUST
    assert granted_actions(policies) == {
        "autoscaling:SetInstanceProtection",
        "ec2:DescribeInstances",
    }
    assert allowed(policies, "ec2:DescribeInstances", "*")
    assert allowed(policies, "autoscaling:SetInstanceProtection", AUTOSCALING_GROUP, TAGGED)
    assert not allowed(policies, "autoscaling:SetInstanceProtection", AUTOSCALING_GROUP)
    assert resource_tags(role.get("Tags")) == {"valohai": "1"}


def test_queue_role_reads_only_valohai_secrets(iam: Any, iam_setup: Setup) -> None:
    role = iam.get_role(RoleName="ValohaiQueueRole")["Role"]
    policies = role_policies(iam, "ValohaiQueueRole")
    secret = f"arn:aws:secretsmanager:eu-north-1:{ACCOUNT}:secret:ValohaiRedisSecret-AbCdEf"

    assert trust(iam, "ValohaiQueueRole") == EC2_TRUST
    assert granted_actions(policies) == {*READ_SECRET_ACTIONS, "secretsmanager:GetRandomPassword"}
    for action in READ_SECRET_ACTIONS:
        assert allowed(policies, action, secret, TAGGED), action
        assert not allowed(policies, action, secret), action
    assert allowed(policies, "secretsmanager:GetRandomPassword", "*")
    assert resource_tags(role.get("Tags")) == {"valohai": "1"}


@pytest.mark.parametrize(
    ("profile", "role", "output"),
    [
        ("ValohaiWorkerInstanceProfile", "ValohaiWorkerRole", "ValohaiWorkerInstanceProfile"),
        ("ValohaiQueueInstanceProfile", "ValohaiQueueRole", "ValohaiQueueInstanceProfile"),
    ],
)
def test_instance_profiles_hold_their_role_and_are_outputs(
    iam: Any, iam_setup: Setup, profile: str, role: str, output: str
) -> None:
    found = iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]
    outputs = iam_setup.outputs

    assert [r["RoleName"] for r in found["Roles"]] == [role]
    assert outputs[f"{output}Name"] == profile
    assert outputs[f"{output}Arn"] == found["Arn"]
    assert outputs[f"{role}Arn"] == iam.get_role(RoleName=role)["Role"]["Arn"]


def test_a_malformed_principal_arn_is_refused_before_anything_exists(products: Products) -> None:
    name = unique("valohai-iam-malformed")
    with pytest.raises(ClientError) as refused:
        products.provision(IAM, name, {"AssumeRoleARN": "905675611115", "ExternalId": EXTERNAL_ID})

    assert_refused(refused, "AssumeRoleARN", "arn:aws:iam::905675611115:user/valohai-customer-acme")
    servicecatalog = products.admin.client("servicecatalog")
    with pytest.raises(servicecatalog.exceptions.ResourceNotFoundException):
        servicecatalog.describe_provisioned_product(Name=name)
