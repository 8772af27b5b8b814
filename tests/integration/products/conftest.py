"""The product templates deployed on the local AWS, as a customer would launch them.

Everything the templates need from the platform stack is put in place here directly with boto3,
in a region of its own (`REGION`) so nothing else in the session shares its service tokens,
key pair or default bucket name: the five functions as `valohai-hybrid publish`
builds them (sam build), the redelivery queue with its consumer, the stack-status forwarder's
EventBridge rule, the three service-token SSM parameters, an EC2 key pair, a template bucket
holding a packaged release, and the Valohai stand-in that verifies every event's signature.
(Not the published platform stack: these tests create the product stacks directly, and its
stack-status rule forwards only the stacks Service Catalog launches.)

IAM names are account-global, so the IAM product is deployed once for the package and deleted
when the package is done; nothing else in the session may hold the ValohaiMaster name meanwhile.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localaws.harness import LocalAwsHandle, unique

from tests.support.products import (
    EXTERNAL_ID,
    FOREIGN_MASTER,
    KEY_PAIR,
    MAINTENANCE_SSH,
    REGION,
    SETUP_TOKEN,
    VALOHAI_PRINCIPAL,
    Aws,
    Products,
    Setup,
    outputs_of,
    parameter_list,
)
from valohai_hybrid.checkout import ROOT
from valohai_hybrid.local import platform as local_platform
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.packaging import Release, package

REDELIVERY_VISIBILITY_SECONDS = 720  # 6 x the redelivery function's timeout
#: Logical id -> (handler, Lambda timeout, needs REDELIVERY_QUEUE_URL): functions/README.md.
FUNCTIONS = {
    "RedisSecretFunction": ("valohai_cr.handlers.redis_secret.handler", 60, False),
    "QueueAddressFunction": ("valohai_cr.handlers.queue_address.handler", 900, True),
    "NotificationFunction": ("valohai_cr.handlers.notification.handler", 60, True),
    "StackStatusFunction": ("valohai_cr.handlers.stack_status.handler", 60, True),
    "RedeliveryFunction": ("valohai_cr.handlers.redelivery.handler", 120, False),
}
SERVICE_TOKENS = {
    "/valohai-hybrid/service-token/redis-secret": "RedisSecretFunction",
    "/valohai-hybrid/service-token/queue-address": "QueueAddressFunction",
    "/valohai-hybrid/service-token/notification": "NotificationFunction",
}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _zip(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def function_packages() -> dict[str, bytes]:
    """Each function's zip, built once per session the one way publishing builds them."""
    built = local_platform.function_packages(local_platform.publish_options(REGION))
    return {name: _zip(directory) for name, directory in built.items()}


@pytest.fixture(scope="package")
def aws(local_aws: LocalAwsHandle) -> Aws:
    return Aws(local_aws)


@pytest.fixture(scope="package")
def standin(local_aws: LocalAwsHandle) -> Iterator[StandIn]:
    """Valohai's side, with the local AWS's CA, so the functions trust its certificate."""
    with StandIn([SETUP_TOKEN], local_aws.state_dir) as server:
        yield server


