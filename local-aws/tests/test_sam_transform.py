"""The SAM transform applied offline, then deployed with moto's CloudFormation.

The canary shows what stock moto does with the untransformed template: when it fails, moto has
learnt the transform and `sam_transform` can go.
"""

from __future__ import annotations

import io
import json
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from localaws.sam_transform import transform
from moto import mock_aws
from samtranslator.yaml_helper import yaml_parse

ACCOUNT = "123456789012"
REGION = "eu-west-1"
TEMPLATE_PATH = Path(__file__).parent / "fixtures" / "sam" / "app.yaml"


def _template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE_PATH.read_text())  # type: ignore[no-any-return]


def _transform(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    return transform(template, parameters, account_id=ACCOUNT, region=REGION)


def _function(**properties: Any) -> dict[str, Any]:
    """A one-function SAM template."""
    return {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "s3://code/fn.zip",
                    "Handler": "app.handler",
                    "Runtime": "python3.13",
                    **properties,
                },
            }
        },
    }


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: Any) -> None:
        raise AssertionError(f"the transform tried to connect to {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def stock_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Stock moto in memory, with a bucket holding the functions' code."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket="sam-code", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        s3.put_object(Bucket="sam-code", Key="worker.zip", Body=code.getvalue())
        yield


def _create_stack(template_body: str) -> dict[str, str]:
    """Create the stack with moto's CloudFormation; its resources' physical ids by logical id."""
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="sam-app",
        TemplateBody=template_body,
        Parameters=[{"ParameterKey": "CodeBucket", "ParameterValue": "sam-code"}],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = cloudformation.describe_stacks(StackName="sam-app")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    resources = cloudformation.list_stack_resources(StackName="sam-app")
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources["StackResourceSummaries"]
    }


def test_a_sam_application_translates_offline(offline: None) -> None:
    translated = _transform(_template(), CodeBucket="sam-code")

    resources = translated["Resources"]
    assert "Transform" not in translated
    worker = resources["Worker"]
    assert worker["Type"] == "AWS::Lambda::Function"
    assert worker["Properties"]["Code"] == {"S3Bucket": "sam-code", "S3Key": "worker.zip"}
    assert resources["Helper"]["Properties"]["Code"] == {
        "S3Bucket": {"Ref": "CodeBucket"},
        "S3Key": "worker.zip",
    }
    assert worker["Properties"]["DeadLetterConfig"] == {
        "TargetArn": {"Fn::GetAtt": ["Failed", "Arn"]}
    }
    assert worker["Properties"]["Architectures"] == ["arm64"]
    assert worker["Properties"]["ReservedConcurrentExecutions"] == 2
    role = resources["WorkerRole"]["Properties"]
    assert "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess" in role["ManagedPolicyArns"]
    assert resources["WorkerQueue"]["Type"] == "AWS::Lambda::EventSourceMapping"
    assert resources["WorkerStackChanges"]["Type"] == "AWS::Events::Rule"
    assert resources["HelperOld"]["Type"] == "AWS::Events::Rule"


