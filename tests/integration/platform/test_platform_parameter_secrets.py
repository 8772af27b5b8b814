"""An end user cannot read the account's SSM parameters through a launch.

The Workers product's service tokens and machine image are SSM-typed parameters, which
CloudFormation resolves with the launch role's rights and then shows (in the stack's resolved
parameters, its events and a refused value's message). An end user who names another parameter
must get a refusal that names the parameter, never its value, anywhere they can look.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

from tests.support.platform import (
    REGION,
    WORKERS_PRODUCT,
    EndUser,
    Record,
    workers_parameters,
)
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.publish import Published

DB_PASSWORD = "corp-db-password-Zq81vX0pLm"


@pytest.fixture
def corporate_secret(local_aws: LocalAwsHandle) -> Any:
    """A parameter the account keeps for something else, which no launch may read."""
    ssm = local_aws.client("ssm", REGION)
    name = f"/corp/{unique('db')}/password"
    ssm.put_parameter(Name=name, Value=DB_PASSWORD, Type="String")
    yield name
    ssm.delete_parameter(Name=name)


def everything_the_end_user_sees(local_aws: LocalAwsHandle, end_user: EndUser) -> str:
    """Every record, provisioned product and Service Catalog stack, with its events (the end
    user's own launches: AWSServiceCatalogEndUserFullAccess lets it list no others)."""
    servicecatalog = end_user.servicecatalog
    seen: list[Any] = []
    products = servicecatalog.search_provisioned_products(
        AccessLevelFilter={"Key": "User", "Value": "self"}
    )
    for product in products["ProvisionedProducts"]:
        seen.append(product)
        listed = servicecatalog.list_record_history(
            SearchFilter={"Key": "provisionedproduct", "Value": product["Id"]}
        )
        for record in listed["RecordDetails"]:
            seen.append(servicecatalog.describe_record(Id=record["RecordId"]))
    cloudformation = local_aws.client("cloudformation", REGION)
    for stack in cloudformation.list_stacks()["StackSummaries"]:
        if stack["StackName"].startswith("SC-"):
            seen.append(cloudformation.describe_stacks(StackName=stack["StackId"]))
            seen.append(cloudformation.describe_stack_events(StackName=stack["StackId"]))
    return json.dumps(seen, default=str)


@pytest.mark.parametrize(
    "parameter",
    [
        "NotificationServiceToken",
        "QueueAddressServiceToken",
        "RedisSecretServiceToken",
        "QueueImageId",
    ],
)
def test_naming_another_parameter_is_refused_without_showing_its_value(
    local_aws: LocalAwsHandle,
    platform: Published,
    end_user: EndUser,
    standin: StandIn,
    iam_launch: Record,
    key_pair: str,
    launches: list[Record],
    corporate_secret: str,
    parameter: str,
) -> None:
    values = workers_parameters(iam_launch, standin, key_pair, **{parameter: corporate_secret})
    try:
        record = end_user.provision(WORKERS_PRODUCT, None, values)
    except ClientError as refused:  # Service Catalog checked the parameters at once
        message = refused.response["Error"]["Message"]
    else:  # or the launch failed on them
        launches.append(record)
        assert record.status == "FAILED"
        message = record.errors

    assert "is not authorized to perform: ssm:GetParameters" in message
    assert f":parameter{corporate_secret}" in message
    assert DB_PASSWORD not in message
    assert DB_PASSWORD not in everything_the_end_user_sees(local_aws, end_user)


def test_a_machine_image_pinned_where_the_docs_say_is_used(
    local_aws: LocalAwsHandle,
    platform: Published,
    end_user: EndUser,
    standin: StandIn,
    iam_launch: Record,
    key_pair: str,
    launches: list[Record],
) -> None:
    ssm = local_aws.client("ssm", REGION)
    canonical = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
    image = ssm.get_parameter(Name=canonical)["Parameter"]["Value"]
    pinned = f"/valohai-hybrid/queue-image/{unique('pinned')}"
    ssm.put_parameter(Name=pinned, Value=image, Type="String")
    try:
        values = workers_parameters(iam_launch, standin, key_pair, QueueImageId=pinned)
        record = end_user.provision(WORKERS_PRODUCT, None, values)
        launches.append(record)
        assert record.status == "SUCCEEDED", record.errors
        ec2 = local_aws.client("ec2", REGION)
        (reservation,) = ec2.describe_instances(InstanceIds=[record.outputs["QueueInstanceId"]])[
            "Reservations"
        ]
        assert reservation["Instances"][0]["ImageId"] == image
    finally:
        ssm.delete_parameter(Name=pinned)
