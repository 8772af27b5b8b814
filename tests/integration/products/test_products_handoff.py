"""What Valohai gets back from a Workers setup: the signed hand-off events the stand-in verified,
the stack outputs, and the valohai=1 tag on everything Valohai may manage."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.products import (
    LAUNCHED_FROM,
    REGION,
    SETUP_TOKEN,
    Aws,
    Setup,
    resource_tags,
    stack_resources,
)
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.local.standin.verify import key_id
from valohai_hybrid.publish import Published

#: Hand-off field -> stack output with the same value.
OUTPUT_OF = {
    "region": "Region",
    "valohai_master_role_arn": "ValohaiMasterRoleARN",
    "worker_role_arn": "WorkerRoleArn",
    "worker_instance_profile_arn": "WorkerInstanceProfileArn",
    "queue_role_arn": "QueueRoleArn",
    "queue_public_ip": "QueuePublicIp",
    "queue_private_ip": "QueuePrivateIp",
    "queue_address": "QueueAddress",
    "redis_secret_arn": "RedisSecretArn",
    "redis_secret_name": "RedisSecretName",
    "data_bucket_name": "DataBucketName",
    "multipart_role_arn": "MultipartRoleArn",
    "vpc_id": "VpcId",
    "worker_security_group_id": "WorkerSecurityGroupId",
    "worker_security_group_name": "WorkerSecurityGroupName",
    "queue_security_group_id": "QueueSecurityGroupId",
    "key_pair_name": "KeyPairName",
    "product_version": "ProductVersion",
}
#: Resource types that cannot carry tags (attachments, routes, rules, policies, notifications).
UNTAGGABLE = {
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::EIPAssociation",
    "AWS::S3::BucketPolicy",
    "AWS::IAM::Policy",
    "Custom::ValohaiNotification",
    "Custom::ValohaiQueueAddress",
}


def handoff_from_the_account(aws: Aws, setup: Setup, platform: Published) -> dict[str, Any]:
    """Every hand-off value of the reference setup (default names), found from its queue
    machine through the services' APIs."""
    ec2, iam = aws("ec2"), aws("iam")
    [instance_id] = [
        r["PhysicalResourceId"]
        for r in stack_resources(aws("cloudformation"), setup.stack_id)
        if r["ResourceType"] == "AWS::EC2::Instance"
    ]
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    vpc = [{"Name": "vpc-id", "Values": [instance["VpcId"]]}]
    [address] = ec2.describe_addresses(
        Filters=[{"Name": "instance-id", "Values": [instance["InstanceId"]]}]
    )["Addresses"]
    groups = {
        g["GroupName"]: g["GroupId"]
        for g in ec2.describe_security_groups(Filters=vpc)["SecurityGroups"]
    }
    subnets = sorted(
        ec2.describe_subnets(Filters=vpc)["Subnets"],
        key=lambda s: resource_tags(s["Tags"]).get("Name", ""),
    )
    secret = aws("secretsmanager").describe_secret(SecretId="ValohaiRedisSecret")
    account = aws("sts").get_caller_identity()["Account"]
    return {
        "account_id": account,
        "region": REGION,
        "valohai_master_role_arn": iam.get_role(RoleName="ValohaiMaster")["Role"]["Arn"],
        "worker_role_arn": iam.get_role(RoleName="ValohaiWorkerRole")["Role"]["Arn"],
        "worker_instance_profile_arn": iam.get_instance_profile(
            InstanceProfileName="ValohaiWorkerInstanceProfile"
        )["InstanceProfile"]["Arn"],
        "queue_role_arn": iam.get_role(RoleName="ValohaiQueueRole")["Role"]["Arn"],
        "queue_public_ip": address["PublicIp"],
        "queue_private_ip": instance["PrivateIpAddress"],
        "queue_address": setup.parameters["QueueAddress"],
        "redis_secret_arn": secret["ARN"],
        "redis_secret_name": secret["Name"],
        "data_bucket_name": f"valohai-data-{account}-{REGION}",
        "multipart_role_arn": iam.get_role(RoleName=f"ValohaiS3MultipartRole-{account}-{REGION}")[
            "Role"
        ]["Arn"],
        "vpc_id": instance["VpcId"],
        "subnet_ids": [s["SubnetId"] for s in subnets],
        "worker_security_group_id": groups["valohai-sg-workers"],
        "worker_security_group_name": "valohai-sg-workers",
        "queue_security_group_id": groups["valohai-sg-queue"],
        "key_pair_name": setup.parameters["KeyPair"],
        "product_version": platform.releases[0],
    }


def test_setup_created_hands_valohai_every_value_of_the_setup(
    aws: Aws, setup: Setup, standin: StandIn, platform: Published
) -> None:
    [created] = setup.events(standin, "setup.created")
    expected = handoff_from_the_account(aws, setup, platform)

    assert created.body["data"] == {"handoff": expected}
    assert created.body["stack"] == {
        "id": setup.stack_id,
        "name": setup.name,
        "account_id": expected["account_id"],
        "region": REGION,
    }
    # The stand-in accepted it only after verifying its signature with the setup token.
    assert created.key_id == key_id(SETUP_TOKEN)
    assert setup.outputs["ValohaiNotificationDelivery"] == "delivered"


