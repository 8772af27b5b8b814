"""A product-sized nested stack (about 40 resources, 5 stacks, a custom resource) end to end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from localaws.harness import LocalAwsHandle, unique

BIG = Path(__file__).parent / "fixtures" / "big"


def _inventory(local_aws: LocalAwsHandle, prefix: str, vpc_ids: set[str]) -> dict[str, Any]:
    """Everything the template can leave behind, found through the services' own APIs."""
    ec2, iam, s3 = local_aws.client("ec2"), local_aws.client("iam"), local_aws.client("s3")
    secrets, ssm, logs = (
        local_aws.client("secretsmanager"),
        local_aws.client("ssm"),
        local_aws.client("logs"),
    )
    in_vpcs = [{"Name": "vpc-id", "Values": sorted(vpc_ids) or ["none"]}]
    return {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=in_vpcs)["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=in_vpcs)["Subnets"]],
        "groups": [
            g["GroupName"]
            for g in ec2.describe_security_groups(Filters=in_vpcs)["SecurityGroups"]
            if g["GroupName"] != "default"
        ],
        "instances": [
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=in_vpcs)["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] != "terminated"
        ],
        "keys": [
            k["KeyName"]
            for k in ec2.describe_key_pairs()["KeyPairs"]
            if k["KeyName"].startswith(prefix)
        ],
        "roles": [
            r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(prefix)
        ],
        "profiles": [
            p["InstanceProfileName"]
            for p in iam.list_instance_profiles()["InstanceProfiles"]
            if p["InstanceProfileName"].startswith(prefix)
        ],
        "buckets": [
            b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(prefix)
        ],
        "secrets": [
            s["Name"] for s in secrets.list_secrets()["SecretList"] if s["Name"].startswith(prefix)
        ],
        "parameters": [
            p["Name"]
            for p in ssm.describe_parameters()["Parameters"]
            if p["Name"].startswith(f"/{prefix}/")
        ],
        "log_groups": [
            g["logGroupName"]
            for g in logs.describe_log_groups(logGroupNamePrefix=f"/{prefix}/")["logGroups"]
        ],
    }


@pytest.fixture
def big_stack(
    local_aws: LocalAwsHandle, upload: Callable[..., str], provider_arn: str
) -> Callable[..., tuple[str, list[dict[str, str]]]]:
    subnet_url = upload((BIG / "subnet.yml").read_text())
    network_url = upload((BIG / "network.yml").read_text())
    image = local_aws.client("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def parameters(prefix: str, **overrides: str) -> list[dict[str, str]]:
        values = {
            "Prefix": prefix,
            "NetworkTemplateUrl": network_url,
            "SubnetTemplateUrl": subnet_url,
            "ServiceToken": provider_arn,
            "ImageId": image,
            **overrides,
        }
        return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]

    def launch(**overrides: str) -> tuple[str, list[dict[str, str]]]:
        prefix = unique("big")
        local_aws.client("cloudformation").create_stack(
            StackName=prefix,
            TemplateBody=(BIG / "root.yml").read_text(),
            Parameters=parameters(prefix, **overrides),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        return prefix, parameters(prefix, **overrides)

    return launch


def _resources(local_aws: LocalAwsHandle, stack: str) -> int:
    """Resources of the stack and all its nested stacks, counted through the API."""
    cloudformation = local_aws.client("cloudformation")
    count = 0
    for resource in cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]:
        count += 1
        if resource["ResourceType"] == "AWS::CloudFormation::Stack":
            count += _resources(local_aws, resource["PhysicalResourceId"])
    return count


