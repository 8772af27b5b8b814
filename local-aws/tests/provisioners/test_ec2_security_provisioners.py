"""Security groups: the rules a template writes are the rules EC2 describes, updated in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from localaws.cloudformation.provisioners import ec2, ec2_security
from localaws.cloudformation.provisioners.base import (
    Provisioned,
    ProvisionError,
    ResourceContext,
)

Ctx = Callable[..., ResourceContext]


@pytest.fixture
def client() -> Any:
    return boto3.client("ec2")


@pytest.fixture
def vpc_id(make_ctx: Ctx) -> str:
    vpc = ec2.VPC().create(make_ctx("AWS::EC2::VPC"), {"CidrBlock": "10.0.0.0/16"})
    return vpc.physical_id


@pytest.fixture
def workers(make_ctx: Ctx, vpc_id: str) -> Provisioned:
    return ec2_security.SecurityGroup().create(
        make_ctx("AWS::EC2::SecurityGroup", "WorkersSG"),
        {"GroupName": "example-sg-workers", "GroupDescription": "workers", "VpcId": vpc_id},
    )


def permissions(client: Any, group_id: str, egress: bool = False) -> set[tuple[Any, ...]]:
    """(protocol, from, to, CIDR or group id, description) of each rule EC2 describes."""
    group = client.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    found = set()
    for perm in group["IpPermissionsEgress" if egress else "IpPermissions"]:
        ports = (perm.get("FromPort"), perm.get("ToPort"))
        for ip_range in perm.get("IpRanges", []):
            found.add((perm["IpProtocol"], *ports, ip_range["CidrIp"], ip_range.get("Description")))
        for pair in perm.get("UserIdGroupPairs", []):
            found.add((perm["IpProtocol"], *ports, pair["GroupId"], pair.get("Description")))
    return found


def test_security_group_rules_follow_the_template(
    make_ctx: Ctx, client: Any, vpc_id: str, workers: Provisioned
) -> None:
    ctx = make_ctx("AWS::EC2::SecurityGroup", "QueueSG")
    http = {
        "IpProtocol": "tcp",
        "FromPort": "80",
        "ToPort": 80,
        "CidrIp": "0.0.0.0/0",
        "Description": "ACME HTTP-01",
    }
    redis = {
        "IpProtocol": "tcp",
        "FromPort": 63790,
        "ToPort": 63790,
        "SourceSecurityGroupId": workers.physical_id,
        "Description": "workers",
    }
    ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "3.251.38.215/32"}
    props = {
        "GroupName": "example-sg-queue",
        "GroupDescription": "queue",
        "VpcId": vpc_id,
        "SecurityGroupIngress": [http, redis, ssh],
        "Tags": [{"Key": "Name", "Value": "example-sg-queue"}],
    }
    group = ec2_security.SecurityGroup().create(ctx, props)

    assert group.physical_id.startswith("sg-")
    assert group.get_att("GroupId") == group.physical_id
    assert group.get_att("VpcId") == vpc_id
    assert permissions(client, group.physical_id) == {
        ("tcp", 80, 80, "0.0.0.0/0", "ACME HTTP-01"),
        ("tcp", 63790, 63790, workers.physical_id, "workers"),
        ("tcp", 22, 22, "3.251.38.215/32", None),
    }
    assert permissions(client, group.physical_id, egress=True) == {
        ("-1", None, None, "0.0.0.0/0", None)
    }
    rules = client.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group.physical_id]}]
    )["SecurityGroupRules"]
    ingress_from_anywhere = [
        r.get("Description")
        for r in rules
        if r.get("CidrIpv4") == "0.0.0.0/0" and not r["IsEgress"]
    ]
    assert ingress_from_anywhere == ["ACME HTTP-01"]

    # A rule from a standalone resource must survive the group's own update.
    extra_props = {
        "GroupId": group.physical_id,
        "IpProtocol": "tcp",
        "FromPort": 443,
        "ToPort": 443,
        "CidrIp": "10.0.0.0/8",
    }
    extra_ctx = make_ctx("AWS::EC2::SecurityGroupIngress")
    extra = ec2_security.SecurityGroupIngress().create(extra_ctx, extra_props)

    updated = {
        **props,
        "SecurityGroupIngress": [http, {**redis, "Description": "worker machines"}],
        "SecurityGroupEgress": [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}
        ],
        "Tags": [{"Key": "Name", "Value": "renamed"}],
    }
    kept = ec2_security.SecurityGroup().update(ctx, group, props, updated)

    assert kept.physical_id == group.physical_id
    assert permissions(client, group.physical_id) == {
        ("tcp", 80, 80, "0.0.0.0/0", "ACME HTTP-01"),
        ("tcp", 63790, 63790, workers.physical_id, "worker machines"),
        ("tcp", 443, 443, "10.0.0.0/8", None),
    }
    assert permissions(client, group.physical_id, egress=True) == {
        ("tcp", 443, 443, "0.0.0.0/0", None)
    }
    described = client.describe_security_groups(GroupIds=[group.physical_id])["SecurityGroups"]
    assert {t["Key"]: t["Value"] for t in described[0]["Tags"]}["Name"] == "renamed"

    # Dropping the egress rules brings AWS's default allow-all back.
    ec2_security.SecurityGroup().update(ctx, group, updated, props)
    assert permissions(client, group.physical_id, egress=True) == {
        ("-1", None, None, "0.0.0.0/0", None)
    }

    for _ in range(2):
        ec2_security.SecurityGroupIngress().delete(extra_ctx, extra, extra_props)
        ec2_security.SecurityGroup().delete(ctx, group, props)
    assert not client.describe_security_groups(
        Filters=[{"Name": "group-id", "Values": [group.physical_id]}]
    )["SecurityGroups"]


def test_generated_group_name(make_ctx: Ctx, client: Any, vpc_id: str) -> None:
    group = ec2_security.SecurityGroup().create(
        make_ctx("AWS::EC2::SecurityGroup", "QueueSG"),
        {"GroupDescription": "queue", "VpcId": vpc_id},
    )

    described = client.describe_security_groups(GroupIds=[group.physical_id])["SecurityGroups"]
    assert described[0]["GroupName"].startswith("unit-stack-QueueSG-")


def test_standalone_egress_rule(
    make_ctx: Ctx, client: Any, vpc_id: str, workers: Provisioned
) -> None:
    ctx = make_ctx("AWS::EC2::SecurityGroupEgress")
    props = {
        "GroupId": workers.physical_id,
        "IpProtocol": "udp",
        "FromPort": 53,
        "ToPort": 53,
        "CidrIp": "10.0.0.2/32",
        "Description": "dns",
    }
    rule = ec2_security.SecurityGroupEgress().create(ctx, props)

    assert rule.physical_id.startswith("sgr-")
    assert ("udp", 53, 53, "10.0.0.2/32", "dns") in permissions(
        client, workers.physical_id, egress=True
    )

    moved = ec2_security.SecurityGroupEgress().update(
        ctx, rule, props, {**props, "Description": "resolver"}
    )
    assert ("udp", 53, 53, "10.0.0.2/32", "resolver") in permissions(
        client, workers.physical_id, egress=True
    )

    for _ in range(2):
        ec2_security.SecurityGroupEgress().delete(ctx, moved, props)
    assert not any(p[0] == "udp" for p in permissions(client, workers.physical_id, egress=True))


def test_rule_for_a_missing_group_fails_clearly(make_ctx: Ctx) -> None:
    with pytest.raises(ProvisionError, match="security group 'sg-0123' does not exist"):
        ec2_security.SecurityGroupIngress().create(
            make_ctx("AWS::EC2::SecurityGroupIngress"),
            {"GroupId": "sg-0123", "IpProtocol": "-1", "CidrIp": "0.0.0.0/0"},
        )


# Canaries: stock moto CloudFormation behaviour this module replaces.


def test_canary_moto_ignores_egress_rules_and_descriptions(stock_stack: Any, client: Any) -> None:
    ids = stock_stack(
        {
            "Resources": {
                "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.1.0.0/16"}},
                "Group": {
                    "Type": "AWS::EC2::SecurityGroup",
                    "Properties": {
                        "GroupDescription": "canary",
                        "VpcId": {"Ref": "Vpc"},
                        "SecurityGroupIngress": [
                            {
                                "IpProtocol": "tcp",
                                "FromPort": 80,
                                "ToPort": 80,
                                "CidrIp": "0.0.0.0/0",
                                "Description": "http",
                            }
                        ],
                        "SecurityGroupEgress": [
                            {
                                "IpProtocol": "tcp",
                                "FromPort": 443,
                                "ToPort": 443,
                                "CidrIp": "0.0.0.0/0",
                            }
                        ],
                    },
                },
            }
        }
    )
    assert permissions(client, ids["Group"]) == {("tcp", 80, 80, "0.0.0.0/0", None)}
    assert permissions(client, ids["Group"], egress=True) == {("-1", None, None, "0.0.0.0/0", None)}


def test_canary_moto_has_no_security_group_egress_type(stock_stack: Any, client: Any) -> None:
    ids = stock_stack(
        {
            "Resources": {
                "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.1.0.0/16"}},
                "Group": {
                    "Type": "AWS::EC2::SecurityGroup",
                    "Properties": {"GroupDescription": "canary", "VpcId": {"Ref": "Vpc"}},
                },
                "Egress": {
                    "Type": "AWS::EC2::SecurityGroupEgress",
                    "Properties": {
                        "GroupId": {"Ref": "Group"},
                        "IpProtocol": "udp",
                        "FromPort": 53,
                        "ToPort": 53,
                        "CidrIp": "10.0.0.2/32",
                    },
                },
            }
        },
        skipped=("AWS::EC2::SecurityGroupEgress",),
    )
    assert not any(p[0] == "udp" for p in permissions(client, ids["Group"], egress=True))
