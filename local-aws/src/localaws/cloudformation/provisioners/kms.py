"""KMS keys (aliases are left to moto's own model, which handles them fully).

moto's Key model requires KeyPolicy (optional in CloudFormation), ignores KeyUsage and KeySpec,
cannot update, offers no GetAtt KeyId and deletes the key at once, where CloudFormation
schedules its deletion after PendingWindowInDays.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from moto.kms.models import KmsBackend, kms_backends

from .base import Provisioned, ResourceContext, register
from .common import MotoProvisioner, as_bool, as_int, json_text, resource_tags, sync_tags


def kms_backend(ctx: ResourceContext) -> KmsBackend:
    return kms_backends[ctx.account_id][ctx.region]


@register
class Key(MotoProvisioner):
    """Ref is the key id; GetAtt Arn and KeyId. Policy, description, state, rotation and
    tags change in place."""

    resource_type = "AWS::KMS::Key"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        key = kms_backend(ctx).create_key(
            policy=json_text(props["KeyPolicy"]) if "KeyPolicy" in props else None,
            key_usage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
            key_spec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
            description=props.get("Description", ""),
            tags=None,
            multi_region=as_bool(props.get("MultiRegion")),
        )
        self._configure(ctx, key.id, props)
        return Provisioned(key.id, {"Arn": key.arn, "KeyId": key.id})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        backend = kms_backend(ctx)
        key = backend.describe_key(current.physical_id)
        backend.put_key_policy(
            key.id,
            json_text(new_props["KeyPolicy"])
            if "KeyPolicy" in new_props
            else key.generate_default_policy(),
        )
        backend.update_key_description(key.id, new_props.get("Description", ""))
        self._configure(ctx, key.id, new_props)
        return current

    def _configure(self, ctx: ResourceContext, key_id: str, props: dict[str, Any]) -> None:
        backend = kms_backend(ctx)
        if as_bool(props.get("Enabled"), True):
            backend.enable_key(key_id)
        else:
            backend.disable_key(key_id)
        if as_bool(props.get("EnableKeyRotation")):
            backend.enable_key_rotation(key_id)
        else:
            backend.disable_key_rotation(key_id)
        sync_tags(
            resource_tags(ctx, props),
            [tag["TagKey"] for tag in backend.list_resource_tags(key_id)["Tags"]],
            partial(backend.untag_resource, key_id),
            partial(backend.tag_resource, key_id),
        )

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = kms_backend(ctx)
        key = backend.keys.get(current.physical_id)
        if key is not None and key.key_state != "PendingDeletion":
            days = as_int(props.get("PendingWindowInDays")) or 30
            backend.schedule_key_deletion(key.id, days)
