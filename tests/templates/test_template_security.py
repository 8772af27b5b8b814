"""Security facts of the templates that need no running AWS: IAM conditions and scoping, security
group rules, and nothing hard-coded that differs between partitions, regions and accounts."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support.cfn import PRODUCT_TEMPLATES, load, resources, walk

TAG_CONDITION_KEYS = {"aws:ResourceTag/valohai", "aws:RequestTag/valohai"}


def policy_statements() -> list[tuple[str, str, dict[str, Any]]]:
    """(template, resource, statement) for every identity-policy statement of the product."""
    found = []
    for template in PRODUCT_TEMPLATES:
        for name, resource in load(template)["Resources"].items():
            properties = resource.get("Properties", {})
            documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
            if resource["Type"] == "AWS::IAM::Policy":
                documents.append(properties["PolicyDocument"])
            for document in documents:
                found += [(template, name, statement) for statement in document["Statement"]]
    return found


def statements_with(action: str, resource_name: str = "ValohaiMasterRole") -> list[dict[str, Any]]:
    return [
        s
        for _, name, s in policy_statements()
        if name == resource_name and action in as_list(s["Action"])
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_arns(statement: dict[str, Any]) -> list[str]:
    """The ARN patterns of a statement's Resource, written literally or with Fn::Sub."""
    return [r["Fn::Sub"] if isinstance(r, dict) else r for r in as_list(statement["Resource"])]


def master_policy() -> list[dict[str, Any]]:
    role = load("iam.yml")["Resources"]["ValohaiMasterRole"]
    statements: list[dict[str, Any]] = role["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    return statements


def test_tag_conditions_are_single_valued_string_equals_on_the_lower_case_key() -> None:
    tag_conditions = 0
    for template, name, statement in policy_statements():
        for operator, keys in statement.get("Condition", {}).items():
            assert not operator.startswith(("ForAllValues:", "ForAnyValue:")), (template, name)
            for key, value in keys.items():
                if "Tag/" in key:
                    tag_conditions += 1
                    assert operator == "StringEquals", (template, name, statement.get("Sid"))
                    assert key in TAG_CONDITION_KEYS, (template, name, key)
                    assert value == "1", (template, name, key)
    assert tag_conditions >= 10


@pytest.mark.parametrize(
    ("action", "resource_kind"),
    [
        ("ec2:CreateLaunchTemplate", "launch-template"),
        ("ec2:RunInstances", "instance"),
        ("autoscaling:CreateAutoScalingGroup", "autoScalingGroup"),
    ],
)
def test_creating_requires_the_tag_in_the_request(action: str, resource_kind: str) -> None:
    statements = [
        s
        for s in statements_with(action)
        if any(re.search(f":{resource_kind}[/:]", arn) for arn in resource_arns(s))
    ]
    assert len(statements) == 1
    assert statements[0]["Condition"] == {"StringEquals": {"aws:RequestTag/valohai": "1"}}


@pytest.mark.parametrize(
    ("action", "role"),
    [
        ("ec2:CreateLaunchTemplateVersion", "ValohaiMasterRole"),
        ("ec2:ModifyLaunchTemplate", "ValohaiMasterRole"),
        ("ec2:TerminateInstances", "ValohaiMasterRole"),
        ("ec2:RebootInstances", "ValohaiMasterRole"),
        ("autoscaling:UpdateAutoScalingGroup", "ValohaiMasterRole"),
        ("autoscaling:SetDesiredCapacity", "ValohaiMasterRole"),
        ("autoscaling:CreateOrUpdateTags", "ValohaiMasterRole"),
        ("secretsmanager:GetSecretValue", "ValohaiMasterRole"),
        ("secretsmanager:DescribeSecret", "ValohaiMasterRole"),
        ("secretsmanager:GetSecretValue", "ValohaiQueueRole"),
        ("autoscaling:SetInstanceProtection", "ValohaiWorkerRole"),
    ],
)
def test_acting_on_existing_resources_requires_their_valohai_tag(action: str, role: str) -> None:
    statements = statements_with(action, role)
    assert statements
    for statement in statements:
        assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/valohai": "1"}}


def test_tags_can_only_be_written_while_creating_or_on_valohai_resources() -> None:
    """An unconditioned ec2:CreateTags would let Valohai tag any instance valohai=1 and so
    gain the right to terminate it."""
    conditions = [s["Condition"] for s in statements_with("ec2:CreateTags")]
    assert conditions == [
        {"StringEquals": {"ec2:CreateAction": ["RunInstances", "CreateLaunchTemplate"]}},
        {"StringEquals": {"aws:ResourceTag/valohai": "1"}},
    ]


def test_valohai_master_is_assumed_only_by_the_given_principal_with_the_external_id() -> None:
    """No way to launch without the confused-deputy guard: the condition is unconditional and
    the parameter has no default, so CloudFormation refuses a launch without it."""
    template = load("iam.yml")
    trust = template["Resources"]["ValohaiMasterRole"]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"AWS": {"Ref": "AssumeRoleARN"}}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    assert "Default" not in template["Parameters"]["ExternalId"]
    assert "Conditions" not in template


