"""The products launched on the local AWS as a customer launches them: through the Service
Catalog portfolio of the platform stack, published in a region of its own (`REGION`) by the one
local platform's publish path (`valohai-hybrid publish`: sam build, sam deploy), with a customer
admin of its own key associated with the portfolio.

The platform is a development one (setups may report to the stand-in on 127.0.0.1) with the
default redelivery interval: nothing here waits for a redelivery. It is deleted when the package
is done.

IAM names are account-global, so the IAM product is launched once for the package and terminated
when the package is done; nothing else in the session may hold the ValohaiMaster name meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from localaws.harness import LocalAwsHandle

from tests.support.common import publish_release
from tests.support.launch_roles import stack_accesses
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
)
from valohai_hybrid.local.platform import Customer, delete_platform
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.products import IAM
from valohai_hybrid.publish import Published


@pytest.fixture(scope="package")
def aws(local_aws: LocalAwsHandle) -> Iterator[Aws]:
    """The products' region, with IAM enforced for the whole package: every launch, update and
    termination runs as its launch role, and each access it makes is recorded and judged."""
    before = local_aws.control("iam-enforcement")["enforce"]
    local_aws.control("iam-enforcement", {"enforce": True})
    yield Aws(local_aws)
    local_aws.control("iam-enforcement", {"enforce": before})


@pytest.fixture(scope="package")
def standin(local_aws: LocalAwsHandle) -> Iterator[StandIn]:
    """Valohai's side, with the local AWS's CA, so the functions trust its certificate."""
    with StandIn([SETUP_TOKEN], local_aws.state_dir) as server:
        yield server


@pytest.fixture(scope="package")
def admin(local_aws: LocalAwsHandle) -> Customer:
    """The customer admin: an IAM user with its own key, who launches the products and owns
    the key pair the queue machine gets."""
    customer = Customer.create(local_aws, "products-admin", REGION)
    customer.client("ec2").create_key_pair(KeyName=KEY_PAIR)
    return customer


@pytest.fixture(scope="package")
def platform(local_aws: LocalAwsHandle, admin: Customer) -> Iterator[Published]:
    """This checkout's release, published as a maintainer publishes it, the admin a principal."""
    published = publish_release(local_aws, REGION, principals=[admin.arn])
    yield published
    delete_platform(local_aws, published)


@pytest.fixture(scope="package")
def recorded() -> dict[str, list[dict[str, Any]]]:
    """The accesses each launch made as its launch role, by stack name, kept as the launch
    completes (the local AWS keeps only the latest ones)."""
    return {}


@pytest.fixture(scope="package")
def iam_setup(
    aws: Aws,
    admin: Customer,
    standin: StandIn,
    platform: Published,
    recorded: dict[str, list[dict[str, Any]]],
) -> Iterator[Setup]:
    """The IAM product, launched once for the package (with an external ID), then terminated."""
    launcher = Products(aws, admin, standin)
    values = {"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": EXTERNAL_ID}
    setup = launcher.created(launcher.launch(values, product=IAM), values)
    recorded[setup.name] = stack_accesses(aws.local, setup.name)
    yield setup
    launcher.terminate_standing()


@pytest.fixture(scope="package")
def products(aws: Aws, admin: Customer, standin: StandIn, iam_setup: Setup) -> Iterator[Products]:
    """The launcher; every launch still standing at the end is terminated (before the IAM
    product's)."""
    launcher = Products(aws, admin, standin, iam_setup.outputs["ValohaiMasterRoleARN"])
    yield launcher
    launcher.terminate_standing()


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
        launched[variant] = (products.launch(parameters), parameters)
    return {
        variant: products.created(record_id, parameters)
        for variant, (record_id, parameters) in launched.items()
    }


@pytest.fixture(scope="package")
def setup(setups: dict[str, Setup]) -> Setup:
    return setups["reference"]
