"""Systems Manager parameters.

moto's Parameter model fails on CloudFormation's Tags (a map, which it reads as a list),
creates no name when the template gives none, and updates by deleting the parameter (its
version history goes with it).
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

from moto.ssm.exceptions import ParameterNotFound
from moto.ssm.models import SimpleSystemManagerBackend, ssm_backends

from .base import Provisioned, ResourceContext, register
from .common import MotoProvisioner, generated_name, resource_tags, sync_tags


def ssm_backend(ctx: ResourceContext) -> SimpleSystemManagerBackend:
    return ssm_backends[ctx.account_id][ctx.region]


@register
class Parameter(MotoProvisioner):
    """Ref is the parameter name; an update writes a new version, as PutParameter does."""

    resource_type = "AWS::SSM::Parameter"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        # AWS's handler names unnamed parameters `CFN-<logical id>-<random>`, 40 at most.
        name = props.get("Name") or "CFN-" + generated_name(
            ctx, 36, mixed_case=True, with_stack=False
        )
        self._put(ctx, name, props, overwrite=False)
        ssm_backend(ctx).add_tags_to_resource("Parameter", name, resource_tags(ctx, props))
        return Provisioned(name, self._attributes(props))

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        backend = ssm_backend(ctx)
        name = current.physical_id
        self._put(ctx, name, new_props, overwrite=True)
        sync_tags(
            resource_tags(ctx, new_props),
            backend.list_tags_for_resource("Parameter", name),
            partial(backend.remove_tags_from_resource, "Parameter", name),
            partial(backend.add_tags_to_resource, "Parameter", name),
        )
        return Provisioned(name, self._attributes(new_props))

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        with contextlib.suppress(ParameterNotFound):  # already gone
            ssm_backend(ctx).delete_parameter(current.physical_id)

    @staticmethod
    def _put(ctx: ResourceContext, name: str, props: dict[str, Any], overwrite: bool) -> None:
        ssm_backend(ctx).put_parameter(
            name=name,
            description=props.get("Description", ""),
            value=str(props["Value"]),
            parameter_type=props["Type"],
            allowed_pattern=props.get("AllowedPattern"),  # type: ignore[arg-type]
            keyid=None,  # type: ignore[arg-type]
            overwrite=overwrite,
            tags=[],  # applied apart: moto refuses tags together with overwrite
            data_type=props.get("DataType", "text"),
            tier=props.get("Tier"),
            policies=props.get("Policies"),
        )

    @staticmethod
    def _attributes(props: dict[str, Any]) -> dict[str, Any]:
        return {"Type": props["Type"], "Value": str(props["Value"])}