def test_pass_role_covers_only_the_worker_role_passed_to_ec2() -> None:
    grants = [
        (name, s) for _, name, s in policy_statements() if "iam:PassRole" in as_list(s["Action"])
    ]
    assert [name for name, _ in grants] == ["ValohaiMasterRole"]
    (_, statement) = grants[0]
    assert statement["Resource"] == {"Fn::GetAtt": ["ValohaiWorkerRole", "Arn"]}
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": {"Fn::Sub": "ec2.${AWS::URLSuffix}"}}
    }


def test_no_wildcard_actions() -> None:
    for template, name, statement in policy_statements():
        for action in as_list(statement["Action"]):
            assert "*" not in action, (template, name, action)


def test_only_actions_without_resource_level_permissions_apply_to_every_resource() -> None:
    for template, name, statement in policy_statements():
        if statement["Resource"] == "*":
            for action in as_list(statement["Action"]):
                assert re.fullmatch(
                    r"(ec2|autoscaling):Describe\w+|secretsmanager:GetRandomPassword", action
                ), (template, name, action)


def test_valohai_master_keeps_every_permission_of_the_reference() -> None:
    granted = {action for s in master_policy() for action in as_list(s["Action"])}
    assert {
        "ec2:DescribeInstances",
        "ec2:DescribeVpcs",
        "ec2:DescribeKeyPairs",
        "ec2:DescribeImages",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeInstanceAttribute",
        "ec2:DescribeInternetGateways",
        "ec2:DescribeRouteTables",
        "ec2:CreateTags",
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeScalingActivities",
        "ec2:CreateLaunchTemplate",
        "ec2:CreateLaunchTemplateVersion",
        "ec2:ModifyLaunchTemplate",
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ec2:RebootInstances",
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:CreateOrUpdateTags",
        "autoscaling:SetDesiredCapacity",
        "autoscaling:CreateAutoScalingGroup",
        "iam:CreateServiceLinkedRole",
        "iam:PassRole",
        "iam:GetRole",
        "secretsmanager:GetResourcePolicy",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:GetRandomPassword",
    } == granted


def test_multipart_role_is_assumed_by_valohai_master_and_limited_to_the_bucket() -> None:
    role = load("s3bucket.yml")["Resources"]["MultipartRole"]["Properties"]
    assert role["RoleName"] == {"Fn::Sub": "ValohaiS3MultipartRole-${Suffix}"}
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    # Derived from the stack, never from a parameter: another account's role cannot be named.
    assert trust["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/ValohaiMaster"}
    }
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in s["Action"]}
    assert actions == {
        "s3:AbortMultipartUpload",
        "s3:GetBucketLocation",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "s3:ListBucketVersions",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
    }
    assert {s["Resource"]["Fn::Sub"] for s in statements} == {
        "arn:${AWS::Partition}:s3:::valohai-data-${Suffix}",
        "arn:${AWS::Partition}:s3:::valohai-data-${Suffix}/*",
    }


#: The S3 actions Valohai's service uses on its data bucket (reference: the data store and the
#: multipart uploads over 5 GB; CORS read for browser uploads), and none that changes the bucket.
VALOHAI_BUCKET_ACTIONS = {
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
}
VALOHAI_OBJECT_ACTIONS = {
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
}


