"""The local CloudFormation engine, through boto3 against the running local AWS."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.cloudformation.template import parse
from localaws.harness import LocalAwsHandle, unique

ACCOUNT = "123456789012"

CHILD = """
Parameters:
  Prefix: {Type: String}
Resources:
  Name:
    Type: AWS::SSM::Parameter
    Properties: {Type: String, Value: !Sub "${Prefix}-child"}
Outputs:
  ParameterName: {Value: !Ref Name}
  Prefixed: {Value: !Sub "${Prefix}-out"}
"""


ONE_PARAMETER = """
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties: {Type: String, Value: v}
"""


def _events(local_aws: LocalAwsHandle, stack: str) -> list[tuple[str, str, str]]:
    pages = local_aws.client("cloudformation").get_paginator("describe_stack_events")
    events = [e for page in pages.paginate(StackName=stack) for e in page["StackEvents"]]
    return [
        (e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason", ""))
        for e in reversed(events)
    ]


def _outputs(description: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}


def test_nested_stack_outputs_feed_parameters_and_outputs(
    local_aws: LocalAwsHandle, upload: Callable[..., str]
) -> None:
    child_127 = upload(CHILD, host="127.0.0.1")
    child_localhost = upload(CHILD, host="localhost")
    parent = f"""
Resources:
  First:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: {child_127}
      Parameters: {{Prefix: one}}
  Second:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: {child_localhost}
      Parameters:
        Prefix: !GetAtt First.Outputs.Prefixed
Outputs:
  FromFirst: {{Value: !GetAtt First.Outputs.ParameterName}}
  FromSecond: {{Value: !GetAtt [Second, Outputs.Prefixed]}}
  Joined: {{Value: !Sub "${{Second.Outputs.Prefixed}}!"}}
"""
    name = unique("nested")
    local_aws.client("cloudformation").create_stack(StackName=name, TemplateBody=parent)
    description = local_aws.wait_for_stack(name)

    assert description["StackStatus"] == "CREATE_COMPLETE"
    outputs = _outputs(description)
    assert outputs["FromSecond"] == "one-out-out"
    assert outputs["Joined"] == "one-out-out!"
    value = local_aws.client("ssm").get_parameter(Name=outputs["FromFirst"])["Parameter"]["Value"]
    assert value == "one-child"


def test_nested_stacks_report_parent_and_root(
    local_aws: LocalAwsHandle, upload: Callable[..., str]
) -> None:
    name = unique("family")
    template = f"""
Resources:
  Child:
    Type: AWS::CloudFormation::Stack
    Properties: {{TemplateURL: {upload(CHILD)}, Parameters: {{Prefix: x}}}}
"""
    cloudformation = local_aws.client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=template)
    parent = local_aws.wait_for_stack(name)
    child_id = cloudformation.describe_stack_resource(StackName=name, LogicalResourceId="Child")[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    child = cloudformation.describe_stacks(StackName=child_id)["Stacks"][0]
    assert child["ParentId"] == parent["StackId"]
    assert child["RootId"] == parent["StackId"]


def test_a_stack_role_reads_the_nested_templates(
    local_aws: LocalAwsHandle, upload: Callable[..., str]
) -> None:
    """With a RoleARN, CloudFormation reads each nested template from its own URL as that
    role: the local AWS records the read for its authorizer (served at /_localaws/accesses)."""
    child = upload(CHILD)
    iam = local_aws.client("iam")
    role = iam.create_role(RoleName=unique("nested-role"), AssumeRolePolicyDocument="{}")["Role"]
    # Allowed everything: this test is about what is recorded, not what is refused.
    iam.put_role_policy(
        RoleName=role["RoleName"],
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    name = unique("nested-role")
    template = f"""
Resources:
  Child:
    Type: AWS::CloudFormation::Stack
    Properties: {{TemplateURL: {child}, Parameters: {{Prefix: {name}}}}}
