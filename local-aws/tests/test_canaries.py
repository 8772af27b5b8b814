"""Canaries: stock moto 5.2.5's CloudFormation gaps that the local engine exists to fill.

Each test runs stock moto (decorator mode, no extensions) and asserts the gap is still there.
When one fails, moto has caught up: drop or slim the matching part of
local-aws/src/localaws/cloudformation and this canary with it.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

CHILD = """
Resources:
  Q:
    Type: AWS::SQS::Queue
Outputs:
  Name: {Value: !GetAtt Q.QueueName}
"""
CHILD_URL = "https://canary-templates.s3.amazonaws.com/child.yml"


@pytest.fixture
def cloudformation() -> Iterator[Any]:
    with mock_aws(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket="canary-templates", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        s3.put_object(Bucket="canary-templates", Key="child.yml", Body=CHILD.encode())
        yield boto3.client("cloudformation")


def _nested(extra: str) -> str:
    return f"""
Resources:
  Child:
    Type: AWS::CloudFormation::Stack
    Properties: {{TemplateURL: {CHILD_URL}}}
{extra}"""


def test_getatt_of_nested_outputs_in_properties_crashes_create_stack(cloudformation: Any) -> None:
    body = _nested(
        "  Queue:\n    Type: AWS::SQS::Queue\n"
        "    Properties: {QueueName: !GetAtt Child.Outputs.Name}\n"
    )
    with pytest.raises(AttributeError, match="get_cfn_attribute"):
        cloudformation.create_stack(StackName="getatt-properties", TemplateBody=body)


def test_getatt_of_nested_outputs_in_outputs_crashes_create_stack(cloudformation: Any) -> None:
    body = _nested("Outputs:\n  Name: {Value: !GetAtt [Child, Outputs.Name]}\n")
    with pytest.raises(TypeError):
        cloudformation.create_stack(StackName="getatt-outputs", TemplateBody=body)


def test_short_form_getatt_of_nested_outputs_yields_no_output(cloudformation: Any) -> None:
    body = _nested("Outputs:\n  Name: {Value: !GetAtt Child.Outputs.Name}\n")
    cloudformation.create_stack(StackName="short-form", TemplateBody=body)
    assert "Outputs" not in cloudformation.describe_stacks(StackName="short-form")["Stacks"][0]


def test_template_url_on_127_0_0_1_is_read_as_a_bucket_named_127(cloudformation: Any) -> None:
    body = (
        "Resources:\n  Child:\n    Type: AWS::CloudFormation::Stack\n"
        "    Properties: {TemplateURL: 'http://127.0.0.1:5000/canary-templates/child.yml'}\n"
    )
    with pytest.raises(ClientError, match="NoSuchBucket"):
        cloudformation.create_stack(StackName="loopback-url", TemplateBody=body)


def test_select_with_a_ref_index_crashes(cloudformation: Any) -> None:
    body = (
        "Parameters:\n  Index: {Type: Number, Default: 1}\nResources:\n  Q:\n"
        "    Type: AWS::SQS::Queue\n    Properties: {QueueName: !Select [!Ref Index, [a, b]]}\n"
    )
    with pytest.raises(TypeError):
        cloudformation.create_stack(StackName="select-ref", TemplateBody=body)


def test_executed_change_set_leaves_the_stack_without_outputs(cloudformation: Any) -> None:
    change_set = cloudformation.create_change_set(
        StackName="change-set", ChangeSetName="first", ChangeSetType="CREATE", TemplateBody=CHILD
    )
    cloudformation.execute_change_set(ChangeSetName=change_set["Id"])
    stack = cloudformation.describe_stacks(StackName="change-set")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert "Outputs" not in stack


def test_create_stack_is_synchronous(cloudformation: Any) -> None:
    cloudformation.create_stack(StackName="synchronous", TemplateBody=CHILD)
    status = cloudformation.describe_stacks(StackName="synchronous")["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"  # AWS answers CREATE_IN_PROGRESS here


def test_a_failing_resource_fails_the_api_call_and_strands_the_stack(cloudformation: Any) -> None:
    body = (
        "Resources:\n  Subnet:\n    Type: AWS::EC2::Subnet\n"
        "    Properties: {VpcId: vpc-missing, CidrBlock: 10.0.0.0/24}\n"
    )
    with pytest.raises(ClientError, match=r"InvalidVpcID\.NotFound"):
        cloudformation.create_stack(StackName="no-rollback", TemplateBody=body)
    summaries = cloudformation.list_stacks()["StackSummaries"]
    statuses = [s["StackStatus"] for s in summaries if s["StackName"] == "no-rollback"]
    assert statuses == ["CREATE_IN_PROGRESS"]  # AWS: CREATE_FAILED, then ROLLBACK_COMPLETE


def test_custom_resources_never_complete_without_docker(cloudformation: Any) -> None:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    role = boto3.client("iam").create_role(RoleName="canary", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    function = boto3.client("lambda").create_function(
        FunctionName="canary-provider",
        Runtime="python3.13",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )
    body = (
        "Resources:\n  Thing:\n    Type: Custom::Thing\n"
        f"    Properties: {{ServiceToken: {function['FunctionArn']}}}\n"
        "Outputs:\n  Value: {Value: !GetAtt Thing.Value}\n"
    )
    cloudformation.create_stack(StackName="custom", TemplateBody=body)
    stack = cloudformation.describe_stacks(StackName="custom")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_IN_PROGRESS"
    assert "Outputs" not in stack