def test_nested_product_sized_stack_creates_updates_and_deletes(
    local_aws: LocalAwsHandle,
    big_stack: Callable[..., tuple[str, list[dict[str, str]]]],
    invocations: Callable[[str], list[dict[str, Any]]],
) -> None:
    cloudformation, ec2 = local_aws.client("cloudformation"), local_aws.client("ec2")
    prefix, parameters = big_stack()
    created = local_aws.wait_for_stack(prefix)
    assert created["StackStatus"] == "CREATE_COMPLETE", created.get("StackStatusReason")
    assert _resources(local_aws, prefix) >= 38
    outputs = {o["OutputKey"]: o["OutputValue"] for o in created["Outputs"]}
    vpc_id = outputs["VpcId"]
    subnets = ec2.describe_subnets(SubnetIds=outputs["SubnetIds"].split(","))["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 3
    assert all(s["MapPublicIpOnLaunch"] for s in subnets)
    address = ec2.describe_addresses(PublicIps=[outputs["PublicIp"]])["Addresses"][0]
    assert address["InstanceId"] == outputs["InstanceId"]
    assert outputs["Registration"] == f"first@{outputs['PublicIp']}"
    before = _inventory(local_aws, prefix, {vpc_id})
    assert len(before["subnets"]) == 3
    assert len(before["instances"]) == 1

    changed = [
        *parameters,
        {"ParameterKey": "Setting", "ParameterValue": "second"},
        {"ParameterKey": "InstanceType", "ParameterValue": "t3.small"},
    ]
    cloudformation.update_stack(
        StackName=prefix,
        TemplateBody=(BIG / "root.yml").read_text(),
        Parameters=changed,
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    updated = local_aws.wait_for_stack(prefix)
    assert updated["StackStatus"] == "UPDATE_COMPLETE", updated.get("StackStatusReason")
    new_outputs = {o["OutputKey"]: o["OutputValue"] for o in updated["Outputs"]}
    # Changed in place: same instance, same address, same network, the provider told of it.
    assert new_outputs["InstanceId"] == outputs["InstanceId"]
    assert new_outputs["VpcId"] == vpc_id
    assert new_outputs["Registration"] == f"second@{outputs['PublicIp']}"
    instance = ec2.describe_instances(InstanceIds=[outputs["InstanceId"]])["Reservations"][0]
    assert instance["Instances"][0]["InstanceType"] == "t3.small"
    assert [i["RequestType"] for i in invocations(prefix)] == ["Create", "Update"]
    assert _inventory(local_aws, prefix, {vpc_id}) == before

    cloudformation.delete_stack(StackName=prefix)
    assert local_aws.wait_for_stack(created["StackId"])["StackStatus"] == "DELETE_COMPLETE"
    assert [i["RequestType"] for i in invocations(prefix)] == ["Create", "Update", "Delete"]
    assert all(not found for found in _inventory(local_aws, prefix, {vpc_id}).values())


def test_failing_custom_resource_rolls_the_whole_tree_back(
    local_aws: LocalAwsHandle,
    big_stack: Callable[..., tuple[str, list[dict[str, str]]]],
    invocations: Callable[[str], list[dict[str, Any]]],
) -> None:
    cloudformation = local_aws.client("cloudformation")
    prefix, _ = big_stack(ProviderMode="fail")
    described = local_aws.wait_for_stack(prefix)

    assert described["StackStatus"] == "ROLLBACK_COMPLETE"
    events = cloudformation.describe_stack_events(StackName=prefix)["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [e["LogicalResourceId"] for e in failed] == ["Registration"]
    assert "registration refused by the provider" in failed[0]["ResourceStatusReason"]
    network_id = cloudformation.describe_stack_resource(
        StackName=described["StackId"], LogicalResourceId="Network"
    )["StackResourceDetail"]["PhysicalResourceId"]
    nested = cloudformation.describe_stacks(StackName=network_id)["Stacks"][0]
    assert nested["StackStatus"] == "DELETE_COMPLETE"
    vpc_ids = {
        r["PhysicalResourceId"]
        for r in cloudformation.describe_stack_resources(StackName=network_id)["StackResources"]
        if r["ResourceType"] == "AWS::EC2::VPC"
    }
    assert all(not found for found in _inventory(local_aws, prefix, vpc_ids).values())
    assert [i["RequestType"] for i in invocations(prefix)] == ["Create", "Delete"]
