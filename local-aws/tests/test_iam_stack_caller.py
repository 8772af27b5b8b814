"""With enforcement on, CloudFormation acts as whoever it acts as on AWS: a stack with no role
with its caller's credentials (the IAM user or role that started the operation), and the
AWS-specific parameters (SSM- and EC2-typed) are read with the rights of the stack's role,
else of the caller. The administrator's keys are not checked."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, policy_document, unique

PARAMETER = """
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties: {Name: NAME, Type: String, Value: made}
"""

READS_A_PARAMETER = """
Parameters:
  Token: {Type: "AWS::SSM::Parameter::Value<String>"}
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties: {Type: String, Value: !Ref Token}
"""

NAMES_A_KEY_PAIR = """
Parameters:
  Key: {Type: "AWS::EC2::KeyPair::KeyName"}
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties: {Type: String, Value: !Ref Key}
"""

CLOUDFORMATION = {"Service": "cloudformation.amazonaws.com"}
MAKES_PARAMETERS = {
    "Effect": "Allow",
    "Action": ["ssm:PutParameter", "ssm:GetParameters", "ssm:AddTagsToResource"],
    "Resource": "*",
}


def _user(aws: LocalAwsHandle, *statements: dict[str, Any]) -> tuple[str, Any]:
    """An IAM user allowed `statements`: its ARN and its CloudFormation client."""
    arn, session = aws.iam_user("stack-caller")
    if statements:
        aws.client("iam").put_user_policy(
            UserName=arn.rsplit("/", 1)[1],
            PolicyName="p",
            PolicyDocument=policy_document(*statements),
        )
    return arn, session.client("cloudformation", endpoint_url=aws.endpoint_url)


def _refused(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    return str(refused.value.response["Error"]["Message"])


def test_a_stack_without_a_role_acts_as_its_caller(enforcing: LocalAwsHandle) -> None:
    """A user that may not make the resource fails it with AWS's message naming the user, and
    the stack rolls back; a user that may, makes it; a delete by a user that may not delete
    the resource fails, as the deleting caller's credentials are used."""
    body = PARAMETER.replace("NAME", unique("/caller/"))
    reader_arn, reader = _user(
        enforcing, {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "*"}
    )
    denied = unique("denied")
    reader.create_stack(StackName=denied, TemplateBody=body)
    assert enforcing.wait_for_stack(denied)["StackStatus"] == "ROLLBACK_COMPLETE"
    reason = enforcing.first_failure(denied)
    assert f"User: {reader_arn} is not authorized to perform: ssm:PutParameter" in reason
    assert "HandlerErrorCode: AccessDenied" in reason

    _, writer = _user(enforcing, MAKES_PARAMETERS)
    made = writer.create_stack(StackName=unique("made"), TemplateBody=body)["StackId"]
    assert enforcing.wait_for_stack(made)["StackStatus"] == "CREATE_COMPLETE"

    reader.delete_stack(StackName=made)
    assert enforcing.wait_for_stack(made)["StackStatus"] == "DELETE_FAILED"
    assert "ssm:DeleteParameter" in enforcing.first_failure(made)

    enforcing.client("cloudformation").delete_stack(StackName=made)  # the administrator's
    assert enforcing.wait_for_stack(made)["StackStatus"] == "DELETE_COMPLETE"


def test_ssm_typed_parameters_are_read_with_the_rights_of_who_cloudformation_acts_as(
    enforcing: LocalAwsHandle,
) -> None:
    """A stack role, or without one the caller, needs ssm:GetParameters on the parameter: a
    parameter it may not read fails the operation by its name, never its value."""
    ssm = enforcing.client("ssm")
    allowed, other = f"/allowed/{unique('p')}", f"/corp/{unique('p')}"
    ssm.put_parameter(Name=allowed, Value="readable-value", Type="String")
    ssm.put_parameter(Name=other, Value="secret-value", Type="String")
    deny_other = {
        "Effect": "Deny",
        "Action": "ssm:GetParameters",
        "Resource": f"arn:aws:ssm:*:*:parameter{other}",
    }
    role = enforcing.iam_role("stack-role", CLOUDFORMATION, MAKES_PARAMETERS, deny_other)
    cfn = enforcing.client("cloudformation")
    message = _refused(
        cfn.create_stack,
        StackName=unique("reads-other"),
        TemplateBody=READS_A_PARAMETER,
        Parameters=[{"ParameterKey": "Token", "ParameterValue": other}],
        RoleARN=role,
    )
    assert "is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:" in message
    assert f":parameter{other} with an explicit deny" in message
    assert "secret-value" not in message

    user_arn, user = _user(enforcing, {**MAKES_PARAMETERS, "Action": "ssm:PutParameter"})
    message = _refused(
        user.create_stack,
        StackName=unique("reads"),
        TemplateBody=READS_A_PARAMETER,
        Parameters=[{"ParameterKey": "Token", "ParameterValue": allowed}],
    )
    assert message.startswith(f"User: {user_arn} is not authorized to perform: ssm:GetParameters")

    stack = unique("reads")
    cfn.create_stack(
        StackName=stack,
        TemplateBody=READS_A_PARAMETER,
        Parameters=[{"ParameterKey": "Token", "ParameterValue": allowed}],
        RoleARN=role,
    )
    assert enforcing.wait_for_stack(stack)["StackStatus"] == "CREATE_COMPLETE"


def test_ec2_typed_parameters_need_their_describe_permission(enforcing: LocalAwsHandle) -> None:
    """CloudFormation checks an AWS::EC2::KeyPair::KeyName value exists with
    ec2:DescribeKeyPairs, as the stack's role: a role without it cannot name a key pair."""
    key = unique("key")
    enforcing.client("ec2").create_key_pair(KeyName=key)
    cfn = enforcing.client("cloudformation")
    given = [{"ParameterKey": "Key", "ParameterValue": key}]
    blind = enforcing.iam_role("stack-role", CLOUDFORMATION, MAKES_PARAMETERS)
    message = _refused(
        cfn.create_stack,
        StackName=unique("key"),
        TemplateBody=NAMES_A_KEY_PAIR,
        Parameters=given,
        RoleARN=blind,
    )
    assert "is not authorized to perform: ec2:DescribeKeyPairs" in message

    seeing = enforcing.iam_role(
        "stack-role",
        CLOUDFORMATION,
        MAKES_PARAMETERS,
        {"Effect": "Allow", "Action": "ec2:DescribeKeyPairs", "Resource": "*"},
    )
    stack = unique("key")
    cfn.create_stack(
        StackName=stack, TemplateBody=NAMES_A_KEY_PAIR, Parameters=given, RoleARN=seeing
    )
    assert enforcing.wait_for_stack(stack)["StackStatus"] == "CREATE_COMPLETE"
