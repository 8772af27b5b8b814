"""Security groups and their standalone ingress/egress rules.

moto's SecurityGroup model ignores SecurityGroupEgress and rule descriptions and replaces the
group (new id) on every update; it has no SecurityGroupEgress type and never deletes a
standalone SecurityGroupIngress.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models import EC2Backend
from moto.ec2.models.security_groups import SecurityGroup as MotoGroup
from moto.ec2.models.security_groups import SecurityGroupRule

from .base import Provisioned, ProvisionError, ResourceContext, register
from .common import MotoProvisioner, RecreatedOnUpdate, as_int, generated_name
from .ec2 import apply_tags, ec2_backend

# (protocol, from port, to port, IPv4 CIDR, IPv6 CIDR, peer group id, prefix list, description)
RuleKey = tuple[Any, ...]

_PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp"}
_ALL = ("-1", "all")


def _protocol(value: Any) -> str:
    text = str(value).lower()
    return "-1" if text in _ALL else _PROTOCOLS.get(text, text)


def _template_rule(
    backend: EC2Backend, rule: dict[str, Any], egress: bool, vpc_id: str | None
) -> RuleKey:
    """The key of a rule as written in a template (inline or standalone)."""
    protocol = _protocol(rule["IpProtocol"])
    ports = (
        (None, None)
        if protocol == "-1"
        else (as_int(rule.get("FromPort")), as_int(rule.get("ToPort")))
    )
    side = "Destination" if egress else "Source"
    peer = rule.get(f"{side}SecurityGroupId")
    peer_name = rule.get("SourceSecurityGroupName")
    if not peer and peer_name:
        group = backend.get_security_group_by_name_or_id(peer_name, vpc_id)
        if group is None:
            raise ProvisionError(f"The security group '{peer_name}' does not exist")
        peer = group.id
    return (
        protocol,
        *ports,
        rule.get("CidrIp"),
        rule.get("CidrIpv6"),
        peer,
        rule.get(f"{side}PrefixListId"),
        rule.get("Description"),
    )


def _moto_rule(rule: SecurityGroupRule) -> RuleKey:
    description = rule.ip_range.get("Description") or rule.source_group.get("Description")
    return (
        rule.ip_protocol,
        rule.from_port,
        rule.to_port,
        rule.ip_range.get("CidrIp"),
        rule.ip_range.get("CidrIpv6"),
        rule.source_group.get("GroupId"),
        rule.prefix_list_id,
        description,
    )


def _authorize(backend: EC2Backend, group: MotoGroup, key: RuleKey, egress: bool) -> str:
    """Add one rule; return its id (sgr-…)."""
    protocol, from_port, to_port, cidr, cidr6, peer, prefix_list, description = key
    extra = {"Description": description} if description else {}
    ip_ranges = [{"CidrIp": cidr, **extra}] if cidr else []
    ip_ranges += [{"CidrIpv6": cidr6, **extra}] if cidr6 else []
    authorize = (
        backend.authorize_security_group_egress
        if egress
        else backend.authorize_security_group_ingress
    )
    added, _ = authorize(
        group.id,
        protocol,
        from_port,
        to_port,
        ip_ranges,
        source_groups=[{"GroupId": peer, **extra}] if peer else [],
        prefix_list_ids=[{"PrefixListId": prefix_list}] if prefix_list else [],
        vpc_id=group.vpc_id,
    )
    return str(added[0].id)


def _revoke(backend: EC2Backend, group: MotoGroup, rule_ids: list[str], egress: bool) -> None:
    revoke = (
        backend.revoke_security_group_egress if egress else backend.revoke_security_group_ingress
    )
    # With rule ids given, moto ignores the protocol and port arguments.
    revoke(group.id, "-1", "", "", [], security_rule_ids=rule_ids, vpc_id=group.vpc_id)


@register
class SecurityGroup(MotoProvisioner):
    """Ref is the group id when VpcId is given (else its name, as for EC2-Classic groups)."""

    resource_type = "AWS::EC2::SecurityGroup"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = ec2_backend(ctx)
        group = backend.create_security_group(
            props.get("GroupName") or generated_name(ctx, 255),
            props["GroupDescription"],
            vpc_id=props.get("VpcId"),
        )
        try:
            self._sync_rules(backend, group, None, props)
            apply_tags(ctx, group.id, props)
        except Exception:
            backend.delete_security_group(group_id=group.id)
            raise
        physical_id = group.id if props.get("VpcId") else group.name
        return Provisioned(physical_id, {"GroupId": group.id, "VpcId": group.vpc_id})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        backend = ec2_backend(ctx)
        group = self._group(backend, current)
        if group is None:
            raise ProvisionError(f"The security group '{current.physical_id}' does not exist")
        self._sync_rules(backend, group, old_props, new_props)
        apply_tags(ctx, group.id, new_props)
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        group = self._group(backend, current)
        if group is not None:
            backend.delete_security_group(group_id=group.id)

    @staticmethod
    def _group(backend: EC2Backend, current: Provisioned) -> MotoGroup | None:
        return backend.get_security_group_from_id(str(current.get_att("GroupId")))

    def _sync_rules(
        self,
        backend: EC2Backend,
        group: MotoGroup,
        old_props: dict[str, Any] | None,
        new_props: dict[str, Any],
    ) -> None:
        """Make the rules this template owns match `new_props`, leaving others' rules alone.

        Rules added by standalone SecurityGroupIngress/Egress resources are not in either
        property set, so they survive an update, as they do in CloudFormation.
        """
        for egress in (False, True):
            before = self._wanted(backend, group, old_props or {}, egress)
            after = self._wanted(backend, group, new_props, egress)
            rules = group.egress_rules if egress else group.ingress_rules
            present = {_moto_rule(rule): rule.id for rule in rules}
            stale = [present[key] for key in before - after if key in present]
            if stale:
                _revoke(backend, group, stale, egress)
            for key in sorted(after - before - present.keys(), key=repr):
                _authorize(backend, group, key, egress)

    @staticmethod
    def _wanted(
        backend: EC2Backend, group: MotoGroup, props: dict[str, Any], egress: bool
    ) -> set[RuleKey]:
        name = "SecurityGroupEgress" if egress else "SecurityGroupIngress"
        if egress and name not in props:
            # AWS's default egress rule, present while the template names no egress rules.
            vpc = backend.vpcs.get(group.vpc_id or "")
            defaults: set[RuleKey] = {("-1", None, None, "0.0.0.0/0", None, None, None, None)}
            if vpc is not None and vpc.get_cidr_block_association_set(ipv6=True):
                defaults.add(("-1", None, None, None, "::/0", None, None, None))
            return defaults
        return {_template_rule(backend, rule, egress, group.vpc_id) for rule in props.get(name, [])}


class _StandaloneRule(RecreatedOnUpdate):
    """One rule added to an existing group; Ref is the rule id (sgr-…).

    Only Description can change without replacement; moto cannot edit a rule's description
    in place, so an update re-adds the rule (its id changes).
    """

    egress = False

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = ec2_backend(ctx)
        group = self._group(backend, props)
        if group is None:
            name = props.get("GroupId") or props.get("GroupName")
            raise ProvisionError(f"The security group '{name}' does not exist")
        key = _template_rule(backend, props, self.egress, group.vpc_id)
        rule_id = _authorize(backend, group, key, self.egress)
        return Provisioned(rule_id, {"Id": rule_id})

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = ec2_backend(ctx)
        group = self._group(backend, props)
        if group is None:
            return
        rules = group.egress_rules if self.egress else group.ingress_rules
        if any(rule.id == current.physical_id for rule in rules):
            _revoke(backend, group, [current.physical_id], self.egress)

    @staticmethod
    def _group(backend: EC2Backend, props: dict[str, Any]) -> MotoGroup | None:
        return backend.get_security_group_by_name_or_id(props.get("GroupId") or props["GroupName"])


@register
class SecurityGroupIngress(_StandaloneRule):
    resource_type = "AWS::EC2::SecurityGroupIngress"


@register
class SecurityGroupEgress(_StandaloneRule):
    resource_type = "AWS::EC2::SecurityGroupEgress"
    egress = True