@pytest.fixture(scope="package")
def platform(aws: Aws, function_packages: dict[str, bytes]) -> dict[str, str]:
    """What the platform stack provides, deployed by hand: function name -> function ARN."""
    iam, lambda_, sqs = aws("iam"), aws("lambda"), aws("sqs")
    dead_letters = sqs.create_queue(
        QueueName="valohai-hybrid-redelivery-dlq.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])
    redelivery = sqs.create_queue(
        QueueName="valohai-hybrid-redelivery.fifo",
        Attributes={
            "FifoQueue": "true",
            "VisibilityTimeout": str(REDELIVERY_VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": 5}
            ),
        },
    )["QueueUrl"]
    redelivery_arn = sqs.get_queue_attributes(QueueUrl=redelivery, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    key = aws("secretsmanager").create_secret(
        Name="valohai-hybrid/redelivery-key-products", SecretString=secrets.token_hex(32)
    )["ARN"]
    # As template.yaml sets them, on a development platform (the stand-in is on 127.0.0.1).
    common = {"REDELIVERY_KEY_SECRET_ARN": key, "ALLOW_LOOPBACK_VALOHAI_API": "true"}
    consumer = {
        "REDELIVERY_DEAD_LETTER_QUEUE_URL": dead_letters,
        "REDELIVERY_MAX_RECEIVE_COUNT": "5",
        "REDELIVERY_INTERVAL_SECONDS": str(REDELIVERY_VISIBILITY_SECONDS),
    }
    arns = {}
    for name, (handler, timeout, notifies) in FUNCTIONS.items():
        role = iam.create_role(
            RoleName=unique(f"products-{name}")[:64],
            AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
        )["Role"]["Arn"]
        environment = {
            **common,
            **({"REDELIVERY_QUEUE_URL": redelivery} if notifies else {}),
            **(consumer if name == "RedeliveryFunction" else {}),
        }
        arns[name] = lambda_.create_function(
            FunctionName=f"valohai-hybrid-{name}",
            Runtime="python3.13",
            Architectures=["arm64"],
            Role=role,
            Handler=handler,
            Code={"ZipFile": function_packages[name]},
            Timeout=timeout,
            MemorySize=256,
            Environment={"Variables": environment},
        )["FunctionArn"]
    lambda_.create_event_source_mapping(
        EventSourceArn=redelivery_arn,
        FunctionName=arns["RedeliveryFunction"],
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    events = aws("events")
    rule = events.put_rule(
        Name="valohai-hybrid-stack-status",
        EventPattern=json.dumps(
            {
                "source": ["aws.cloudformation"],
                "detail-type": ["CloudFormation Stack Status Change"],
            }
        ),
    )["RuleArn"]
    lambda_.add_permission(
        FunctionName=arns["StackStatusFunction"],
        StatementId="stack-status-events",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule,
    )
    events.put_targets(
        Rule="valohai-hybrid-stack-status",
        Targets=[{"Id": "forwarder", "Arn": arns["StackStatusFunction"]}],
    )
    ssm = aws("ssm")
    for parameter, name in SERVICE_TOKENS.items():
        ssm.put_parameter(Name=parameter, Value=arns[name], Type="String", Overwrite=True)
    aws("ec2").create_key_pair(KeyName=KEY_PAIR)
    return arns


@pytest.fixture(scope="package")
def release(aws: Aws) -> Release:
    """The product templates packaged to S3 as an immutable release, as publishing does."""
    bucket = unique("valohai-hybrid-templates")
    aws("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return package(ROOT / "cfn", aws("s3"), bucket=bucket, region=REGION, version="0.1.0")


@pytest.fixture(scope="package")
def iam_setup(aws: Aws, release: Release) -> Iterator[dict[str, Any]]:
    """The IAM product, deployed once for the package (with an external ID), then deleted."""
    cloudformation = aws("cloudformation")
    stack_id = cloudformation.create_stack(
        StackName=unique("valohai-iam"),
        TemplateURL=release.iam_template_url,
        Parameters=parameter_list({"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": EXTERNAL_ID}),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )["StackId"]
    description = aws.wait(stack_id)
    assert description["StackStatus"] == "CREATE_COMPLETE", description.get("StackStatusReason")
    yield description
    cloudformation.delete_stack(StackName=stack_id)
    assert aws.wait(stack_id)["StackStatus"] == "DELETE_COMPLETE"


@pytest.fixture(scope="package")
def products(
    aws: Aws,
    release: Release,
    standin: StandIn,
    platform: dict[str, str],
    iam_setup: dict[str, Any],
) -> Iterator[Products]:
    """The launcher; every stack still standing at the end is deleted (before the IAM stack)."""
    launcher = Products(aws, release, standin, outputs_of(iam_setup)["ValohaiMasterRoleARN"])
    yield launcher
    cloudformation = aws("cloudformation")
    standing = [
        stack_id
        for stack_id in launcher.launched
        if cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
        != "DELETE_COMPLETE"
    ]
    for stack_id in standing:
        cloudformation.delete_stack(StackName=stack_id)
    for stack_id in standing:
        aws.wait(stack_id)


@pytest.fixture(scope="package")
def existing_network(aws: Aws) -> dict[str, str]:
    """A customer's own VPC with two public subnets, made before the setup is launched."""
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    subnets = []
    for number, zone in enumerate(zones[:2]):
        subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.20.{number * 16}.0/20", AvailabilityZone=zone
        )["Subnet"]["SubnetId"]
        ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        subnets.append(subnet)
    return {"VpcId": vpc, "SubnetIds": ",".join(subnets)}


@pytest.fixture(scope="package")
def setups(products: Products, existing_network: dict[str, str]) -> dict[str, Setup]:
    """The setups the read-only tests look at, launched together (each takes seconds):

    - "reference": a new VPC in 2 AZs with every default a customer would leave;
    - "three_azs": a new VPC in 3 AZs, maintenance SSH opened to one address;
    - "existing_vpc": the customer's own VPC and subnets;
    - "foreign_master": ValohaiMasterRoleARN naming another account's role.
    """
    variants: dict[str, dict[str, str | None]] = {
        "reference": {"Suffix": None, "RedisSecretName": None},
        "three_azs": {"NumberOfAZs": "3", "MaintenanceSshCidr": MAINTENANCE_SSH},
        "existing_vpc": dict(existing_network),
        "foreign_master": {"ValohaiMasterRoleARN": FOREIGN_MASTER},
    }
    launched = {}
    for variant, overrides in variants.items():
        parameters = products.parameters(**overrides)
        launched[variant] = (products.launch(None, **parameters), parameters)
    return {
        variant: products.created(stack_id, parameters)
        for variant, (stack_id, parameters) in launched.items()
    }


@pytest.fixture(scope="package")
def setup(setups: dict[str, Setup]) -> Setup:
    return setups["reference"]
