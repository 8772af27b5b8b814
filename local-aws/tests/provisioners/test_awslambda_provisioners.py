"""Lambda provisioners: functions as a SAM-translated template declares them."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from localaws.cloudformation.provisioners import awslambda
from localaws.cloudformation.provisioners.base import (
    Provisioned,
    ResourceContext,
)
from moto.awslambda.models import lambda_backends

Ctx = Callable[..., ResourceContext]
ROLE = "arn:aws:iam::123456789012:role/notifier"
DLQ = "arn:aws:sqs:eu-west-1:123456789012:notifier-dlq"


def code_zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", text)
    return buffer.getvalue()


@pytest.fixture
def client() -> Any:
    return boto3.client("lambda")


@pytest.fixture(autouse=True)
def role() -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    boto3.client("iam").create_role(RoleName="notifier", AssumeRolePolicyDocument=json.dumps(trust))


@pytest.fixture
def artifacts() -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(
        Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_object(Bucket="artifacts", Key="v1.zip", Body=code_zip("def handler(e, c): return 1"))
    s3.put_object(Bucket="artifacts", Key="v2.zip", Body=code_zip("def handler(e, c): return 2"))
    return "artifacts"


def notifier_props(bucket: str) -> dict[str, Any]:
    return {
        "FunctionName": "example-notifier",
        "Code": {"S3Bucket": bucket, "S3Key": "v1.zip"},
        "Handler": "app.handler",
        "Runtime": "python3.13",
        "Role": ROLE,
        "Architectures": ["arm64"],
        "Timeout": "30",
        "MemorySize": 256,
        "ReservedConcurrentExecutions": "2",
        "Environment": {"Variables": {"POWERTOOLS_SERVICE_NAME": "notifier"}},
        "DeadLetterConfig": {"TargetArn": DLQ},
        "LoggingConfig": {"LogGroup": "/example/notifier"},
        "Tags": [{"Key": "lambda:createdBy", "Value": "SAM"}],
    }


@pytest.fixture
def notifier(make_ctx: Ctx, artifacts: str) -> Provisioned:
    return awslambda.Function().create(
        make_ctx("AWS::Lambda::Function", "Notifier"), notifier_props(artifacts)
    )


def test_function_lifecycle(make_ctx: Ctx, client: Any, artifacts: str) -> None:
    ctx = make_ctx("AWS::Lambda::Function", "Notifier")
    props = notifier_props(artifacts)
    made = awslambda.Function().create(ctx, props)

    config = client.get_function_configuration(FunctionName="example-notifier")
    assert made.physical_id == "example-notifier"
    assert made.get_att("Arn") == config["FunctionArn"]
    assert (config["Runtime"], config["Handler"], config["Role"]) == (
        "python3.13",
        "app.handler",
        ROLE,
    )
    assert (config["Timeout"], config["MemorySize"], config["Architectures"]) == (
        30,
        256,
        ["arm64"],
    )
    assert config["Environment"]["Variables"] == {"POWERTOOLS_SERVICE_NAME": "notifier"}
    concurrency = client.get_function_concurrency(FunctionName="example-notifier")
    assert concurrency["ReservedConcurrentExecutions"] == 2
    tags = client.list_tags(Resource=made.get_att("Arn"))["Tags"]
    assert tags["lambda:createdBy"] == "SAM"
    assert tags["aws:cloudformation:logical-id"] == "Notifier"
    first_code = config["CodeSha256"]

    updated = {
        **props,
        "Code": {"S3Bucket": artifacts, "S3Key": "v2.zip"},
        "Architectures": ["x86_64"],
        "Timeout": 60,
        "Environment": {"Variables": {"LOG_LEVEL": "INFO"}},
        "Tags": [],
    }
    del updated["ReservedConcurrentExecutions"]
    awslambda.Function().update(ctx, made, props, updated)

    config = client.get_function_configuration(FunctionName="example-notifier")
    assert config["CodeSha256"] != first_code
    assert (config["Timeout"], config["Architectures"]) == (60, ["x86_64"])
    assert config["Environment"]["Variables"] == {"LOG_LEVEL": "INFO"}
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(
        FunctionName="example-notifier"
    )
    assert "lambda:createdBy" not in client.list_tags(Resource=made.get_att("Arn"))["Tags"]

    for _ in range(2):
        awslambda.Function().delete(ctx, made, updated)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.get_function(FunctionName="example-notifier")


def test_generated_function_name(make_ctx: Ctx, artifacts: str) -> None:
    props = notifier_props(artifacts)
    del props["FunctionName"]
    made = awslambda.Function().create(make_ctx("AWS::Lambda::Function", "Notifier"), props)

    assert made.physical_id.startswith("unit-stack-Notifier-")
    assert len(made.physical_id) <= 64


def test_inline_code_is_packaged_like_cloudformation(make_ctx: Ctx) -> None:
    made = awslambda.Function().create(
        make_ctx("AWS::Lambda::Function"),
        {
            "Code": {"ZipFile": "def handler(event, context):\n    return 'ok'\n"},
            "Handler": "index.handler",
            "Runtime": "python3.13",
            "Role": ROLE,
        },
    )

    # What the function would run: the stored archive (moto does not serve code downloads).
    stored = lambda_backends["123456789012"]["eu-west-1"].get_function(made.physical_id)
    archive = zipfile.ZipFile(io.BytesIO(stored.code_bytes))
    assert sorted(archive.namelist()) == ["cfnresponse.py", "index.py"]
    assert archive.read("index.py").decode().endswith("return 'ok'\n")


def test_permission_lifecycle(make_ctx: Ctx, client: Any, notifier: Provisioned) -> None:
    ctx = make_ctx("AWS::Lambda::Permission", "EventsInvoke")
    rule_arn = "arn:aws:events:eu-west-1:123456789012:rule/stack-events"
    props = {
        "FunctionName": notifier.get_att("Arn"),
        "Action": "lambda:InvokeFunction",
        "Principal": "events.amazonaws.com",
        "SourceArn": rule_arn,
    }
    made = awslambda.Permission().create(ctx, props)

    policy = json.loads(client.get_policy(FunctionName="example-notifier")["Policy"])
    statement = next(s for s in policy["Statement"] if s["Sid"] == made.physical_id)
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == rule_arn
    assert made.get_att("Id") == made.physical_id

    for _ in range(2):
        awslambda.Permission().delete(ctx, made, props)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.get_policy(FunctionName="example-notifier")


def test_event_invoke_config_lifecycle(make_ctx: Ctx, client: Any, notifier: Provisioned) -> None:
    ctx = make_ctx("AWS::Lambda::EventInvokeConfig", "NotifierAsync")
    props = {
        "FunctionName": "example-notifier",
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": "2",
        "MaximumEventAgeInSeconds": 3600,
        "DestinationConfig": {"OnFailure": {"Destination": DLQ}},
    }
    made = awslambda.EventInvokeConfig().create(ctx, props)

    config = client.get_function_event_invoke_config(FunctionName="example-notifier")
    assert made.physical_id == "example-notifier|$LATEST"
    assert (config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"]) == (2, 3600)
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == DLQ

    updated = {**props, "MaximumRetryAttempts": 0}
    awslambda.EventInvokeConfig().update(ctx, made, props, updated)
    config = client.get_function_event_invoke_config(FunctionName="example-notifier")
    assert config["MaximumRetryAttempts"] == 0

    for _ in range(2):
        awslambda.EventInvokeConfig().delete(ctx, made, updated)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.get_function_event_invoke_config(FunctionName="example-notifier")


# Canaries: stock moto CloudFormation behaviour this module replaces.


def test_canary_moto_drops_function_architectures_and_tags(
    stock_stack: Any, client: Any, artifacts: str
) -> None:
    stock_stack(
        {
            "Resources": {
                "Fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "FunctionName": "canary",
                        "Code": {"S3Bucket": artifacts, "S3Key": "v1.zip"},
                        "Handler": "app.handler",
                        "Runtime": "python3.13",
                        "Role": ROLE,
                        "Architectures": ["arm64"],
                        "Tags": [{"Key": "lambda:createdBy", "Value": "SAM"}],
                    },
                }
            }
        }
    )
    config = client.get_function_configuration(FunctionName="canary")
    assert config["Architectures"] == ["x86_64"]
    assert "lambda:createdBy" not in client.list_tags(Resource=config["FunctionArn"])["Tags"]


def test_canary_moto_keeps_permissions_and_skips_invoke_configs(
    client: Any, notifier: Provisioned
) -> None:
    template = {
        "Resources": {
            "Invoke": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "FunctionName": "example-notifier",
                    "Action": "lambda:InvokeFunction",
                    "Principal": "events.amazonaws.com",
                },
            },
            "Async": {
                "Type": "AWS::Lambda::EventInvokeConfig",
                "Properties": {
                    "FunctionName": "example-notifier",
                    "Qualifier": "$LATEST",
                    "MaximumRetryAttempts": 0,
                },
            },
        }
    }
    cfn = boto3.client("cloudformation")
    with pytest.warns(UserWarning, match="Tried to parse AWS::Lambda::EventInvokeConfig"):
        cfn.create_stack(StackName="canary", TemplateBody=json.dumps(template))
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.get_function_event_invoke_config(FunctionName="example-notifier")
    cfn.delete_stack(StackName="canary")
    policy = json.loads(client.get_policy(FunctionName="example-notifier")["Policy"])
    assert len(policy["Statement"]) == 1
