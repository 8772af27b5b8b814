"""`AWS::CloudFormation::Stack`: nested stacks, run inside their parent's operation."""

from __future__ import annotations

from typing import Any

from moto.cloudformation.models import cloudformation_backends

from localaws.cloudformation.errors import InsufficientCapabilities
from localaws.s3urls import TemplateUrlError, read, read_as

from .base import Provisioned, Provisioner, ProvisionError, ResourceContext, register


@register
class NestedStack(Provisioner):
    resource_type = "AWS::CloudFormation::Stack"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        body = _template(ctx, props)
        try:
            child = _backend(ctx).create_nested(
                parent_id=ctx.stack_id,
                logical_id=ctx.logical_id,
                body=body,
                parameters=_parameters(props),
                tags=_tags(props),
                notification_arns=list(props.get("NotificationARNs", [])),
                timeout_in_minutes=props.get("TimeoutInMinutes"),
            )
        except InsufficientCapabilities as exc:
            # The root's capabilities hold for its nested stacks, checked as each is made:
            # the nested stack resource fails with CreateStack's message.
            raise ProvisionError(exc.message) from exc
        result = _provisioned(child)
        if child.status != "CREATE_COMPLETE":
            raise ProvisionError(
                f"Embedded stack {child.stack_id} was not successfully created: "
                f"{child_failure(child)}",
                physical_id=child.stack_id,
            )
        return result

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        try:
            child, ok = _backend(ctx).update_nested(
                current.physical_id,
                body=_template(ctx, new_props),
                parameters=_parameters(new_props),
                tags=_tags(new_props),
            )
        except InsufficientCapabilities as exc:
            raise ProvisionError(exc.message) from exc
        if not ok:
            raise ProvisionError(
                f"Embedded stack {child.stack_id} was not successfully updated. Currently in "
                f"{child.status} with reason: {child_failure(child)}"
            )
        return _provisioned(child)

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        child = _backend(ctx).delete_nested(
            current.physical_id, create_rollback=ctx.create_rollback
        )
        if child is not None and child.status != "DELETE_COMPLETE":
            raise ProvisionError(
                f"Embedded stack {child.stack_id} was not successfully deleted: "
                f"{child_failure(child)}"
            )


def _backend(ctx: ResourceContext) -> Any:
    return cloudformation_backends[ctx.account_id][ctx.region]


def _template(ctx: ResourceContext, props: dict[str, Any]) -> str:
    url = props.get("TemplateURL")
    if not isinstance(url, str):
        raise ProvisionError("TemplateURL is required for AWS::CloudFormation::Stack")
    principal = ctx.principal_arn
    try:
        if principal is None:
            # The administrator started the operation: nothing to authorize.
            return read(url, ctx.account_id, ctx.partition)
        # CloudFormation reads it as the stack's role (a Service Catalog launch role: from the
        # product's release location, not from Service Catalog's copy), else as the caller.
        return read_as(
            url,
            principal,
            purpose=f"template of nested stack {ctx.logical_id} in {ctx.stack_name}",
            account_id=ctx.account_id,
            partition=ctx.partition,
        )
    except TemplateUrlError as exc:
        raise ProvisionError(str(exc)) from exc


def _parameters(props: dict[str, Any]) -> dict[str, str]:
    def text(value: Any) -> str:
        if isinstance(value, list):
            return ",".join(text(v) for v in value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return {key: text(value) for key, value in (props.get("Parameters") or {}).items()}


def _tags(props: dict[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in props.get("Tags") or []}


def _provisioned(child: Any) -> Provisioned:
    attributes = {f"Outputs.{o['OutputKey']}": o["OutputValue"] for o in child.outputs}
    return Provisioned(child.stack_id, attributes)


def child_failure(child: Any) -> str:
    """The first failure reason inside a nested stack, as CloudFormation reports it upward."""
    for event in child.events:
        if event.status.endswith("_FAILED") and event.logical_id != child.name:
            return f"The following resource(s) failed: [{event.logical_id}] {event.reason or ''}"
    return str(child.status_reason or child.status)
