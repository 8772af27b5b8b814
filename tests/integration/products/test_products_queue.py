"""The queue side of a Workers setup, read back from EC2, Secrets Manager, SSM and IAM: the
security groups Valohai relies on, the queue machine, its Elastic IP, the Redis password and the
queue address record."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from tests.support.products import (
    MAINTENANCE_SSH,
    REGION,
    SETUP_TOKEN,
    Aws,
    Setup,
    allowed,
    resource_tags,
    role_policies,
    tag_context,
)

UBUNTU_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
)
CANONICAL = "099720109477"
READ_SECRET = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:ListSecretVersionIds",
)


@pytest.fixture(scope="module")
def ec2(aws: Aws) -> Any:
    return aws("ec2")


@pytest.fixture(scope="module")
def instance(ec2: Any, setup: Setup) -> dict[str, Any]:
    found: dict[str, Any] = ec2.describe_instances(InstanceIds=[setup.outputs["QueueInstanceId"]])[
        "Reservations"
    ][0]["Instances"][0]
    return found


def rules(ec2: Any, group_id: str, egress: bool) -> set[tuple[str, int, int, str, str]]:
    """(protocol, from port, to port, source, description) of each rule of a group."""
    [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    found = set()
    for permission in group["IpPermissionsEgress" if egress else "IpPermissions"]:
        ports = (
            permission["IpProtocol"],
            permission.get("FromPort", -1),
            permission.get("ToPort", -1),
        )
        peers = [(r["CidrIp"], r.get("Description", "")) for r in permission["IpRanges"]]
        peers += [(g["GroupId"], g.get("Description", "")) for g in permission["UserIdGroupPairs"]]
        found |= {(*ports, peer, description) for peer, description in peers}
    return found


def test_workers_group_accepts_nothing_and_reaches_everything(ec2: Any, setup: Setup) -> None:
    group_id = setup.outputs["WorkerSecurityGroupId"]
    [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]

    assert group["GroupName"] == setup.outputs["WorkerSecurityGroupName"] == "valohai-sg-workers"
    assert group["VpcId"] == setup.outputs["VpcId"]
    assert rules(ec2, group_id, egress=False) == set()
    [(protocol, _, _, destination, description)] = rules(ec2, group_id, egress=True)
    assert (protocol, destination) == ("-1", "0.0.0.0/0")
    assert description
    assert resource_tags(group["Tags"]) == {"Name": "valohai-sg-workers", "valohai": "1"}


def test_queue_group_lets_in_acme_and_redis_from_valohai_and_workers_and_no_ssh_by_default(
    ec2: Any, setup: Setup
) -> None:
    group_id = setup.outputs["QueueSecurityGroupId"]
    [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    ingress = rules(ec2, group_id, egress=False)

    assert group["GroupName"] == "valohai-sg-queue"
    assert {rule[:4] for rule in ingress} == {
        ("tcp", 80, 80, "0.0.0.0/0"),
        ("tcp", 63790, 63790, "34.248.245.191/32"),
        ("tcp", 63790, 63790, setup.outputs["WorkerSecurityGroupId"]),
    }
    assert all(rule[4] for rule in ingress), ingress
    assert {(r[0], r[3]) for r in rules(ec2, group_id, egress=True)} == {("-1", "0.0.0.0/0")}
    assert resource_tags(group["Tags"]) == {"Name": "valohai-sg-queue", "valohai": "1"}


def test_maintenance_ssh_is_open_only_to_the_source_the_customer_gives(
    ec2: Any, setups: dict[str, Setup]
) -> None:
    ingress = rules(ec2, setups["three_azs"].outputs["QueueSecurityGroupId"], egress=False)

    assert {rule[1] for rule in ingress} == {80, 63790, 22}
    assert {rule[3] for rule in ingress if rule[1] == 22} == {MAINTENANCE_SSH}


def test_queue_machine_runs_current_ubuntu_with_imdsv2_and_an_encrypted_gp3_disk(
    aws: Aws, ec2: Any, setup: Setup, instance: dict[str, Any]
) -> None:
    ubuntu = aws("ssm").get_parameter(Name=UBUNTU_PARAMETER)["Parameter"]["Value"]
    [image] = ec2.describe_images(ImageIds=[instance["ImageId"]])["Images"]
    [root] = [
        m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == image["RootDeviceName"]
    ]
    [volume] = ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"]

    assert instance["InstanceType"] == "t3.medium"
    assert instance["ImageId"] == ubuntu
    assert (image["OwnerId"], image["Architecture"]) == (CANONICAL, "x86_64")
    assert "24.04" in image["Name"]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert (volume["VolumeType"], volume["Size"], volume["Encrypted"]) == ("gp3", 16, True)
    assert root["Ebs"]["DeleteOnTermination"] is True
    assert instance["IamInstanceProfile"]["Arn"].endswith(
        ":instance-profile/ValohaiQueueInstanceProfile"
    )
    assert instance["KeyName"] == setup.outputs["KeyPairName"] == "valohai-queue"
    assert instance["SubnetId"] == setup.outputs["SubnetIds"].split(",")[0]
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [
        setup.outputs["QueueSecurityGroupId"]
    ]
    assert resource_tags(instance["Tags"]) == {"Name": "valohai-queue", "valohai": "1"}
    assert instance["PrivateIpAddress"] == setup.outputs["QueuePrivateIp"]


def test_queue_machine_boot_script_names_the_secret_but_holds_no_secret_value(
    aws: Aws, ec2: Any, setup: Setup, instance: dict[str, Any]
) -> None:
    encoded = ec2.describe_instance_attribute(
        InstanceId=instance["InstanceId"], Attribute="userData"
    )["UserData"]["Value"]
    script = base64.b64decode(encoded).decode()
    password = aws("secretsmanager").get_secret_value(SecretId=setup.outputs["RedisSecretArn"])

    assert script.startswith("#!/bin/bash\n")
    assert f"QUEUE_ADDRESS='{setup.outputs['QueueAddress']}'" in script
    assert f"ELASTIC_IP='{setup.outputs['QueuePublicIp']}'" in script
    assert f"REDIS_SECRET_ID='{setup.outputs['RedisSecretArn']}'" in script
    assert f"REGION='{REGION}'" in script
    assert password["SecretString"] not in script
    assert SETUP_TOKEN not in script


def test_the_public_ip_is_the_elastic_ip_attached_to_the_queue(
    ec2: Any, setup: Setup, instance: dict[str, Any]
) -> None:
    [address] = ec2.describe_addresses(PublicIps=[setup.outputs["QueuePublicIp"]])["Addresses"]

    assert address["Domain"] == "vpc"
    assert address["InstanceId"] == instance["InstanceId"]
    assert address["AssociationId"].startswith("eipassoc-")
    assert address["PrivateIpAddress"] == instance["PrivateIpAddress"]
    assert instance["PublicIpAddress"] == address["PublicIp"]
    assert resource_tags(address["Tags"]) == {"Name": "valohai-ip-queue", "valohai": "1"}


def test_redis_password_is_32_letters_and_digits_in_a_valohai_tagged_secret(
    aws: Aws, setup: Setup
) -> None:
    secrets = aws("secretsmanager")
    described = secrets.describe_secret(SecretId="ValohaiRedisSecret")
    value = secrets.get_secret_value(SecretId="ValohaiRedisSecret")

    assert described["ARN"] == setup.outputs["RedisSecretArn"]
    assert setup.outputs["RedisSecretName"] == "ValohaiRedisSecret"
    assert re.fullmatch("[A-Za-z0-9]{32}", value["SecretString"])
    assert "SecretBinary" not in value
    assert not described.get("RotationEnabled")
    # Its owner is the setup's WorkerQueue stack, which holds the custom resource.
    worker_queue = aws("cloudformation").describe_stack_resource(
        StackName=setup.stack_id, LogicalResourceId="WorkerQueue"
    )["StackResourceDetail"]["PhysicalResourceId"]
    assert resource_tags(described["Tags"]) == {
        "valohai": "1",
        "valohai-hybrid:managed-by": "valohai-hybrid-aws",
        "valohai-hybrid:stack-id": worker_queue,
    }


@pytest.mark.parametrize("role", ["ValohaiQueueRole", "ValohaiMaster"])
def test_the_queue_and_valohai_may_read_the_redis_password_but_not_the_setup_token(
    aws: Aws, setup: Setup, role: str
) -> None:
    secrets, policies = aws("secretsmanager"), role_policies(aws("iam"), role)
    redis = secrets.describe_secret(SecretId=setup.outputs["RedisSecretArn"])
    token = secrets.describe_secret(SecretId=f"valohai-hybrid/setup-token/{setup.name}")

    for action in READ_SECRET:
        assert allowed(policies, action, redis["ARN"], tag_context(resource_tags(redis["Tags"])))
        assert not allowed(
            policies, action, token["ARN"], tag_context(resource_tags(token["Tags"]))
        ), action


def test_the_setup_token_is_kept_in_its_own_secret_and_never_shown(aws: Aws, setup: Setup) -> None:
    secrets = aws("secretsmanager")
    name = f"valohai-hybrid/setup-token/{setup.name}"
    described = secrets.describe_secret(SecretId=name)
    stack = aws("cloudformation").describe_stacks(StackName=setup.stack_id)["Stacks"][0]
    shown = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    assert secrets.get_secret_value(SecretId=name)["SecretString"] == SETUP_TOKEN
    assert resource_tags(described["Tags"]) == {
        "valohai-hybrid:purpose": "setup-token",
        "valohai-hybrid:stack-id": setup.stack_id,
    }
    assert shown["SetupToken"] == "****"
    assert SETUP_TOKEN not in json.dumps(stack, default=str)


def test_the_queue_address_binding_is_recorded_in_the_account(aws: Aws, setup: Setup) -> None:
    ssm = aws("ssm")
    name = f"/valohai-hybrid/queue-address/{setup.outputs['QueueAddress']}"
    parameter = ssm.get_parameter(Name=name)["Parameter"]
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]

    assert setup.outputs["QueueAddress"] == setup.parameters["QueueAddress"]
    record = json.loads(parameter["Value"])

    assert record["address"] == setup.outputs["QueueAddress"]
    assert record["public_ip"] == setup.outputs["QueuePublicIp"]
    assert record["stack_id"] == setup.stack_id
    assert resource_tags(tags)["valohai"] == "1"
