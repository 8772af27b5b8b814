"""EventBridge rules.

moto's Rule model JSON-encodes EventPattern again when a template gives it as a string (a
form CloudFormation accepts), which breaks the rule; its update deletes and re-creates the
rule and it applies no stack tags.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from moto.events.exceptions import ResourceNotFoundException
from moto.events.models import EventsBackend, events_backends

from .base import Provisioned, ResourceContext, register
from .common import MotoProvisioner, json_text, name_or_generated, resource_tags, sync_tags


def events_backend(ctx: ResourceContext) -> EventsBackend:
    return events_backends[ctx.account_id][ctx.region]


@register
class Rule(MotoProvisioner):
    """Ref is the rule name on the default bus, `<bus>|<name>` on another; GetAtt Arn."""

    resource_type = "AWS::Events::Rule"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        name = name_or_generated(ctx, props, "Name", 64)
        arn = self._put(ctx, name, {}, props)
        bus = props.get("EventBusName", "default")
        physical_id = name if bus == "default" else f"{bus.rsplit('/', 1)[-1]}|{name}"
        return Provisioned(physical_id, {"Arn": arn, "RuleName": name})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        self._put(ctx, current.physical_id.rsplit("|", 1)[-1], old_props, new_props)
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = events_backend(ctx)
        name = current.physical_id.rsplit("|", 1)[-1]
        bus = props.get("EventBusName")
        try:
            rule = backend.describe_rule(name, bus)
        except ResourceNotFoundException:  # the rule, or its whole bus, is gone already
            return
        if rule.targets:
            backend.remove_targets(name, bus, [t["Id"] for t in rule.targets])
        backend.delete_rule(name, bus)

    def _put(
        self, ctx: ResourceContext, name: str, old: dict[str, Any], new: dict[str, Any]
    ) -> str:
        """Create or change the rule and its targets; return its ARN."""
        backend = events_backend(ctx)
        bus = new.get("EventBusName")
        rule = backend.put_rule(
            name,
            description=new.get("Description"),
            event_bus_arn=bus,
            event_pattern=json_text(new["EventPattern"]) if "EventPattern" in new else None,
            role_arn=new.get("RoleArn"),
            scheduled_expression=new.get("ScheduleExpression"),
            state=new.get("State", "ENABLED"),
        )
        sync_tags(
            resource_tags(ctx, new),
            [t["Key"] for t in backend.list_tags_for_resource(rule.arn)["Tags"]],
            partial(backend.untag_resource, rule.arn),
            partial(backend.tag_resource, rule.arn),
        )
        targets = new.get("Targets", [])
        dropped = {t["Id"] for t in old.get("Targets", [])} - {t["Id"] for t in targets}
        if dropped:
            backend.remove_targets(name, bus, sorted(dropped))
        if targets:
            backend.put_targets(name, bus, targets)
        return str(rule.arn)