def test_the_translated_application_deploys_to_moto(stock_aws: None) -> None:
    translated = _transform(_template(), CodeBucket="sam-code")

    physical = _create_stack(json.dumps(translated))

    lambda_ = boto3.client("lambda")
    worker = lambda_.get_function(FunctionName=physical["Worker"])
    assert worker["Configuration"]["Handler"] == "app.handler"
    assert worker["Configuration"]["Environment"]["Variables"] == {"STAGE": "test"}
    assert worker["Concurrency"] == {"ReservedConcurrentExecutions": 2}
    assert lambda_.get_function(FunctionName=physical["Helper"])["Configuration"]["Handler"] == (
        "app.helper"
    )
    mapping = lambda_.get_event_source_mapping(UUID=physical["WorkerQueue"])
    assert mapping["FunctionArn"] == worker["Configuration"]["FunctionArn"]
    assert mapping["EventSourceArn"].endswith(physical["Work"].rsplit("/", 1)[1])
    assert mapping["BatchSize"] == 5
    events = boto3.client("events")
    rule = events.describe_rule(Name=physical["WorkerStackChanges"])
    assert json.loads(rule["EventPattern"])["source"] == ["aws.cloudformation"]
    targets = events.list_targets_by_rule(Rule=physical["WorkerStackChanges"])["Targets"]
    assert [t["Arn"] for t in targets] == [worker["Configuration"]["FunctionArn"]]
    iam = boto3.client("iam")
    role = physical["WorkerRole"]
    policies = {
        name: json.dumps(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }
    failed_queue = physical["Failed"].rsplit("/", 1)[1]
    assert any("sqs:SendMessage*" in p and failed_queue in p for p in policies.values())
    assert any(
        "ssm:GetParameter" in p and "parameter/example-hybrid/test/*" in p
        for p in policies.values()
    )
    assert "sqs:SendMessage" in policies["DeadLetterQueuePolicy"]


def test_stock_moto_ignores_the_transform(stock_aws: None) -> None:
    template = _template()
    del template["Outputs"]  # GetAtt of a serverless resource crashes stock moto

    with pytest.warns(UserWarning, match="AWS::Serverless::Function but it's not supported"):
        physical = _create_stack(json.dumps(template))

    assert boto3.client("lambda").list_functions()["Functions"] == []
    assert "Work" in physical  # the plain queue
    assert "Worker" not in physical


def test_auto_publish_alias_uses_the_parameter_values(offline: None) -> None:
    template = _function(AutoPublishAlias={"Ref": "AliasName"})
    template["Parameters"] = {"AliasName": {"Type": "String"}}
    template["Resources"]["Fn"]["Properties"]["Events"] = {
        "Queue": {"Type": "SQS", "Properties": {"Queue": "arn:aws:sqs:eu-west-1:1:q"}}
    }

    resources = _transform(template, AliasName="live")["Resources"]

    alias = resources["FnAliaslive"]
    assert alias["Type"] == "AWS::Lambda::Alias"
    assert alias["Properties"]["Name"] == "live"
    version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert resources[version]["Type"] == "AWS::Lambda::Version"
    assert resources["FnQueue"]["Properties"]["FunctionName"] == {"Ref": "FnAliaslive"}


def test_a_managed_policy_newer_than_samtranslator_resolves_from_the_local_list(
    offline: None,
) -> None:
    resources = _transform(_function(Policies=["AIDevOpsChannelAccessPolicy"]))["Resources"]

    assert (
        "arn:aws:iam::aws:policy/service-role/AIDevOpsChannelAccessPolicy"
        in resources["FnRole"]["Properties"]["ManagedPolicyArns"]
    )


def test_an_unknown_managed_policy_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="'NoSuchPolicy', which is neither") as raised:
        _transform(_function(Policies=["NoSuchPolicy"]))

    assert "SAM policy template" in str(raised.value)


def test_an_invalid_document_names_each_problem_and_the_fix() -> None:
    template = _function(CodeUri="src/")
    template["Resources"]["Other"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"Handler": "app.handler", "Runtime": "python3.13"},
    }

    with pytest.raises(ValueError, match="SAM transform failed") as raised:
        _transform(template)

    message = str(raised.value)
    assert "[Fn]" in message
    assert "[Other]" in message
    assert "sam package" in message


def test_an_application_from_the_repository_is_refused_with_the_fix() -> None:
    template = _function()
    template["Resources"]["App"] = {
        "Type": "AWS::Serverless::Application",
        "Properties": {
            "Location": {
                "ApplicationId": "arn:aws:serverlessrepo:us-east-1:1:applications/x",
                "SemanticVersion": "1.0.0",
            }
        },
    }

    with pytest.raises(ValueError, match="Serverless Application Repository") as raised:
        _transform(template)

    assert "S3 URL" in str(raised.value)


def test_a_template_without_the_transform_comes_back_unchanged() -> None:
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}

    result = _transform(template)

    assert result == template
    assert result is not template


def test_another_transform_is_refused_with_the_fix() -> None:
    template = _function()
    template["Transform"] = ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]

    with pytest.raises(ValueError, match="AWS::LanguageExtensions"):
        _transform(template)