"""
    local_aws.client("cloudformation").create_stack(
        StackName=name, TemplateBody=template, RoleARN=role["Arn"]
    )
    assert local_aws.wait_for_stack(name)["StackStatus"] == "CREATE_COMPLETE"
    reads = [
        a
        for a in local_aws.control("accesses")
        if a["Purpose"] == f"template of nested stack Child in {name}"
    ]
    bucket, key = child.split("/", 3)[3].split("/", 1)
    assert reads == [
        {
            "PrincipalArn": (
                f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/AWSCloudFormation"
            ),
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/{key}",
            "ResourceAccount": ACCOUNT,
            "Purpose": f"template of nested stack Child in {name}",
            "Context": {},
        }
    ]


def test_outputs_exist_after_an_executed_change_set(local_aws: LocalAwsHandle) -> None:
    cloudformation = local_aws.client("cloudformation")
    name = unique("changeset")
    template = ONE_PARAMETER + "Outputs:\n  Name: {Value: !Ref P}\n"
    change_set = cloudformation.create_change_set(
        StackName=name, ChangeSetName="first", ChangeSetType="CREATE", TemplateBody=template
    )
    cloudformation.get_waiter("change_set_create_complete").wait(
        ChangeSetName=change_set["Id"], WaiterConfig={"Delay": 1}
    )
    described = cloudformation.describe_change_set(ChangeSetName=change_set["Id"])
    assert [c["ResourceChange"]["Action"] for c in described["Changes"]] == ["Add"]
    assert local_aws.wait_for_stack(name)["StackStatus"] == "REVIEW_IN_PROGRESS"

    cloudformation.execute_change_set(ChangeSetName=change_set["Id"])
    description = local_aws.wait_for_stack(name)

    assert description["StackStatus"] == "CREATE_COMPLETE"
    assert _outputs(description)["Name"].startswith("CFN-P-")


def test_create_returns_at_once_and_events_tell_the_progress(
    local_aws: LocalAwsHandle, provider_arn: str
) -> None:
    name = unique("async")
    template = f"""
Resources:
  Slow:
    Type: Custom::Slow
    Properties: {{ServiceToken: {provider_arn}, Mode: sleep, Seconds: "1", Prefix: {name}}}
"""
    cloudformation = local_aws.client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=template)
    assert cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == (
        "CREATE_IN_PROGRESS"
    )
    assert local_aws.wait_for_stack(name)["StackStatus"] == "CREATE_COMPLETE"
    statuses = [(logical, status) for logical, status, _ in _events(local_aws, name)]
    assert statuses == [
        (name, "CREATE_IN_PROGRESS"),
        ("Slow", "CREATE_IN_PROGRESS"),
        ("Slow", "CREATE_IN_PROGRESS"),
        ("Slow", "CREATE_COMPLETE"),
        (name, "CREATE_COMPLETE"),
    ]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ([{"ParameterKey": "Address", "ParameterValue": "not a name"}], "must be a DNS name"),
        ([{"ParameterKey": "Count", "ParameterValue": "7"}], "must be a number not greater than 6"),
        ([{"ParameterKey": "Key", "ParameterValue": "no-such-key"}], "does not exist"),
        ([{"ParameterKey": "Unknown", "ParameterValue": "x"}], "do not exist in the template"),
    ],
)
def test_bad_parameters_are_rejected_before_anything_is_created(
    local_aws: LocalAwsHandle, parameters: list[dict[str, str]], message: str
) -> None:
    template = """
Parameters:
  Address:
    Type: String
    Default: queue.example.com
    AllowedPattern: '^[a-z0-9.-]+$'
    ConstraintDescription: must be a DNS name, such as queue.example.com
  Count: {Type: Number, Default: 2, MinValue: 2, MaxValue: 6}
  Key: {Type: 'AWS::EC2::KeyPair::KeyName', Default: default-key}
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties: {Type: String, Value: !Ref Address}
"""
    ec2 = local_aws.client("ec2")
    if not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["default-key"]}])[
        "KeyPairs"
    ]:
        ec2.create_key_pair(KeyName="default-key")
    name = unique("badparams")
    cloudformation = local_aws.client("cloudformation")
    with pytest.raises(ClientError) as error:
        cloudformation.create_stack(StackName=name, TemplateBody=template, Parameters=parameters)
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert message in error.value.response["Error"]["Message"]
    names = [s["StackName"] for s in cloudformation.list_stacks()["StackSummaries"]]
    assert name not in names


def test_named_iam_needs_the_capability(local_aws: LocalAwsHandle) -> None:
    template = """
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: NamedRoleForCapabilityTest
      AssumeRolePolicyDocument: {Version: '2012-10-17', Statement: []}
