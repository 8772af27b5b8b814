"""Instances, Elastic IPs and key pairs as a customer's queue machine uses them."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from localaws.cloudformation.provisioners import ec2, ec2_instance, ec2_security
from localaws.cloudformation.provisioners.base import (
    NeedsReplacement,
    ProvisionError,
    ResourceContext,
)

Ctx = Callable[..., ResourceContext]
IMAGE = "ami-03cf127a"  # one of moto's built-in images, root device /dev/sda1


@pytest.fixture
def client() -> Any:
    return boto3.client("ec2")


@pytest.fixture
def network(make_ctx: Ctx) -> dict[str, str]:
    vpc = ec2.VPC().create(make_ctx("AWS::EC2::VPC"), {"CidrBlock": "10.0.0.0/16"})
    subnet = ec2.Subnet().create(
        make_ctx("AWS::EC2::Subnet"),
        {"VpcId": vpc.physical_id, "CidrBlock": "10.0.0.0/20", "AvailabilityZone": "eu-west-1b"},
    )
    groups = [
        ec2_security.SecurityGroup()
        .create(
            make_ctx("AWS::EC2::SecurityGroup"),
            {"GroupDescription": name, "GroupName": name, "VpcId": vpc.physical_id},
        )
        .physical_id
        for name in ("queue", "other")
    ]
    boto3.client("ec2").create_key_pair(KeyName="admin-key")
    boto3.client("iam").create_instance_profile(InstanceProfileName="ExampleQueueInstanceProfile")
    return {"subnet": subnet.physical_id, "queue_sg": groups[0], "other_sg": groups[1]}


def queue_props(network: dict[str, str]) -> dict[str, Any]:
    return {
        "ImageId": IMAGE,
        "InstanceType": "t3.medium",
        "KeyName": "admin-key",
        "SubnetId": network["subnet"],
        "SecurityGroupIds": [network["queue_sg"]],
        "IamInstanceProfile": "ExampleQueueInstanceProfile",
        "UserData": base64.b64encode(b"#!/bin/bash\necho boot\n").decode(),
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": "2"},
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/sda1",
                "Ebs": {
                    "VolumeSize": "16",
                    "VolumeType": "gp3",
                    "Encrypted": "true",
                    "DeleteOnTermination": True,
                },
            }
        ],
        "Tags": [{"Key": "Name", "Value": "example-queue"}],
    }


def describe(client: Any, instance_id: str) -> dict[str, Any]:
    reservations = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return dict(reservations[0]["Instances"][0])


def test_queue_instance_lifecycle(make_ctx: Ctx, client: Any, network: dict[str, str]) -> None:
    ctx = make_ctx("AWS::EC2::Instance", "QueueInstance")
    props = queue_props(network)
    made = ec2_instance.Instance().create(ctx, props)

    described = describe(client, made.physical_id)
    assert described["InstanceType"] == "t3.medium"
    assert described["KeyName"] == "admin-key"
    assert described["SubnetId"] == network["subnet"]
    assert [g["GroupId"] for g in described["SecurityGroups"]] == [network["queue_sg"]]
    assert described["MetadataOptions"]["HttpTokens"] == "required"
    assert described["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert described["IamInstanceProfile"]["Arn"].endswith("/ExampleQueueInstanceProfile")
    assert {t["Key"]: t["Value"] for t in described["Tags"]}["Name"] == "example-queue"
    user_data = client.describe_instance_attribute(
        InstanceId=made.physical_id, Attribute="userData"
    )["UserData"]["Value"]
    assert base64.b64decode(user_data) == b"#!/bin/bash\necho boot\n"
    root = next(m for m in described["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sda1")
    volume = client.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (volume["Size"], volume["VolumeType"], volume["Encrypted"]) == (16, "gp3", True)
    assert made.get_att("PrivateIp") == described["PrivateIpAddress"]
    assert made.get_att("AvailabilityZone") == "eu-west-1b"
    assert made.get_att("InstanceId") == made.physical_id

    updated = {
        **props,
        "InstanceType": "t3.large",
        "SecurityGroupIds": [network["other_sg"]],
        "UserData": base64.b64encode(b"#!/bin/bash\necho v2\n").decode(),
        "MetadataOptions": {"HttpTokens": "optional"},
        "Tags": [{"Key": "Name", "Value": "queue-v2"}],
    }
    kept = ec2_instance.Instance().update(ctx, made, props, updated)

    assert kept.physical_id == made.physical_id
    described = describe(client, made.physical_id)
    assert described["InstanceType"] == "t3.large"
    assert [g["GroupId"] for g in described["SecurityGroups"]] == [network["other_sg"]]
    assert described["MetadataOptions"]["HttpTokens"] == "optional"
    assert {t["Key"]: t["Value"] for t in described["Tags"]}["Name"] == "queue-v2"
    user_data = client.describe_instance_attribute(
        InstanceId=made.physical_id, Attribute="userData"
    )["UserData"]["Value"]
    assert base64.b64decode(user_data) == b"#!/bin/bash\necho v2\n"

    with pytest.raises(NeedsReplacement):
        ec2_instance.Instance().update(ctx, made, updated, {**updated, "ImageId": "ami-other"})

    for _ in range(2):
        ec2_instance.Instance().delete(ctx, made, updated)
    assert describe(client, made.physical_id)["State"]["Name"] == "terminated"


@pytest.mark.parametrize(
    ("propagate", "expected"), [(True, {"Name": "example-queue", "example": "1"}), (False, {})]
)
def test_volumes_get_the_instance_tags_only_when_asked(
    make_ctx: Ctx, client: Any, network: dict[str, str], propagate: bool, expected: dict[str, str]
) -> None:
    props = {**queue_props(network), "PropagateTagsToVolumeOnCreation": propagate}
    made = ec2_instance.Instance().create(make_ctx("AWS::EC2::Instance", "QueueInstance"), props)

    volumes = client.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [made.physical_id]}]
    )["Volumes"]
    # The stack's tags and the instance's own, but none of the aws:cloudformation:* ones.
    assert [{t["Key"]: t["Value"] for t in v.get("Tags", [])} for v in volumes] == [expected]


def test_unknown_key_pair_fails_like_aws(make_ctx: Ctx, network: dict[str, str]) -> None:
    with pytest.raises(ProvisionError, match="The key pair 'nope' does not exist"):
        ec2_instance.Instance().create(
            make_ctx("AWS::EC2::Instance"), {**queue_props(network), "KeyName": "nope"}
        )


def test_elastic_ip_follows_its_instance(
    make_ctx: Ctx, client: Any, network: dict[str, str]
) -> None:
    instance = ec2_instance.Instance().create(make_ctx("AWS::EC2::Instance"), queue_props(network))
    eip_ctx = make_ctx("AWS::EC2::EIP", "QueueIp")
    eip_props = {"Domain": "vpc", "Tags": [{"Key": "Name", "Value": "example-queue-ip"}]}
    eip = ec2_instance.EIP().create(eip_ctx, eip_props)
    assoc_ctx = make_ctx("AWS::EC2::EIPAssociation")
    assoc_props = {"AllocationId": eip.get_att("AllocationId"), "InstanceId": instance.physical_id}
    association = ec2_instance.EIPAssociation().create(assoc_ctx, assoc_props)

    address = client.describe_addresses(AllocationIds=[eip.get_att("AllocationId")])["Addresses"][0]
    assert eip.physical_id == address["PublicIp"] == eip.get_att("PublicIp")
    assert address["InstanceId"] == instance.physical_id
    assert address["AssociationId"] == association.physical_id
    assert {t["Key"]: t["Value"] for t in address["Tags"]}["Name"] == "example-queue-ip"
    assert describe(client, instance.physical_id)["PublicIpAddress"] == eip.physical_id

    for _ in range(2):
        ec2_instance.EIPAssociation().delete(assoc_ctx, association, assoc_props)
    address = client.describe_addresses(AllocationIds=[eip.get_att("AllocationId")])["Addresses"][0]
    assert "InstanceId" not in address or not address["InstanceId"]

    ec2_instance.EIP().update(
        eip_ctx, eip, eip_props, {**eip_props, "InstanceId": instance.physical_id}
    )
    address = client.describe_addresses(AllocationIds=[eip.get_att("AllocationId")])["Addresses"][0]
    assert address["InstanceId"] == instance.physical_id

    for _ in range(2):
        ec2_instance.EIP().delete(eip_ctx, eip, eip_props)
    assert not client.describe_addresses(
        Filters=[{"Name": "public-ip", "Values": [eip.physical_id]}]
    )["Addresses"]


def test_instance_public_ip_attribute_is_its_elastic_ip_once_associated(
    make_ctx: Ctx, network: dict[str, str]
) -> None:
    """AWS::EC2::Instance return values: PublicIp and PublicDnsName are the instance's public
    address; an Elastic IP associated with an instance replaces its public IPv4 address (EC2
    User Guide, "Elastic IP addresses"), so GetAtt evaluated after an EIPAssociation gives the
    Elastic IP, and a name built from it."""
    instance = ec2_instance.Instance().create(make_ctx("AWS::EC2::Instance"), queue_props(network))
    eip = ec2_instance.EIP().create(make_ctx("AWS::EC2::EIP", "QueueIp"), {"Domain": "vpc"})
    assert instance.get_att("PublicIp") != eip.physical_id

    ec2_instance.EIPAssociation().create(
        make_ctx("AWS::EC2::EIPAssociation"),
        {"AllocationId": eip.get_att("AllocationId"), "InstanceId": instance.physical_id},
    )
    assert instance.get_att("PublicIp") == eip.physical_id
    assert eip.physical_id.replace(".", "-") in instance.get_att("PublicDnsName")


def test_elastic_ip_moves_to_the_instance_that_replaces_its_own(
    make_ctx: Ctx, client: Any, network: dict[str, str]
) -> None:
    """A replacement: the new association is made while the old one still exists."""
    old, new = (
        ec2_instance.Instance().create(make_ctx("AWS::EC2::Instance"), queue_props(network))
        for _ in range(2)
    )
    eip = ec2_instance.EIP().create(make_ctx("AWS::EC2::EIP"), {"Domain": "vpc"})
    assoc_ctx = make_ctx("AWS::EC2::EIPAssociation")
    first_props = {"AllocationId": eip.get_att("AllocationId"), "InstanceId": old.physical_id}
    first = ec2_instance.EIPAssociation().create(assoc_ctx, first_props)

    second = ec2_instance.EIPAssociation().create(
        assoc_ctx, {**first_props, "InstanceId": new.physical_id}
    )
    ec2_instance.EIPAssociation().delete(assoc_ctx, first, first_props)

    [address] = client.describe_addresses(AllocationIds=[eip.get_att("AllocationId")])["Addresses"]
    assert (address["InstanceId"], address["AssociationId"]) == (
        new.physical_id,
        second.physical_id,
    )
    assert describe(client, new.physical_id)["PublicIpAddress"] == eip.physical_id
    assert describe(client, old.physical_id).get("PublicIpAddress") != eip.physical_id


def test_created_key_pair_keeps_its_private_key_in_ssm(make_ctx: Ctx, client: Any) -> None:
    ctx = make_ctx("AWS::EC2::KeyPair", "Key")
    props = {"KeyName": "example-key", "Tags": [{"Key": "team", "Value": "ml"}]}
    key = ec2_instance.KeyPair().create(ctx, props)
    ssm = boto3.client("ssm")

    assert key.physical_id == "example-key"
    described = client.describe_key_pairs(KeyNames=["example-key"])["KeyPairs"][0]
    assert described["KeyPairId"] == key.get_att("KeyPairId")
    assert described["KeyFingerprint"] == key.get_att("KeyFingerprint")
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == {"team": "ml", "example": "1"}
    private = ssm.get_parameter(
        Name=f"/ec2/keypair/{key.get_att('KeyPairId')}", WithDecryption=True
    )
    assert private["Parameter"]["Value"].startswith("-----BEGIN RSA PRIVATE KEY-----")

    for _ in range(2):
        ec2_instance.KeyPair().delete(ctx, key, props)
    assert (
        client.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["example-key"]}])[
            "KeyPairs"
        ]
        == []
    )
    assert ssm.describe_parameters()["Parameters"] == []


# Canaries: stock moto CloudFormation behaviour this module replaces.


def test_canary_moto_drops_instance_security_group_ids_and_metadata_options(
    stock_stack: Any, client: Any, network: dict[str, str]
) -> None:
    ids = stock_stack(
        {
            "Resources": {
                "Queue": {
                    "Type": "AWS::EC2::Instance",
                    "Properties": {
                        "ImageId": IMAGE,
                        "SubnetId": network["subnet"],
                        "SecurityGroupIds": [network["queue_sg"]],
                        "MetadataOptions": {"HttpTokens": "required"},
                    },
                }
            }
        }
    )
    described = describe(client, ids["Queue"])
    assert network["queue_sg"] not in [g["GroupId"] for g in described["SecurityGroups"]]
    assert described["MetadataOptions"]["HttpTokens"] == "optional"


def test_canary_moto_has_no_eip_association_and_keeps_eips(stock_stack: Any, client: Any) -> None:
    ids = stock_stack(
        {
            "Resources": {
                "Ip": {"Type": "AWS::EC2::EIP", "Properties": {"Domain": "vpc"}},
                "Assoc": {
                    "Type": "AWS::EC2::EIPAssociation",
                    "Properties": {
                        "AllocationId": {"Fn::GetAtt": ["Ip", "AllocationId"]},
                        "InstanceId": "i-00000000",
                    },
                },
            }
        },
        skipped=("AWS::EC2::EIPAssociation",),
    )
    assert "Assoc" not in ids  # skipped, yet the stack reports success
    boto3.client("cloudformation").delete_stack(StackName="canary")
    assert client.describe_addresses()["Addresses"]
