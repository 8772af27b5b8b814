"""EC2 networking: VPC, internet gateway, subnets, route tables, routes and flow logs.

moto's own CloudFormation models for these create the resources but drop properties
(Subnet MapPublicIpOnLaunch, VPC DNS attributes), hide route-table associations from
DescribeRouteTables and never delete gateways, route tables, routes or flow logs.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

from moto.ec2.exceptions import InvalidRouteError, InvalidRouteTableIdError
from moto.ec2.models import EC2Backend, ec2_backends

from .base import Provisioned, ProvisionError, ResourceContext, register
from .common import (
    ConfiguredInPlace,
    MotoProvisioner,
    RecreatedOnUpdate,
    as_bool,
    resource_tags,
    sync_tags,
)


def ec2_backend(ctx: ResourceContext) -> EC2Backend:
    return ec2_backends[ctx.account_id][ctx.region]


def apply_tags(ctx: ResourceContext, resource_id: str, props: dict[str, Any]) -> None:
    """Make the resource's tags exactly the stack's plus its own `Tags`."""
    backend = ec2_backend(ctx)
    sync_tags(
        resource_tags(ctx, props),
        backend.tags.get(resource_id, {}),
        partial(backend.delete_tag_keys, [resource_id]),
        partial(backend.create_tags, [resource_id]),
    )


class _TaggedOnly(ConfiguredInPlace):
    """An EC2 resource whose only property that changes in place is Tags."""

    def _configure(self, ctx: ResourceContext, physical_id: str, props: dict[str, Any]) -> None:
        apply_tags(ctx, physical_id, props)


@register
class VPC(ConfiguredInPlace):
    resource_type = "AWS::EC2::VPC"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = ec2_backend(ctx)
        vpc = backend.create_vpc(
            props["CidrBlock"], instance_tenancy=props.get("InstanceTenancy", "default")
        )
        self._configure(ctx, vpc.id, props)
        default_acl = backend.describe_network_acls(
            filters={"vpc-id": [vpc.id], "default": ["true"]}
        )
        return Provisioned(
            vpc.id,
            {
                "VpcId": vpc.id,
                "CidrBlock": vpc.cidr_block,
                "CidrBlockAssociations": [
                    a["association_id"] for a in vpc.get_cidr_block_association_set()
                ],
                "DefaultSecurityGroup": vpc.get_cfn_attribute("DefaultSecurityGroup"),
                "DefaultNetworkAcl": default_acl[0].id if default_acl else "",
                "Ipv6CidrBlocks": [],
            },
        )

    def _configure(self, ctx: ResourceContext, vpc_id: str, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        # AWS defaults: DNS resolution on, DNS host names off (for non-default VPCs). moto's
        # hint says str, but its API layer stores the parsed booleans, as done here.
        for attribute, prop, default in (
            ("enable_dns_support", "EnableDnsSupport", True),
            ("enable_dns_hostnames", "EnableDnsHostnames", False),
        ):
            value: Any = as_bool(props.get(prop), default)
            backend.modify_vpc_attribute(vpc_id, attribute, value)
        apply_tags(ctx, vpc_id, props)

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        if current.physical_id in backend.vpcs:
            backend.delete_vpc(current.physical_id)


@register
class InternetGateway(_TaggedOnly):
    resource_type = "AWS::EC2::InternetGateway"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        igw = ec2_backend(ctx).create_internet_gateway()
        apply_tags(ctx, igw.id, props)
        return Provisioned(igw.id, {"InternetGatewayId": igw.id})

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        if current.physical_id in backend.internet_gateways:
            backend.delete_internet_gateway(current.physical_id)


@register
class VPCGatewayAttachment(RecreatedOnUpdate):
    """Attaches an internet gateway to a VPC; Ref is `IGW|vpc-…` as in CloudFormation.

    Another gateway for the same VPC is swapped in place, as CloudFormation does.
    """

    resource_type = "AWS::EC2::VPCGatewayAttachment"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        if not props.get("InternetGatewayId"):
            raise ProvisionError(
                "InternetGatewayId is required: the local AWS attaches internet gateways only"
            )
        ec2_backend(ctx).attach_internet_gateway(props["InternetGatewayId"], props["VpcId"])
        return Provisioned(f"IGW|{props['VpcId']}", {"AttachmentType": "IGW"})

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        igw = backend.internet_gateways.get(props.get("InternetGatewayId") or "")
        if igw is not None and igw.vpc is not None and igw.vpc.id == props["VpcId"]:
            backend.detach_internet_gateway(igw.id, props["VpcId"])


@register
class Subnet(ConfiguredInPlace):
    resource_type = "AWS::EC2::Subnet"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = ec2_backend(ctx)
        zone_id = props.get("AvailabilityZoneId")
        # Without a zone AWS picks one of the region's; moto would pick us-east-1a.
        zone = props.get("AvailabilityZone") or (None if zone_id else f"{ctx.region}a")
        subnet = backend.create_subnet(
            props["VpcId"],
            props["CidrBlock"],
            availability_zone=zone,
            availability_zone_id=zone_id,
        )
        self._configure(ctx, subnet.id, props)
        acl_associations = [
            association.id
            for acl in backend.describe_network_acls()
            for association in acl.associations
            if association.subnet_id == subnet.id
        ]
        return Provisioned(
            subnet.id,
            {
                "SubnetId": subnet.id,
                "VpcId": subnet.vpc_id,
                "CidrBlock": subnet.cidr_block,
                "AvailabilityZone": subnet.availability_zone,
                "AvailabilityZoneId": subnet.availability_zone_id,
                "NetworkAclAssociationId": acl_associations[0] if acl_associations else "",
                "Ipv6CidrBlocks": [],
            },
        )

    def _configure(self, ctx: ResourceContext, subnet_id: str, props: dict[str, Any]) -> None:
        # Always set: moto turns it on for the first subnet of a zone, AWS only for default VPCs.
        ec2_backend(ctx).modify_subnet_attribute(
            subnet_id, "map_public_ip_on_launch", as_bool(props.get("MapPublicIpOnLaunch"))
        )
        apply_tags(ctx, subnet_id, props)

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        if backend.describe_subnets(filters={"subnet-id": [current.physical_id]}):
            backend.delete_subnet(current.physical_id)


@register
class RouteTable(_TaggedOnly):
    resource_type = "AWS::EC2::RouteTable"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        table = ec2_backend(ctx).create_route_table(props["VpcId"])
        apply_tags(ctx, table.id, props)
        return Provisioned(table.id, {"RouteTableId": table.id})

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        if current.physical_id in backend.route_tables:
            backend.delete_route_table(current.physical_id)


# Route properties naming the target, and the create_route argument each one fills.
_ROUTE_TARGETS = {
    "GatewayId": "gateway_id",
    "NatGatewayId": "nat_gateway_id",
    "InstanceId": "instance_id",
    "NetworkInterfaceId": "interface_id",
    "VpcPeeringConnectionId": "vpc_peering_connection_id",
    "TransitGatewayId": "transit_gateway_id",
    "EgressOnlyInternetGatewayId": "egress_only_igw_id",
    "CarrierGatewayId": "carrier_gateway_id",
    "VpcEndpointId": "vpc_endpoint_id",
}


@register
class Route(RecreatedOnUpdate):
    """One route; Ref is `<route table id>|<destination>` as CloudFormation returns it.

    Only the target changes in place (the destination is create-only): the route id stays.
    """

    resource_type = "AWS::EC2::Route"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        targets = {arg: props[key] for key, arg in _ROUTE_TARGETS.items() if props.get(key)}
        ec2_backend(ctx).create_route(
            props["RouteTableId"],
            props.get("DestinationCidrBlock"),
            destination_ipv6_cidr_block=props.get("DestinationIpv6CidrBlock"),
            destination_prefix_list_id=props.get("DestinationPrefixListId"),
            **targets,
        )
        destination = _destination(props)
        return Provisioned(f"{props['RouteTableId']}|{destination}", {"CidrBlock": destination})

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        with contextlib.suppress(InvalidRouteError, InvalidRouteTableIdError):  # already gone
            ec2_backend(ctx).delete_route(
                props["RouteTableId"],
                props.get("DestinationCidrBlock"),  # type: ignore[arg-type]
                destination_ipv6_cidr_block=props.get("DestinationIpv6CidrBlock"),
                destination_prefix_list_id=props.get("DestinationPrefixListId"),
            )


def _destination(props: dict[str, Any]) -> str:
    return str(
        props.get("DestinationCidrBlock")
        or props.get("DestinationIpv6CidrBlock")
        or props.get("DestinationPrefixListId")
    )


@register
class SubnetRouteTableAssociation(MotoProvisioner):
    resource_type = "AWS::EC2::SubnetRouteTableAssociation"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        association_id = ec2_backend(ctx).associate_route_table(
            props["RouteTableId"], subnet_id=props["SubnetId"]
        )
        return Provisioned(association_id, {"Id": association_id})

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        if any(
            current.physical_id in t.all_associations_ids for t in backend.route_tables.values()
        ):
            backend.disassociate_route_table(current.physical_id)


@register
class FlowLog(_TaggedOnly):
    resource_type = "AWS::EC2::FlowLog"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        flow_logs, failures = ec2_backend(ctx).create_flow_logs(
            resource_type=props["ResourceType"],
            resource_ids=[props["ResourceId"]],
            traffic_type=props.get("TrafficType", "ALL"),
            deliver_logs_permission_arn=props.get("DeliverLogsPermissionArn"),  # type: ignore[arg-type]
            log_destination_type=props.get("LogDestinationType", "cloud-watch-logs"),
            log_destination=props.get("LogDestination"),  # type: ignore[arg-type]
            log_group_name=props.get("LogGroupName"),  # type: ignore[arg-type]
            log_format=props.get("LogFormat"),  # type: ignore[arg-type]
            max_aggregation_interval=props.get("MaxAggregationInterval"),  # type: ignore[arg-type]
        )
        if failures:
            raise ProvisionError(failures[0][2])
        flow_log_id = flow_logs[0].id
        apply_tags(ctx, flow_log_id, props)
        return Provisioned(flow_log_id, {"Id": flow_log_id})

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        if current.physical_id in backend.flow_logs:
            backend.delete_flow_logs([current.physical_id])