"""
    cloudformation = local_aws.client("cloudformation")
    with pytest.raises(ClientError) as error:
        cloudformation.create_stack(
            StackName=unique("caps"), TemplateBody=template, Capabilities=["CAPABILITY_IAM"]
        )
    assert error.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
    assert "CAPABILITY_NAMED_IAM" in error.value.response["Error"]["Message"]


NESTED_ROLE = """
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Version: '2012-10-17', Statement: []}
"""


def test_a_nested_stack_creating_iam_resources_needs_the_roots_capabilities(
    local_aws: LocalAwsHandle, upload: Callable[..., str]
) -> None:
    """CreateStack's Capabilities (CloudFormation API Reference): IAM resources need
    CAPABILITY_IAM or CAPABILITY_NAMED_IAM, else InsufficientCapabilities; and "For stacks
    that contain IAM resources, you must acknowledge IAM capabilities" holds for nested
    stacks too (AWS::CloudFormation::Stack). CreateStack checks only the root template (its
    nested templates are not read yet); the nested stack resource fails when CloudFormation
    creates it, with CreateStack's message, and the root rolls back. Given at the root, the
    capability reaches the nested stack."""
    parent = f"""
Resources:
  Child:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: {upload(NESTED_ROLE)}
"""
    cloudformation = local_aws.client("cloudformation")
    refused = unique("nested-caps")
    cloudformation.create_stack(StackName=refused, TemplateBody=parent)
    assert local_aws.wait_for_stack(refused)["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = [e for e in _events(local_aws, refused) if e[1] == "CREATE_FAILED"]
    assert failed == [("Child", "CREATE_FAILED", "Requires capabilities : [CAPABILITY_IAM]")]

    granted = unique("nested-caps")
    cloudformation.create_stack(
        StackName=granted, TemplateBody=parent, Capabilities=["CAPABILITY_IAM"]
    )
    assert local_aws.wait_for_stack(granted)["StackStatus"] == "CREATE_COMPLETE"

    # An update's capabilities are the ones its nested stacks get: none, and the nested
    # stack's new role fails it.
    two_roles = NESTED_ROLE + "  Second: {Type: AWS::IAM::Role, Properties: "
    two_roles += "{AssumeRolePolicyDocument: {Version: '2012-10-17', Statement: []}}}\n"
    changed = parent.replace(parent.split("TemplateURL: ")[1].strip(), upload(two_roles))
    cloudformation.update_stack(StackName=granted, TemplateBody=changed)
    assert local_aws.wait_for_stack(granted)["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    failed = [e for e in _events(local_aws, granted) if e[1] == "UPDATE_FAILED"]
    assert failed[0][0] == "Child"
    assert "Requires capabilities : [CAPABILITY_IAM]" in failed[0][2]
    cloudformation.delete_stack(StackName=granted)


def test_custom_resource_lifecycle_follows_cloudformation(
    local_aws: LocalAwsHandle,
    provider_arn: str,
    invocations: Callable[[str], list[dict[str, Any]]],
) -> None:
    name = unique("custom")
    cloudformation = local_aws.client("cloudformation")

    def template(value: str, thing_id: str) -> str:
        return f"""
Resources:
  Thing:
    Type: Custom::Thing
    Properties:
      ServiceToken: {provider_arn}
      ServiceTimeout: 30
      Prefix: {name}
      Value: {value}
      Id: {thing_id}
      Enabled: true
Outputs:
  Echo: {{Value: !GetAtt Thing.Echo}}
  Id: {{Value: !Ref Thing}}
