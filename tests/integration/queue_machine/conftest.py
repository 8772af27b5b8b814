"""A queue machine per test (see tests.support.queue_machine): the instance role, assumed on the
local AWS with the policy cfn/iam.yml gives it, serves its credentials through the IMDSv2
stand-in, and the Redis password is a secret tagged valohai=1 as the product makes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localaws.harness import LocalAwsHandle, unique

from tests.support.cfn import load, render_sub
from tests.support.imds_standin import ImdsStandIn, Instance, running_imds
from tests.support.queue_machine import (
    COMMIT,
    ELASTIC_IP,
    PASSWORD,
    REGION,
    Machine,
    user_data,
)


def resolved(node: Any, values: dict[str, str]) -> Any:
    """A policy document from the template with its Fn::Sub strings filled in."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"}:
            return render_sub(node["Fn::Sub"], values)
        return {key: resolved(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(value, values) for value in node]
    return node


@pytest.fixture(scope="module")
def role_credentials(local_aws: LocalAwsHandle) -> Iterator[tuple[str, dict[str, str]]]:
    """ValohaiQueueRole (its policy from cfn/iam.yml, under a name of its own) and a session of
    it, as EC2 hands the instance profile's role to the machine."""
    iam = local_aws.client("iam", REGION)
    account = local_aws.client("sts", REGION).get_caller_identity()["Account"]
    role = load("iam.yml")["Resources"]["ValohaiQueueRole"]["Properties"]
    values = {"AWS::Partition": "aws", "AWS::AccountId": account, "AWS::URLSuffix": "amazonaws.com"}
    name = unique("ValohaiQueueRole")
    arn = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(resolved(role["AssumeRolePolicyDocument"], values)),
    )["Role"]["Arn"]
    for policy in role["Policies"]:
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(resolved(policy["PolicyDocument"], values)),
        )
    session = local_aws.client("sts", REGION).assume_role(RoleArn=arn, RoleSessionName="i-0queue")
    credentials = session["Credentials"]
    yield (
        name,
        {
            "AccessKeyId": credentials["AccessKeyId"],
            "SecretAccessKey": credentials["SecretAccessKey"],
            "Token": credentials["SessionToken"],
            "Expiration": credentials["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    for policy in role["Policies"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy["PolicyName"])
    iam.delete_role(RoleName=name)


@pytest.fixture
def secret_arn(local_aws: LocalAwsHandle) -> Iterator[str]:
    """The Redis password secret, tagged valohai=1 as Custom::ValohaiRedisSecret makes it."""
    secrets = local_aws.client("secretsmanager", REGION)
    arn = secrets.create_secret(
        Name=unique("ValohaiRedisSecret"),
        SecretString=PASSWORD,
        Tags=[{"Key": "valohai", "Value": "1"}],
    )["ARN"]
    yield str(arn)
    secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def stack_values(secret_arn: str) -> dict[str, str]:
    """The Fn::Sub values of the user data at launch; tests change them as an update would."""
    return {
        "QueueAddress": "acme.vqueue.net",
        "QueueElasticIp": ELASTIC_IP,
        "RedisSecret.Arn": secret_arn,
        "AWS::Region": REGION,
        "WorkerQueueVersion": COMMIT,
        "RedisPasswordRotationToken": "",
    }


@pytest.fixture
def imds(
    role_credentials: tuple[str, dict[str, str]], stack_values: dict[str, str]
) -> Iterator[ImdsStandIn]:
    role_name, credentials = role_credentials
    metadata = load("worker-queue.yml")["Resources"]["QueueInstance"]["Properties"][
        "MetadataOptions"
    ]
    instance = Instance(
        user_data=user_data(**stack_values),
        public_ipv4=ELASTIC_IP,
        role_name=role_name,
        credentials=credentials,
        tags={"Name": "valohai-queue", "valohai": "1"},
        metadata_tags=metadata["InstanceMetadataTags"] == "enabled",
    )
    with running_imds(instance) as server:
        yield server


@pytest.fixture
def machine(tmp_path: Path, imds: ImdsStandIn, local_aws: LocalAwsHandle) -> Machine:
    aws_env = {
        "AWS_ENDPOINT_URL": local_aws.endpoint_url,
        "AWS_CA_BUNDLE": str(local_aws.ca_bundle),
    }
    return Machine.create(tmp_path, imds, aws_env)
