"""The published functions act only for CloudFormation (docs/security.md): each test invokes a
deployed function directly with a forged event, the way anyone allowed to invoke it would, and
checks what that changed in the launched setup and at Valohai's end."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from localaws.harness import LocalAwsHandle, unique

from tests.support.platform import REGION, WORKERS_PRODUCT, EndUser, Record, workers_parameters
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.publish import Published

#: CloudFormation's response bucket in the platform's region, as AWS's ResponseURLs name it.
RESPONSE_BUCKET = "cloudformation-custom-resource-response-eucentral1.s3.eu-central-1.amazonaws.com"
METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


@pytest.fixture
def workers(
    platform: Published,
    end_user: EndUser,
    standin: StandIn,
    iam_launch: Record,
    key_pair: str,
    launches: list[Record],
) -> Record:
    record = end_user.provision(
        WORKERS_PRODUCT, None, workers_parameters(iam_launch, standin, key_pair)
    )
    launches.append(record)
    assert record.status == "SUCCEEDED", record.errors
    return record


def invoke(local_aws: LocalAwsHandle, function: str, event: dict[str, Any]) -> dict[str, Any]:
    """A synchronous invoke, as a caller with lambda:InvokeFunction makes it."""
    answer = local_aws.client("lambda", REGION).invoke(
        FunctionName=function, Payload=json.dumps(event).encode()
    )
    assert "FunctionError" not in answer, answer["Payload"].read()
    return dict(answer)


def forged(kind: str, stack_id: str, logical_id: str, url: str, **fields: Any) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ServiceToken": "forged",
        "ResponseURL": url,
        "StackId": stack_id,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": logical_id,
        "ResourceType": "Custom::Forged",
        **fields,
    }


def test_a_forged_delete_leaves_a_launched_setups_redis_secret_alone(
    local_aws: LocalAwsHandle, workers: Record
) -> None:
    cloudformation = local_aws.client("cloudformation", REGION)
    secrets = local_aws.client("secretsmanager", REGION)
    arn = workers.outputs["RedisSecretArn"]
    (owner,) = [
        r
        for stack in cloudformation.describe_stack_resources(StackName=workers.stack_id)[
            "StackResources"
        ]
        if stack["ResourceType"] == "AWS::CloudFormation::Stack"
        for r in cloudformation.describe_stack_resources(StackName=stack["PhysicalResourceId"])[
            "StackResources"
        ]
        if r["LogicalResourceId"] == "RedisSecret"
    ]
    attack = {
        "PhysicalResourceId": arn,
        "ResourceProperties": {"ForceDeleteWithoutRecovery": "true"},
    }
    signed_url = f"https://{RESPONSE_BUCKET}/key?X-Amz-Signature={uuid.uuid4().hex}"

    for url in (signed_url, METADATA, "https://attacker.example/answer"):
        invoke(
            local_aws,
            "valohai-hybrid-redis-secret",
            forged("Delete", owner["StackId"], "RedisSecret", url, **attack),
        )

    described = secrets.describe_secret(SecretId=arn)
    assert "DeletedDate" not in described
    assert secrets.get_secret_value(SecretId=arn)["SecretString"]


def test_a_forged_notification_signs_nothing_with_a_setups_token(
    local_aws: LocalAwsHandle, workers: Record, own_standin: StandIn
) -> None:
    """The setup's token secret, the caller's Valohai URL: nothing reaches that URL, whether
    the stack is the setup's own (its notification is complete) or one that does not exist."""
    cloudformation = local_aws.client("cloudformation", REGION)
    (token,) = [
        r["PhysicalResourceId"]
        for r in cloudformation.describe_stack_resources(StackName=workers.stack_id)[
            "StackResources"
        ]
        if r["ResourceType"] == "AWS::SecretsManager::Secret"
    ]
    props = {"ValohaiApiUrl": own_standin.url, "SetupTokenSecretArn": token, "Handoff": {}}
    account = workers.stack_id.split(":")[4]
    elsewhere = f"arn:aws:cloudformation:{REGION}:{account}:stack/SC-{account}-pp-x/{uuid.uuid4()}"
    signed_url = f"https://{RESPONSE_BUCKET}/key?X-Amz-Signature={uuid.uuid4().hex}"

    for stack_id in (workers.stack_id, elsewhere):
        for kind in ("Create", "Update", "Delete"):
            for url in (signed_url, METADATA):
                event = forged(
                    kind,
                    stack_id,
                    "ValohaiNotification",
                    url,
                    ResourceProperties=props,
                    PhysicalResourceId=unique("n"),
                )
                invoke(local_aws, "valohai-hybrid-notification", event)

    assert own_standin.receiver.attempts() == []