"""

    cloudformation.create_stack(StackName=name, TemplateBody=template("one", "first-id"))
    created = local_aws.wait_for_stack(name)
    assert created["StackStatus"] == "CREATE_COMPLETE"
    assert _outputs(created) == {"Echo": "one", "Id": "first-id"}

    cloudformation.update_stack(StackName=name, TemplateBody=template("two", "first-id"))
    assert _outputs(local_aws.wait_for_stack(name))["Echo"] == "two"

    cloudformation.update_stack(StackName=name, TemplateBody=template("two", "second-id"))
    assert _outputs(local_aws.wait_for_stack(name))["Id"] == "second-id"

    cloudformation.delete_stack(StackName=name)
    assert local_aws.wait_for_stack(created["StackId"])["StackStatus"] == "DELETE_COMPLETE"

    seen = [(i["RequestType"], i["PhysicalResourceId"]) for i in invocations(name)]
    assert seen == [
        ("Create", None),
        ("Update", "first-id"),
        ("Update", "first-id"),
        ("Delete", "first-id"),  # the replaced id, deleted in the update's cleanup
        ("Delete", "second-id"),
    ]
    first_update = invocations(name)[1]
    assert first_update["OldResourceProperties"]["Value"] == "one"
    assert first_update["ResourceProperties"]["Value"] == "two"
    # Properties reach the provider as strings, as in CloudFormation.
    assert first_update["ResourceProperties"]["Enabled"] == "true"
    assert first_update["ResourceProperties"]["ServiceTimeout"] == "30"


def test_failed_custom_resource_rolls_back_with_its_reason(
    local_aws: LocalAwsHandle,
    provider_arn: str,
    invocations: Callable[[str], list[dict[str, Any]]],
) -> None:
    name = unique("customfail")
    template = f"""
Resources:
  Before:
    Type: AWS::SSM::Parameter
    Properties: {{Type: String, Value: created-first}}
  Broken:
    Type: Custom::Broken
    DependsOn: Before
    Properties:
      ServiceToken: {provider_arn}
      Prefix: {name}
      Mode: fail
      Id: broken-id
      Reason: the widget is out of stock
"""
    cloudformation = local_aws.client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=template)
    description = local_aws.wait_for_stack(name)

    assert description["StackStatus"] == "ROLLBACK_COMPLETE"
    failures = [
        reason for _, status, reason in _events(local_aws, name) if status == "CREATE_FAILED"
    ]
    assert len(failures) == 1
    assert "the widget is out of stock" in failures[0]
    # The failed resource's id still gets its Delete, and nothing the stack made is left.
    assert [(i["RequestType"], i["PhysicalResourceId"]) for i in invocations(name)] == [
        ("Create", None),
        ("Delete", "broken-id"),
    ]
    resources = cloudformation.describe_stack_resources(StackName=description["StackId"])
    before = next(r for r in resources["StackResources"] if r["LogicalResourceId"] == "Before")
    assert before["ResourceStatus"] == "DELETE_COMPLETE"
    with pytest.raises(ClientError):
        local_aws.client("ssm").get_parameter(Name=before["PhysicalResourceId"])


def test_service_timeout_bounds_the_wait_for_a_silent_provider(
    local_aws: LocalAwsHandle, provider_arn: str
) -> None:
    name = unique("silent")
    template = f"""
Resources:
  Silent:
    Type: Custom::Silent
    Properties: {{ServiceToken: {provider_arn}, Prefix: {name}, Mode: silent, ServiceTimeout: 2}}
