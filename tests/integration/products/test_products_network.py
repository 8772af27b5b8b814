"""The Workers product's network, read back from EC2 and CloudWatch Logs: a new VPC in 2 or 3
Availability Zones, or the customer's own VPC."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.products import Aws, Setup, resource_tags, stack_resources


def name_tag(resource: dict[str, Any]) -> str | None:
    return resource_tags(resource.get("Tags")).get("Name")


@pytest.fixture(scope="module")
def ec2(aws: Aws) -> Any:
    return aws("ec2")


@pytest.mark.parametrize(("variant", "zones"), [("reference", 2), ("three_azs", 3)])
def test_new_vpc_has_one_public_slash_20_subnet_per_zone_named_for_valohai(
    ec2: Any, setups: dict[str, Setup], variant: str, zones: int
) -> None:
    setup = setups[variant]
    vpc = ec2.describe_vpcs(VpcIds=[setup.outputs["VpcId"]])["Vpcs"][0]
    subnet_ids = setup.outputs["SubnetIds"].split(",")
    subnets = {
        s["SubnetId"]: s
        for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
            "Subnets"
        ]
    }
    region_zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]

    assert vpc["CidrBlock"] == "10.0.0.0/16"
    assert resource_tags(vpc["Tags"]) == {"Name": "valohai-vpc", "valohai": "1"}
    for attribute in ("enableDnsSupport", "enableDnsHostnames"):
        described = ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute=attribute)
        assert described[attribute[0].upper() + attribute[1:]]["Value"] is True, attribute
    # Every subnet of the VPC is a Valohai subnet, listed in order in the output.
    assert sorted(subnets) == sorted(subnet_ids)
    ordered = [subnets[s] for s in subnet_ids]
    assert [name_tag(s) for s in ordered] == [f"valohai-subnet-{n}" for n in range(1, zones + 1)]
    assert [s["CidrBlock"] for s in ordered] == [f"10.0.{16 * n}.0/20" for n in range(zones)]
    assert [s["AvailabilityZone"] for s in ordered] == region_zones[:zones]
    assert all(s["MapPublicIpOnLaunch"] for s in ordered)
    assert all(resource_tags(s["Tags"])["valohai"] == "1" for s in ordered)


@pytest.mark.parametrize("variant", ["reference", "three_azs"])
def test_every_subnet_routes_to_the_internet_through_the_valohai_gateway(
    ec2: Any, setups: dict[str, Setup], variant: str
) -> None:
    setup = setups[variant]
    vpc_id = setup.outputs["VpcId"]
    [gateway] = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
    )["InternetGateways"]

    assert resource_tags(gateway["Tags"]) == {"Name": "valohai-igw", "valohai": "1"}
    assert gateway["Attachments"] == [{"State": "available", "VpcId": vpc_id}]
    for subnet in setup.outputs["SubnetIds"].split(","):
        [table] = ec2.describe_route_tables(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
        )["RouteTables"]
        default = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        assert [r["GatewayId"] for r in default] == [gateway["InternetGatewayId"]], subnet
        assert resource_tags(table["Tags"])["valohai"] == "1"


def test_new_vpc_logs_rejected_flows_to_a_log_group_with_retention(
    aws: Aws, ec2: Any, setup: Setup
) -> None:
    [flow_log] = ec2.describe_flow_logs(
        Filters=[{"Name": "resource-id", "Values": [setup.outputs["VpcId"]]}]
    )["FlowLogs"]
    [group] = aws("logs").describe_log_groups(logGroupNamePrefix=flow_log["LogGroupName"])[
        "logGroups"
    ]
    network = next(
        r
        for r in aws("cloudformation").describe_stack_resources(StackName=setup.stack_id)[
            "StackResources"
        ]
        if r["LogicalResourceId"] == "Network"
    )
    role = next(
        r
        for r in stack_resources(aws("cloudformation"), network["PhysicalResourceId"])
        if r["LogicalResourceId"] == "FlowLogDeliveryRole"
    )

    assert flow_log["TrafficType"] == "REJECT"
    assert flow_log["LogDestinationType"] == "cloud-watch-logs"
    assert flow_log["DeliverLogsPermissionArn"].endswith(f":role/{role['PhysicalResourceId']}")
    assert group["logGroupName"].startswith("/valohai/vpc-flow-logs/")
    assert group["retentionInDays"] == 90
    assert resource_tags(flow_log["Tags"]) == {"Name": "valohai-vpc-flow-log", "valohai": "1"}


def test_an_existing_vpc_is_used_as_it_is(
    aws: Aws, ec2: Any, setups: dict[str, Setup], existing_network: dict[str, str]
) -> None:
    setup = setups["existing_vpc"]
    vpc_id = existing_network["VpcId"]
    first_subnet = existing_network["SubnetIds"].split(",")[0]
    instance = ec2.describe_instances(InstanceIds=[setup.outputs["QueueInstanceId"]])[
        "Reservations"
    ][0]["Instances"][0]
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])

    assert setup.outputs["VpcId"] == vpc_id
    assert setup.outputs["SubnetIds"] == existing_network["SubnetIds"]
    assert (instance["VpcId"], instance["SubnetId"]) == (vpc_id, first_subnet)
    assert {g["GroupName"] for g in groups["SecurityGroups"]} == {
        "default",
        "valohai-sg-workers",
        "valohai-sg-queue",
    }
    kinds = {r["ResourceType"] for r in stack_resources(aws("cloudformation"), setup.stack_id)}
    assert not kinds & {"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::InternetGateway"}
    # Nothing was added to the customer's network.
    assert (
        len(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]) == 2
    )
    assert (
        ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]
        == []
    )
