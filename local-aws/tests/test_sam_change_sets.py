"""SAM templates deployed the way `sam deploy` deploys them: a change set on the local AWS."""

from __future__ import annotations

import io
import zipfile

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

WITH_GLOBALS = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    Timeout: 7
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://{bucket}/fn.zip
      Handler: app.handler
Outputs:
  Name: {{Value: !Ref Fn}}
"""


def _code_bucket(local_aws: LocalAwsHandle) -> str:
    bucket = unique("sam-code")
    s3 = local_aws.client("s3")
    s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_aws.region}
    )
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 'ok'\n")
    s3.put_object(Bucket=bucket, Key="fn.zip", Body=code.getvalue())
    return bucket


def test_globals_apply_to_the_functions_of_an_executed_change_set(
    local_aws: LocalAwsHandle,
) -> None:
    cloudformation = local_aws.client("cloudformation")
    name = unique("sam-globals")
    change_set = cloudformation.create_change_set(
        StackName=name,
        ChangeSetName="deploy",
        ChangeSetType="CREATE",
        TemplateBody=WITH_GLOBALS.format(bucket=_code_bucket(local_aws)),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cloudformation.get_waiter("change_set_create_complete").wait(
        ChangeSetName=change_set["Id"], WaiterConfig={"Delay": 1}
    )
    cloudformation.execute_change_set(ChangeSetName=change_set["Id"])
    description = local_aws.wait_for_stack(name)

    assert description["StackStatus"] == "CREATE_COMPLETE"
    (function_name,) = (o["OutputValue"] for o in description["Outputs"])
    configuration = local_aws.client("lambda").get_function_configuration(
        FunctionName=function_name
    )
    assert configuration["Timeout"] == 7
    assert configuration["Runtime"] == "python3.13"


def test_globals_without_the_sam_transform_are_refused(local_aws: LocalAwsHandle) -> None:
    template = WITH_GLOBALS.replace("Transform: AWS::Serverless-2016-10-31\n", "")
    with pytest.raises(ClientError, match=r"Invalid template property or properties \['Globals'\]"):
        local_aws.client("cloudformation").create_stack(
            StackName=unique("no-transform"), TemplateBody=template.format(bucket="unused")
        )
