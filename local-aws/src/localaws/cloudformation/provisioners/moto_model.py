"""A provisioner for any resource type moto models, for the types no module here covers.

It drives a moto `CloudFormationModel` the way moto's own stack code does: create through
`create_from_cloudformation_json`, update through `update_from_cloudformation_json` (where
moto has none, CloudFormation's only other choice, replacement), delete through the model's
`delete()` or `delete_from_cloudformation_json`, and GetAtt through `get_cfn_attribute`.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.cloudformation.parsing import generate_resource_name, get_model_map
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import ServiceException
from werkzeug.exceptions import HTTPException

from localaws.cloudformation import schema

from .base import NeedsReplacement, Provisioned, Provisioner, ResourceContext
from .common import resource_tags, tag_list

# Error codes meaning "it is not there", in moto's spellings across services.
_GONE = ("NotFound", "NoSuch", "DoesNotExist", "NonExistent")


@dataclass
class ModelBacked(Provisioned):
    """A resource held by a moto model; an attribute the model lacks is a KeyError."""

    def get_att(self, name: str) -> Any:
        try:
            return super().get_att(name)
        except (UnformattedGetAttTemplateException, NotImplementedError) as exc:
            raise KeyError(name) from exc


def _implemented(method: Any) -> bool:
    return not getattr(method, "__isabstractmethod__", False)


def _is_gone(exc: Exception) -> bool:
    code = str(getattr(exc, "code", "")) + str(getattr(exc, "error_type", ""))
    return any(marker in code for marker in _GONE)


class MotoModelProvisioner(Provisioner):
    """Adapts one moto `CloudFormationModel` class to the provisioner contract."""

    def __init__(self, resource_type: str, model: type[CloudFormationModel]) -> None:
        self.resource_type = resource_type  # type: ignore[misc]  # per instance, not per class
        self.model = model

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        name_property = self.model.cloudformation_name_type()
        given = props.get(name_property) if name_property else None
        name = str(
            given or generate_resource_name(self.resource_type, ctx.stack_name, ctx.logical_id)
        )
        resource = self.model.create_from_cloudformation_json(
            name,
            self._json(ctx, props),
            ctx.account_id,
            ctx.region,
            LogicalId=ctx.logical_id,
            StackId=ctx.stack_id,
            ResourceType=self.resource_type,
        )
        return self._provisioned(resource, name)

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        if current.model is None or not _implemented(self.model.update_from_cloudformation_json):
            raise NeedsReplacement
        name_property = self.model.cloudformation_name_type()
        # Keep the name the resource has unless the template names it.
        given = new_props.get(name_property) if name_property else None
        name = str(given or getattr(current.model, "name", current.physical_id))
        resource = self.model.update_from_cloudformation_json(
            original_resource=current.model,
            new_resource_name=name,
            cloudformation_json=self._json(ctx, new_props),
            account_id=ctx.account_id,
            region_name=ctx.region,
        )
        return self._provisioned(resource, name)

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        try:
            if current.model is not None and callable(getattr(current.model, "delete", None)):
                current.model.delete(ctx.account_id, ctx.region)
            elif _implemented(self.model.delete_from_cloudformation_json):
                self.model.delete_from_cloudformation_json(
                    current.physical_id, self._json(ctx, props), ctx.account_id, ctx.region
                )
        except (ServiceException, HTTPException) as exc:
            if not _is_gone(exc):
                raise

    def _json(self, ctx: ResourceContext, props: dict[str, Any]) -> dict[str, Any]:
        """The resource as moto's models read it; a copy, as some models change it."""
        properties = copy.deepcopy(props)
        if schema.is_taggable(self.resource_type) and isinstance(properties.get("Tags", []), list):
            properties["Tags"] = tag_list(resource_tags(ctx, properties))
        return {"Type": self.resource_type, "Properties": properties}

    @staticmethod
    def _provisioned(resource: Any, name: str) -> Provisioned:
        physical_id = getattr(resource, "physical_resource_id", None) or name
        return ModelBacked(str(physical_id), {}, model=resource)


@functools.cache
def adapter_for(resource_type: str) -> MotoModelProvisioner | None:
    model = get_model_map().get(resource_type)
    return MotoModelProvisioner(resource_type, model) if model is not None else None
