"""EC2 instances, Elastic IPs and their associations, key pairs.

moto's Instance model ignores SecurityGroupIds, MetadataOptions and
PropagateTagsToVolumeOnCreation, cannot update in place and deletes by logical-id tag; its EIP
model is never deleted; it has no EIPAssociation or KeyPair type at all.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models import EC2Backend
from moto.ec2.models.instances import Instance as MotoInstance
from moto.ec2.utils import parse_user_data
from moto.ssm.models import ssm_backends

from .base import NeedsReplacement, Provisioned, ProvisionError, ResourceContext, register
from .common import MotoProvisioner, as_bool, as_int, resource_tags
from .ec2 import apply_tags, ec2_backend

# Instance properties `Instance.update` changes in place; any other change means replacement.
_IN_PLACE = {
    "InstanceType",
    "UserData",
    "SecurityGroupIds",
    "MetadataOptions",
    "IamInstanceProfile",
    "DisableApiTermination",
    "Monitoring",
    "Tags",
}


def _instance(backend: EC2Backend, instance_id: str) -> MotoInstance | None:
    return next((i for i in backend.all_instances() if i.id == instance_id), None)


def _block_devices(backend: EC2Backend, props: dict[str, Any]) -> list[dict[str, Any]]:
    """BlockDeviceMappings as moto's run_instances takes them, root volume always included.

    AWS keeps the AMI's root volume when the template maps other devices only; moto would
    create no root volume at all once any mapping is given.
    """
    images = backend.describe_images(filters={"image-id": props["ImageId"]})
    root = images[0].root_device_name if images else "/dev/sda1"
    mappings = []
    for mapping in props.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs", {})
        mappings.append(
            {
                "DeviceName": mapping["DeviceName"],
                "VirtualName": mapping.get("VirtualName"),
                "NoDevice": mapping.get("NoDevice"),
                "Ebs": {
                    "VolumeSize": as_int(ebs.get("VolumeSize")),
                    "VolumeType": ebs.get("VolumeType", "gp2"),
                    "Encrypted": as_bool(ebs.get("Encrypted")),
                    "DeleteOnTermination": as_bool(ebs.get("DeleteOnTermination"), True),
                    "KmsKeyId": ebs.get("KmsKeyId"),
                    "SnapshotId": ebs.get("SnapshotId"),
                    "Iops": as_int(ebs.get("Iops")),
                },
            }
        )
    if mappings and root not in {m["DeviceName"] for m in mappings}:
        mappings.insert(
            0, {"DeviceName": root, "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}}
        )
    return mappings


def _tag_volumes(backend: EC2Backend, instance: MotoInstance, tags: dict[str, str]) -> None:
    """Give the volumes launched with the instance its tags, the aws:* ones excepted (AWS
    reserves those to the resources CloudFormation itself creates)."""
    volume_ids = [device.volume_id for _, device in instance.get_block_device_mapping]
    own = {k: v for k, v in tags.items() if not k.startswith("aws:")}
    if volume_ids and own:
        backend.create_tags(volume_ids, own)


def _metadata_options(props: dict[str, Any]) -> dict[str, Any]:
    options = dict(props.get("MetadataOptions") or {})
    if "HttpPutResponseHopLimit" in options:
        options["HttpPutResponseHopLimit"] = as_int(options["HttpPutResponseHopLimit"])
    return options


@register
class Instance(MotoProvisioner):
    resource_type = "AWS::EC2::Instance"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = ec2_backend(ctx)
        key_name = props.get("KeyName")
        if key_name and key_name not in backend.key_pairs:
            raise ProvisionError(f"The key pair '{key_name}' does not exist")
        extra: dict[str, Any] = {}
        mappings = _block_devices(backend, props)
        if mappings:
            extra["block_device_mappings"] = mappings
        reservation = backend.run_instances(
            props["ImageId"],
            1,
            parse_user_data(props.get("UserData")),
            props.get("SecurityGroups", []),
            instance_type=props.get("InstanceType", "m1.small"),
            is_instance_type_default="InstanceType" not in props,
            region_name=ctx.region,
            placement=props.get("AvailabilityZone"),
            subnet_id=props.get("SubnetId"),
            key_name=key_name,
            security_group_ids=props.get("SecurityGroupIds", []),
            private_ip=props.get("PrivateIpAddress"),
            associate_public_ip=None,  # the subnet's MapPublicIpOnLaunch decides, as in AWS
            metadata_options=_metadata_options(props),
            disable_api_termination=as_bool(props.get("DisableApiTermination")),
            ebs_optimized=as_bool(props.get("EbsOptimized")),
            monitoring_state="enabled" if as_bool(props.get("Monitoring")) else "disabled",
            **extra,
        )
        instance = reservation.instances[0]
        try:
            if props.get("IamInstanceProfile"):
                backend.associate_iam_instance_profile(
                    instance.id, iam_instance_profile_name=props["IamInstanceProfile"]
                )
            apply_tags(ctx, instance.id, props)
            if as_bool(props.get("PropagateTagsToVolumeOnCreation")):
                _tag_volumes(backend, instance, resource_tags(ctx, props))
        except Exception:
            backend.terminate_instances([instance.id])
            raise
        return Provisioned(
            instance.id,
            {
                "InstanceId": instance.id,
                "AvailabilityZone": instance.availability_zone,
                "PrivateIp": instance.private_ip,
                "PrivateDnsName": instance.private_dns_name,
                "VpcId": instance.vpc_id or "",
            },
            model=_PublicAddress(instance),
        )

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        changed = {
            k for k in old_props.keys() | new_props.keys() if old_props.get(k) != new_props.get(k)
        }
        if changed - _IN_PLACE:
            raise NeedsReplacement
        backend = ec2_backend(ctx)
        instance_id = current.physical_id
        if "InstanceType" in changed:
            backend.modify_instance_attribute(
                instance_id, "instance_type", new_props["InstanceType"]
            )
        if "UserData" in changed:
            user_data = parse_user_data(new_props.get("UserData"))
            backend.modify_instance_attribute(instance_id, "user_data", user_data)
        if "SecurityGroupIds" in changed:
            backend.modify_instance_security_groups(instance_id, new_props["SecurityGroupIds"])
        if "MetadataOptions" in changed:
            options = _metadata_options(new_props)
            backend.modify_instance_metadata_options(
                instance_id,
                http_tokens=options.get("HttpTokens", "optional"),
                hop_limit=options.get("HttpPutResponseHopLimit", 1),
                http_endpoint=options.get("HttpEndpoint", "enabled"),
                http_protocol=options.get("HttpProtocolIpv6", "disabled"),
                metadata_tags=options.get("InstanceMetadataTags", "disabled"),
            )
        if "IamInstanceProfile" in changed:
            association = backend.iam_instance_profile_associations.get(instance_id)
            if association is not None:
                backend.disassociate_iam_instance_profile(association.association_id)
            if new_props.get("IamInstanceProfile"):
                backend.associate_iam_instance_profile(
                    instance_id, iam_instance_profile_name=new_props["IamInstanceProfile"]
                )
        if "DisableApiTermination" in changed:
            value = as_bool(new_props.get("DisableApiTermination"))
            backend.modify_instance_attribute(instance_id, "disable_api_termination", value)
        if "Monitoring" in changed:
            state = "enabled" if as_bool(new_props.get("Monitoring")) else "disabled"
            backend.modify_instance_attribute(instance_id, "monitoring_state", state)
        apply_tags(ctx, instance_id, new_props)
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        instance = _instance(backend, current.physical_id)
        if instance is not None and instance.state != "terminated":
            backend.terminate_instances([instance.id])


class _PublicAddress:
    """The instance's public address attributes, read when a template asks for them.

    AWS::EC2::Instance's PublicIp and PublicDnsName are the instance's public address, and an
    Elastic IP associated with the instance replaces its public IPv4 address (EC2 User Guide,
    "Elastic IP addresses"): after an AWS::EC2::EIPAssociation they name the Elastic IP.
    """

    def __init__(self, instance: MotoInstance) -> None:
        self.instance = instance

    def get_cfn_attribute(self, name: str) -> str:
        if name == "PublicIp":
            return self.instance.public_ip or ""
        if name == "PublicDnsName":
            return self.instance.public_dns_name or ""
        raise KeyError(name)


@register
class EIP(MotoProvisioner):
    """An Elastic IP; Ref is its public address, GetAtt AllocationId its allocation id."""

    resource_type = "AWS::EC2::EIP"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = ec2_backend(ctx)
        address = backend.allocate_address("vpc", address=props.get("Address"))
        allocation_id = str(address.allocation_id)  # always set in the vpc domain
        try:
            apply_tags(ctx, allocation_id, props)
            if props.get("InstanceId"):
                instance = self._instance(backend, props["InstanceId"])
                backend.associate_address(instance=instance, allocation_id=allocation_id)
        except Exception:
            backend.release_address(allocation_id=allocation_id)
            raise
        return Provisioned(
            address.public_ip, {"AllocationId": allocation_id, "PublicIp": address.public_ip}
        )

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        backend = ec2_backend(ctx)
        allocation_id = str(current.get_att("AllocationId"))
        if old_props.get("InstanceId") != new_props.get("InstanceId"):
            address = backend.address_by_allocation([allocation_id])[0]
            if address.association_id:
                backend.disassociate_address(association_id=address.association_id)
            if new_props.get("InstanceId"):
                instance = self._instance(backend, new_props["InstanceId"])
                backend.associate_address(instance=instance, allocation_id=allocation_id)
        apply_tags(ctx, allocation_id, new_props)
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        allocation_id = current.get_att("AllocationId")
        if any(a.allocation_id == allocation_id for a in backend.addresses):
            backend.release_address(allocation_id=allocation_id)

    @staticmethod
    def _instance(backend: EC2Backend, instance_id: str) -> MotoInstance:
        instance = _instance(backend, instance_id)
        if instance is None:
            raise ProvisionError(f"The instance ID '{instance_id}' does not exist")
        return instance


@register
class EIPAssociation(MotoProvisioner):
    """Binds an Elastic IP to an instance or network interface; Ref is the association id."""

    resource_type = "AWS::EC2::EIPAssociation"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = ec2_backend(ctx)
        instance = eni = None
        if props.get("InstanceId"):
            instance = EIP._instance(backend, props["InstanceId"])
        elif props.get("NetworkInterfaceId"):
            eni = backend.get_network_interface(props["NetworkInterfaceId"])
        else:
            raise ProvisionError("Either InstanceId or NetworkInterfaceId is required")
        if props.get("EIP"):
            [found] = backend.address_by_ip([props["EIP"]])
        elif props.get("AllocationId"):
            [found] = backend.address_by_allocation([props["AllocationId"]])
        else:
            raise ProvisionError("Either AllocationId or EIP is required")
        bound = found.instance or found.eni
        if found.association_id and bound is not None and bound.id != (instance or eni).id:
            # In a VPC an address associated elsewhere moves (AWS documents this for the
            # type): a replaced instance gets its Elastic IP before the old one is deleted.
            backend.disassociate_address(association_id=found.association_id)
        address = backend.associate_address(
            instance=instance,
            eni=eni,
            address=props.get("EIP"),
            allocation_id=props.get("AllocationId"),
        )
        association_id = str(address.association_id)
        return Provisioned(association_id, {"Id": association_id})

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        if any(a.association_id == current.physical_id for a in backend.addresses):
            backend.disassociate_address(association_id=current.physical_id)


@register
class KeyPair(MotoProvisioner):
    """A key pair; like CloudFormation, a created (not imported) key's private half is kept
    in the SecureString parameter /ec2/keypair/<key pair id>."""

    resource_type = "AWS::EC2::KeyPair"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = ec2_backend(ctx)
        name = props["KeyName"]
        tags = resource_tags(ctx, props)
        if props.get("PublicKeyMaterial"):
            key = backend.import_key_pair(name, props["PublicKeyMaterial"].encode(), tags)
        else:
            key = backend.create_key_pair(name, props.get("KeyType", "rsa"), tags)
            ssm_backends[ctx.account_id][ctx.region].put_parameter(
                name=f"/ec2/keypair/{key.id}",
                description=f"Private key of key pair {name}",
                value=key.key_material,
                parameter_type="SecureString",
                allowed_pattern=None,  # type: ignore[arg-type]
                keyid=None,  # type: ignore[arg-type]
                overwrite=False,
                tags=[],
                data_type="text",
                tier=None,
                policies=None,
            )
        return Provisioned(name, {"KeyPairId": key.id, "KeyFingerprint": key.key_fingerprint})

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        ec2_backend(ctx).delete_key_pair(current.physical_id)
        parameter = f"/ec2/keypair/{current.get_att('KeyPairId')}"
        ssm = ssm_backends[ctx.account_id][ctx.region]
        if ssm.get_parameter(parameter) is not None:
            ssm.delete_parameter(parameter)