def test_outputs_show_every_hand_off_value(aws: Aws, setup: Setup, platform: Published) -> None:
    expected = handoff_from_the_account(aws, setup, platform)

    assert {field: setup.outputs[output] for field, output in OUTPUT_OF.items()} == {
        field: expected[field] for field in OUTPUT_OF
    }
    assert setup.outputs["SubnetIds"] == ",".join(expected["subnet_ids"])


def test_the_queue_address_is_registered_with_its_elastic_ip(
    setup: Setup, standin: StandIn
) -> None:
    [registered] = setup.events(standin, "queue_address.registered")
    binding = standin.receiver.bindings()[setup.outputs["QueueAddress"]]

    assert registered.body["data"] == {
        "queue_address": setup.outputs["QueueAddress"],
        "public_ip": setup.outputs["QueuePublicIp"],
    }
    assert registered.key_id == key_id(SETUP_TOKEN)
    assert (binding.public_ip, binding.stack_id) == (setup.outputs["QueuePublicIp"], setup.stack_id)


def test_every_request_was_signed_and_no_secret_travelled(
    aws: Aws, setups: dict[str, Setup], standin: StandIn
) -> None:
    secrets = aws("secretsmanager")
    for setup in setups.values():
        events = setup.events(standin)
        keys = {e.idempotency_key for e in events}
        attempts = [a for a in standin.receiver.attempts() if a.idempotency_key in keys]
        password = secrets.get_secret_value(SecretId=setup.outputs["RedisSecretArn"])
        bodies = json.dumps([e.body for e in events])

        assert {e.type for e in events} == {"setup.created", "queue_address.registered"}
        assert {a.outcome for a in attempts} == {"accepted"}, attempts
        assert SETUP_TOKEN not in bodies
        assert password["SecretString"] not in bodies


def tag_reader(aws: Aws) -> dict[str, Callable[[str], dict[str, str]]]:
    """How to read the tags of each taggable resource type, from its physical id."""
    ec2, iam, s3, logs = aws("ec2"), aws("iam"), aws("s3"), aws("logs")

    def ec2_tags(resource_id: str) -> dict[str, str]:
        found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])
        return resource_tags(found["Tags"])

    return {
        "AWS::EC2::VPC": ec2_tags,
        "AWS::EC2::InternetGateway": ec2_tags,
        "AWS::EC2::Subnet": ec2_tags,
        "AWS::EC2::RouteTable": ec2_tags,
        "AWS::EC2::SecurityGroup": ec2_tags,
        "AWS::EC2::Instance": ec2_tags,
        "AWS::EC2::EIP": lambda ip: resource_tags(
            ec2.describe_addresses(PublicIps=[ip])["Addresses"][0]["Tags"]
        ),
        "AWS::EC2::FlowLog": lambda flow_log: resource_tags(
            ec2.describe_flow_logs(FlowLogIds=[flow_log])["FlowLogs"][0]["Tags"]
        ),
        "AWS::Logs::LogGroup": lambda name: logs.list_tags_log_group(logGroupName=name)["tags"],
        "AWS::IAM::Role": lambda name: resource_tags(iam.list_role_tags(RoleName=name)["Tags"]),
        "AWS::S3::Bucket": lambda name: resource_tags(s3.get_bucket_tagging(Bucket=name)["TagSet"]),
        "AWS::CloudFormation::Stack": lambda stack: resource_tags(
            aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Tags"]
        ),
        "Custom::ValohaiRedisSecret": lambda arn: resource_tags(
            aws("secretsmanager").describe_secret(SecretId=arn)["Tags"]
        ),
    }


@pytest.mark.parametrize("variant", ["reference", "existing_vpc"])
def test_everything_taggable_is_tagged_valohai_1_except_the_setup_token(
    aws: Aws, setups: dict[str, Setup], variant: str
) -> None:
    setup = setups[variant]
    readers = tag_reader(aws)
    resources = stack_resources(aws("cloudformation"), setup.stack_id)
    [instance] = [
        r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::EC2::Instance"
    ]
    volumes = aws("ec2").describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance]}]
    )["Volumes"]

    untagged = [
        (r["LogicalResourceId"], r["ResourceType"])
        for r in resources
        if r["ResourceType"] in readers
        and readers[r["ResourceType"]](r["PhysicalResourceId"]).get("valohai") != "1"
    ]
    unknown = {r["ResourceType"] for r in resources} - set(readers) - UNTAGGABLE
    assert untagged == []
    # Service Catalog tags the launch, and CloudFormation passes the tag on.
    stack = aws("cloudformation").describe_stacks(StackName=setup.stack_id)["Stacks"][0]
    assert dict([LAUNCHED_FROM]).items() <= {t["Key"]: t["Value"] for t in stack["Tags"]}.items()
    # The setup token is the one thing ValohaiMaster and the queue must not read.
    assert unknown == {"AWS::SecretsManager::Secret"}
    [token] = [r for r in resources if r["ResourceType"] == "AWS::SecretsManager::Secret"]
    token_tags = aws("secretsmanager").describe_secret(SecretId=token["PhysicalResourceId"])["Tags"]
    assert "valohai" not in resource_tags(token_tags)
    # The root volume gets the instance's tags as it is created.
    assert [resource_tags(v["Tags"]).get("valohai") for v in volumes] == ["1"]