"""
    cloudformation = local_aws.client("cloudformation")
    started = time.monotonic()
    cloudformation.create_stack(StackName=name, TemplateBody=template)
    description = local_aws.wait_for_stack(name)
    elapsed = time.monotonic() - started

    assert description["StackStatus"] == "ROLLBACK_COMPLETE"
    assert elapsed < 20
    reasons = [
        reason for _, status, reason in _events(local_aws, name) if status == "CREATE_FAILED"
    ]
    assert "did not receive a response" in reasons[0]
    assert "ServiceTimeout of 2 seconds" in reasons[0]


def test_each_custom_resource_operation_invokes_the_provider_once(
    local_aws: LocalAwsHandle,
    provider_arn: str,
    invocations: Callable[[str], list[dict[str, Any]]],
) -> None:
    name = unique("once")
    resources = "\n".join(
        f"""  Thing{i}:
    Type: Custom::Thing
    Properties: {{ServiceToken: {provider_arn}, Prefix: {name}, Value: v{i}}}"""
        for i in range(3)
    )
    template = f"Resources:\n{resources}\nOutputs:\n  E: {{Value: !GetAtt Thing2.Echo}}\n"
    started = time.monotonic()
    local_aws.client("cloudformation").create_stack(StackName=name, TemplateBody=template)
    assert local_aws.wait_for_stack(name)["StackStatus"] == "CREATE_COMPLETE"
    elapsed = time.monotonic() - started
    assert len(invocations(name)) == 3
    responses = local_aws.control("custom-resource-responses")
    mine = [r for r in responses if r["body"] and name in r["body"]["StackId"]]
    assert len(mine) == 3
    assert all(r["accepted"] for r in mine)
    # Each says what it answered and how long the provider took, for the benchmarks.
    assert {(r["resource_type"], r["request_type"]) for r in mine} == {("Custom::Thing", "Create")}
    assert all(0 < r["seconds"] < elapsed for r in mine)


def test_update_replaces_only_what_must_be_replaced(local_aws: LocalAwsHandle) -> None:
    cloudformation = local_aws.client("cloudformation")
    name = unique("replace")

    def template(parameter_name: str, value: str) -> str:
        return f"""
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties: {{Name: {parameter_name}, Type: String, Value: {value}}}
"""

    first, second = f"/{name}/a", f"/{name}/b"
    cloudformation.create_stack(StackName=name, TemplateBody=template(first, "v1"))
    local_aws.wait_for_stack(name)
    cloudformation.update_stack(StackName=name, TemplateBody=template(first, "v2"))
    assert local_aws.wait_for_stack(name)["StackStatus"] == "UPDATE_COMPLETE"
    ssm = local_aws.client("ssm")
    assert ssm.get_parameter(Name=first)["Parameter"]["Value"] == "v2"
    assert not any(
        "requires the creation of a new physical resource" in r
        for *_, r in _events(local_aws, name)
    )

    cloudformation.update_stack(StackName=name, TemplateBody=template(second, "v2"))
    assert local_aws.wait_for_stack(name)["StackStatus"] == "UPDATE_COMPLETE"
    assert ssm.get_parameter(Name=second)["Parameter"]["Value"] == "v2"
    with pytest.raises(ClientError):
        ssm.get_parameter(Name=first)
    assert any(
        "requires the creation of a new physical resource" in r
        for *_, r in _events(local_aws, name)
    )


def test_no_change_update_is_refused(local_aws: LocalAwsHandle) -> None:
    cloudformation = local_aws.client("cloudformation")
    name = unique("nochange")
    template = ONE_PARAMETER
    cloudformation.create_stack(StackName=name, TemplateBody=template)
    local_aws.wait_for_stack(name)
    with pytest.raises(ClientError, match="No updates are to be performed"):
        cloudformation.update_stack(StackName=name, TemplateBody=template)


def test_stack_status_changes_reach_eventbridge(local_aws: LocalAwsHandle) -> None:
    events, sqs = local_aws.client("events"), local_aws.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique("stack-events"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    name = unique("evented")
    rule = unique("rule")
    stack_prefix = f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{name}/"
    pattern = {
        "source": ["aws.cloudformation"],
        "detail-type": ["CloudFormation Stack Status Change"],
        "detail": {"stack-id": [{"prefix": stack_prefix}]},
    }
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])
    template = ONE_PARAMETER
    local_aws.client("cloudformation").create_stack(StackName=name, TemplateBody=template)
    local_aws.wait_for_stack(name)

    statuses: list[str] = []
    deadline = time.monotonic() + 10
    while len(statuses) < 2 and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            statuses.append(json.loads(message["Body"])["detail"]["status-details"]["status"])
    assert statuses == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]


def test_each_parse_of_a_body_gives_a_template_of_its_own() -> None:
    """Bodies are decoded once and reused: what one operation changes, the next never sees."""
    body = "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties: {Value: !Ref X}\n"
    first = parse(body)
    first["Resources"]["P"]["Properties"]["Value"] = "changed"

    assert parse(body)["Resources"]["P"]["Properties"]["Value"] == {"Ref": "X"}