def test_valohai_master_may_use_the_data_but_not_change_the_bucket() -> None:
    access = load("s3bucket.yml")["Resources"]["ValohaiMasterBucketAccess"]["Properties"]
    assert access["Roles"] == ["ValohaiMaster"]
    by_resource: dict[str, set[str]] = {}
    for statement in access["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            key = resource.get("Fn::Sub") or json.dumps(resource)
            by_resource.setdefault(key, set()).update(as_list(statement["Action"]))
    assert by_resource == {
        "arn:${AWS::Partition}:s3:::valohai-data-${Suffix}": VALOHAI_BUCKET_ACTIONS,
        "arn:${AWS::Partition}:s3:::valohai-data-${Suffix}/*": VALOHAI_OBJECT_ACTIONS,
        json.dumps({"Fn::GetAtt": ["MultipartRole", "Arn"]}): {"sts:AssumeRole"},
    }


def security_group_rules() -> list[tuple[str, str, dict[str, Any]]]:
    """(template, resource, rule) for inline and standalone security group rules."""
    found = []
    for template in PRODUCT_TEMPLATES:
        for name, resource in load(template)["Resources"].items():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::EC2::SecurityGroup":
                for key in ("SecurityGroupIngress", "SecurityGroupEgress"):
                    found += [(template, name, rule) for rule in properties.get(key, [])]
            elif resource["Type"] in (
                "AWS::EC2::SecurityGroupIngress",
                "AWS::EC2::SecurityGroupEgress",
            ):
                found.append((template, name, properties))
    return found


def test_every_security_group_rule_is_described() -> None:
    rules = security_group_rules()
    assert len(rules) == 6
    for template, name, rule in rules:
        assert len(str(rule.get("Description", "")).split()) >= 3, (template, name, rule)


def test_queue_accepts_exactly_acme_redis_from_valohai_and_workers_and_ssh_only_if_asked() -> None:
    template = load("worker-queue.yml")
    queue = template["Resources"]["QueueSecurityGroup"]["Properties"]
    assert queue["GroupName"] == "valohai-sg-queue"
    inbound = [
        (r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIp") or r["SourceSecurityGroupId"])
        for r in queue["SecurityGroupIngress"]
    ]
    assert inbound == [
        ("tcp", 80, 80, "0.0.0.0/0"),
        ("tcp", 63790, 63790, {"Ref": "ValohaiEgressCidr"}),
        ("tcp", 63790, 63790, {"Fn::GetAtt": ["WorkerSecurityGroup", "GroupId"]}),
    ]
    ssh = template["Resources"]["MaintenanceSshIngress"]
    assert ssh["Condition"] == "HasMaintenanceSsh"
    assert ssh["Properties"]["GroupId"] == {"Fn::GetAtt": ["QueueSecurityGroup", "GroupId"]}
    assert (ssh["Properties"]["FromPort"], ssh["Properties"]["ToPort"]) == (22, 22)
    assert ssh["Properties"]["CidrIp"] == {"Ref": "MaintenanceSshCidr"}
    assert template["Conditions"]["HasMaintenanceSsh"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MaintenanceSshCidr"}, ""]}]
    }
    main = load("main.yml")["Parameters"]
    assert main["ValohaiEgressCidr"]["Default"] == "34.248.245.191/32"
    # SSH stays closed unless the customer opens it.
    assert main["MaintenanceSshCidr"]["Default"] == ""


def test_workers_accept_nothing_and_reach_everything() -> None:
    workers = load("worker-queue.yml")["Resources"]["WorkerSecurityGroup"]["Properties"]
    assert workers["GroupName"] == "valohai-sg-workers"
    assert "SecurityGroupIngress" not in workers
    ((rule),) = workers["SecurityGroupEgress"]
    assert (rule["IpProtocol"], rule["CidrIp"]) == ("-1", "0.0.0.0/0")


def strings_outside_parameters(template: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Every string the template uses (parameter patterns and descriptions left out)."""
    return [
        (path, value)
        for section in ("Resources", "Outputs", "Conditions", "Mappings", "Rules")
        for path, value in walk(template.get(section, {}), (section,))
        if isinstance(value, str)
    ]


@pytest.mark.parametrize("template", PRODUCT_TEMPLATES)
def test_nothing_partition_region_or_account_specific_is_hard_coded(template: str) -> None:
    for path, value in strings_outside_parameters(load(template)):
        assert "arn:aws:" not in value, path
        assert not re.search(
            r"\b(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov)?-[a-z]+-\d[a-z]?\b", value
        ), path
        assert not re.search(r"\b\d{12}\b", value), path
        assert not re.search(r"\bami-[0-9a-f]{8,17}\b", value), path


@pytest.mark.parametrize("template", PRODUCT_TEMPLATES)
def test_no_machine_image_or_availability_zone_is_hard_coded(template: str) -> None:
    for path, value in walk(load(template)):
        if isinstance(value, str):
            assert not re.search(r"\bami-[0-9a-f]{8,17}\b", value), path
        if path and path[-1] == "AvailabilityZone" and path[0] == "Resources":
            assert isinstance(value, dict), path


def test_subnets_spread_over_the_regions_own_zones_in_order() -> None:
    stacks = resources(load("network.yml"), "AWS::CloudFormation::Stack")
    assert sorted(stacks) == [f"Subnet{n}" for n in range(1, 7)]
    for index in range(6):
        parameters = stacks[f"Subnet{index + 1}"]["Properties"]["Parameters"]
        assert parameters["AvailabilityZone"] == {"Fn::Select": [index, {"Fn::GetAZs": ""}]}
        assert parameters["CidrBlock"] == {
            "Fn::Select": [index, {"Fn::Cidr": [{"Fn::GetAtt": ["Vpc", "CidrBlock"]}, 6, 12]}]
        }
        assert parameters["SubnetNumber"] == index + 1
    assert [stacks[f"Subnet{n}"].get("Condition") for n in range(1, 7)] == [
        None,
        None,
        "Has3AZs",
        "Has4AZs",
        "Has5AZs",
        "Has6AZs",
    ]
