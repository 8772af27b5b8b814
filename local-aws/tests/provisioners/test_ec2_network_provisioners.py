"""EC2 networking provisioners: what a template creates is what DescribeX shows, then gone."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from localaws.cloudformation.provisioners import ec2
from localaws.cloudformation.provisioners.base import (
    Provisioned,
    ProvisionError,
    ResourceContext,
)

Ctx = Callable[..., ResourceContext]


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


@pytest.fixture
def client() -> Any:
    return boto3.client("ec2")


@pytest.fixture
def vpc(make_ctx: Ctx) -> Provisioned:
    return ec2.VPC().create(make_ctx("AWS::EC2::VPC", "Vpc"), {"CidrBlock": "10.0.0.0/16"})


def test_vpc_lifecycle(make_ctx: Ctx, client: Any) -> None:
    ctx = make_ctx("AWS::EC2::VPC", "Vpc")
    props = {
        "CidrBlock": "10.0.0.0/16",
        "EnableDnsSupport": "true",
        "EnableDnsHostnames": True,
        "Tags": [{"Key": "Name", "Value": "example-vpc"}],
    }
    made = ec2.VPC().create(ctx, props)

    described = client.describe_vpcs(VpcIds=[made.physical_id])["Vpcs"][0]
    assert described["CidrBlock"] == "10.0.0.0/16"
    assert tags_of(described) == {
        "Name": "example-vpc",
        "example": "1",
        "aws:cloudformation:stack-name": ctx.stack_name,
        "aws:cloudformation:stack-id": ctx.stack_id,
        "aws:cloudformation:logical-id": "Vpc",
    }
    hostnames = client.describe_vpc_attribute(
        VpcId=made.physical_id, Attribute="enableDnsHostnames"
    )
    assert hostnames["EnableDnsHostnames"]["Value"] is True
    default_sg = client.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [made.physical_id]}]
    )["SecurityGroups"][0]
    assert made.get_att("DefaultSecurityGroup") == default_sg["GroupId"]
    assert made.get_att("CidrBlock") == "10.0.0.0/16"
    assert made.get_att("VpcId") == made.physical_id

    updated = {**props, "EnableDnsHostnames": False, "Tags": [{"Key": "Name", "Value": "v2"}]}
    ec2.VPC().update(ctx, made, props, updated)
    described = client.describe_vpcs(VpcIds=[made.physical_id])["Vpcs"][0]
    assert tags_of(described)["Name"] == "v2"
    hostnames = client.describe_vpc_attribute(
        VpcId=made.physical_id, Attribute="enableDnsHostnames"
    )
    assert hostnames["EnableDnsHostnames"]["Value"] is False

    ec2.VPC().delete(ctx, made, updated)
    ec2.VPC().delete(ctx, made, updated)
    assert not client.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [made.physical_id]}])[
        "Vpcs"
    ]


def test_internet_gateway_attached_and_routed(make_ctx: Ctx, client: Any, vpc: Provisioned) -> None:
    igw_props = {"Tags": [{"Key": "Name", "Value": "example-igw"}]}
    igw = ec2.InternetGateway().create(make_ctx("AWS::EC2::InternetGateway", "Igw"), igw_props)
    attach_props = {"VpcId": vpc.physical_id, "InternetGatewayId": igw.physical_id}
    attach_ctx = make_ctx("AWS::EC2::VPCGatewayAttachment", "Attach")
    attachment = ec2.VPCGatewayAttachment().create(attach_ctx, attach_props)
    assert attachment.physical_id == f"IGW|{vpc.physical_id}"

    table_ctx = make_ctx("AWS::EC2::RouteTable", "Table")
    table = ec2.RouteTable().create(table_ctx, {"VpcId": vpc.physical_id})
    route_props = {
        "RouteTableId": table.physical_id,
        "DestinationCidrBlock": "0.0.0.0/0",
        "GatewayId": igw.physical_id,
    }
    route_ctx = make_ctx("AWS::EC2::Route", "Route")
    route = ec2.Route().create(route_ctx, route_props)
    assert route.physical_id == f"{table.physical_id}|0.0.0.0/0"

    described_igw = client.describe_internet_gateways(InternetGatewayIds=[igw.physical_id])
    assert described_igw["InternetGateways"][0]["Attachments"] == [
        {"State": "available", "VpcId": vpc.physical_id}
    ]
    routes = client.describe_route_tables(RouteTableIds=[table.physical_id])["RouteTables"][0]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw.physical_id}.items() <= next(
        r for r in routes["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0"
    ).items()

    # Teardown in CloudFormation's reverse order, each step twice: a repeat finds it gone.
    for _ in range(2):
        ec2.Route().delete(route_ctx, route, route_props)
        ec2.RouteTable().delete(table_ctx, table, {"VpcId": vpc.physical_id})
        ec2.VPCGatewayAttachment().delete(attach_ctx, attachment, attach_props)
        ec2.InternetGateway().delete(make_ctx("AWS::EC2::InternetGateway"), igw, igw_props)
    assert not client.describe_internet_gateways(
        Filters=[{"Name": "internet-gateway-id", "Values": [igw.physical_id]}]
    )["InternetGateways"]
    assert not client.describe_route_tables(
        Filters=[{"Name": "route-table-id", "Values": [table.physical_id]}]
    )["RouteTables"]


def test_route_target_changes_in_place(make_ctx: Ctx, client: Any, vpc: Provisioned) -> None:
    first = ec2.InternetGateway().create(make_ctx("AWS::EC2::InternetGateway"), {})
    second = ec2.InternetGateway().create(make_ctx("AWS::EC2::InternetGateway"), {})
    table = ec2.RouteTable().create(make_ctx("AWS::EC2::RouteTable"), {"VpcId": vpc.physical_id})
    old = {"RouteTableId": table.physical_id, "DestinationCidrBlock": "0.0.0.0/0"}
    ctx = make_ctx("AWS::EC2::Route")
    route = ec2.Route().create(ctx, {**old, "GatewayId": first.physical_id})

    kept = ec2.Route().update(
        ctx,
        route,
        {**old, "GatewayId": first.physical_id},
        {**old, "GatewayId": second.physical_id},
    )

    assert kept.physical_id == route.physical_id
    routes = client.describe_route_tables(RouteTableIds=[table.physical_id])["RouteTables"][0]
    default = [r for r in routes["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0"]
    assert [r["GatewayId"] for r in default] == [second.physical_id]


def test_subnet_maps_public_ips_and_shows_its_route_table(
    make_ctx: Ctx, client: Any, vpc: Provisioned
) -> None:
    ctx = make_ctx("AWS::EC2::Subnet", "Subnet1")
    props = {
        "VpcId": vpc.physical_id,
        "CidrBlock": "10.0.16.0/20",
        "AvailabilityZone": "eu-west-1b",
        "MapPublicIpOnLaunch": "true",
        "Tags": [{"Key": "Name", "Value": "example-subnet-1"}],
    }
    subnet = ec2.Subnet().create(ctx, props)
    table = ec2.RouteTable().create(make_ctx("AWS::EC2::RouteTable"), {"VpcId": vpc.physical_id})
    assoc_ctx = make_ctx("AWS::EC2::SubnetRouteTableAssociation")
    assoc_props = {"SubnetId": subnet.physical_id, "RouteTableId": table.physical_id}
    association = ec2.SubnetRouteTableAssociation().create(assoc_ctx, assoc_props)

    described = client.describe_subnets(SubnetIds=[subnet.physical_id])["Subnets"][0]
    assert described["MapPublicIpOnLaunch"] is True
    assert described["AvailabilityZone"] == "eu-west-1b"
    assert tags_of(described)["Name"] == "example-subnet-1"
    assert subnet.get_att("AvailabilityZone") == "eu-west-1b"
    assert subnet.get_att("CidrBlock") == "10.0.16.0/20"
    routes = client.describe_route_tables(RouteTableIds=[table.physical_id])["RouteTables"][0]
    assert [(a["RouteTableAssociationId"], a["SubnetId"]) for a in routes["Associations"]] == [
        (association.physical_id, subnet.physical_id)
    ]

    ec2.Subnet().update(ctx, subnet, props, {**props, "MapPublicIpOnLaunch": False})
    described = client.describe_subnets(SubnetIds=[subnet.physical_id])["Subnets"][0]
    assert described["MapPublicIpOnLaunch"] is False

    for _ in range(2):
        ec2.SubnetRouteTableAssociation().delete(assoc_ctx, association, assoc_props)
        ec2.Subnet().delete(ctx, subnet, props)
    routes = client.describe_route_tables(RouteTableIds=[table.physical_id])["RouteTables"][0]
    assert routes["Associations"] == []
    assert not client.describe_subnets(
        Filters=[{"Name": "subnet-id", "Values": [subnet.physical_id]}]
    )["Subnets"]


def test_subnet_without_zone_lands_in_the_stack_region(make_ctx: Ctx, vpc: Provisioned) -> None:
    subnet = ec2.Subnet().create(
        make_ctx("AWS::EC2::Subnet"), {"VpcId": vpc.physical_id, "CidrBlock": "10.0.0.0/20"}
    )

    assert subnet.get_att("AvailabilityZone") == "eu-west-1a"


def test_flow_log_to_cloudwatch_logs(make_ctx: Ctx, client: Any, vpc: Provisioned) -> None:
    boto3.client("logs").create_log_group(logGroupName="/example/flow")
    ctx = make_ctx("AWS::EC2::FlowLog", "FlowLog")
    props = {
        "ResourceId": vpc.physical_id,
        "ResourceType": "VPC",
        "TrafficType": "REJECT",
        "LogGroupName": "/example/flow",
        "DeliverLogsPermissionArn": "arn:aws:iam::123456789012:role/flow",
        "Tags": [{"Key": "Name", "Value": "flow"}],
    }
    flow = ec2.FlowLog().create(ctx, props)

    described = client.describe_flow_logs(FlowLogIds=[flow.physical_id])["FlowLogs"][0]
    assert described["ResourceId"] == vpc.physical_id
    assert described["TrafficType"] == "REJECT"
    assert described["LogGroupName"] == "/example/flow"
    assert described["DeliverLogsStatus"] == "SUCCESS"

    ec2.FlowLog().update(ctx, flow, props, {**props, "Tags": []})
    described = client.describe_flow_logs(FlowLogIds=[flow.physical_id])["FlowLogs"][0]
    assert "Name" not in tags_of(described)

    ec2.FlowLog().delete(ctx, flow, props)
    ec2.FlowLog().delete(ctx, flow, props)
    assert client.describe_flow_logs(FlowLogIds=[flow.physical_id])["FlowLogs"] == []


def test_attachment_needs_an_internet_gateway(make_ctx: Ctx, vpc: Provisioned) -> None:
    with pytest.raises(ProvisionError, match="InternetGatewayId is required"):
        ec2.VPCGatewayAttachment().create(
            make_ctx("AWS::EC2::VPCGatewayAttachment"), {"VpcId": vpc.physical_id}
        )


def test_moto_errors_read_like_aws(make_ctx: Ctx) -> None:
    with pytest.raises(ProvisionError, match="VpcID vpc-00000000 does not exist"):
        ec2.Subnet().create(
            make_ctx("AWS::EC2::Subnet"), {"VpcId": "vpc-00000000", "CidrBlock": "10.0.0.0/24"}
        )


# Canaries: stock moto CloudFormation behaviour these provisioners replace. When one fails,
# moto has fixed the gap and the provisioner (or that part of it) can go.


def test_canary_moto_drops_map_public_ip_on_launch(stock_stack: Any, client: Any) -> None:
    ids = stock_stack(
        {
            "Resources": {
                "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.1.0.0/16"}},
                "Subnet": {
                    "Type": "AWS::EC2::Subnet",
                    "Properties": {
                        "VpcId": {"Ref": "Vpc"},
                        "CidrBlock": "10.1.0.0/24",
                        "AvailabilityZone": "eu-west-1a",
                        "MapPublicIpOnLaunch": True,
                    },
                },
            }
        }
    )
    subnet = client.describe_subnets(SubnetIds=[ids["Subnet"]])["Subnets"][0]
    assert subnet["MapPublicIpOnLaunch"] is False  # asked for True


def test_canary_moto_hides_route_table_associations(stock_stack: Any, client: Any) -> None:
    ids = stock_stack(
        {
            "Resources": {
                "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.1.0.0/16"}},
                "Subnet": {
                    "Type": "AWS::EC2::Subnet",
                    "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.1.0.0/24"},
                },
                "Table": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
                "Assoc": {
                    "Type": "AWS::EC2::SubnetRouteTableAssociation",
                    "Properties": {"SubnetId": {"Ref": "Subnet"}, "RouteTableId": {"Ref": "Table"}},
                },
            }
        }
    )
    table = client.describe_route_tables(RouteTableIds=[ids["Table"]])["RouteTables"][0]
    assert table["Associations"] == []


# moto's serializer notes that DependencyViolation is not in its error models.
@pytest.mark.filterwarnings("ignore:Exception\\(DependencyViolationError\\)")
def test_canary_moto_never_deletes_gateways_or_route_tables(client: Any) -> None:
    cfn = boto3.client("cloudformation")
    gateway_only = {"Resources": {"Igw": {"Type": "AWS::EC2::InternetGateway"}}}
    cfn.create_stack(StackName="gateway", TemplateBody=json.dumps(gateway_only))
    cfn.delete_stack(StackName="gateway")
    assert client.describe_internet_gateways()["InternetGateways"]

    with_table = {
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.1.0.0/16"}},
            "Table": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
        }
    }
    cfn.create_stack(StackName="table", TemplateBody=json.dumps(with_table))
    with pytest.raises(ClientError, match="has dependencies"):  # the table stays, so the VPC
        cfn.delete_stack(StackName="table")
