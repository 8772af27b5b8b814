"""CloudWatch Logs log groups.

moto's LogGroup model drops KmsKeyId and cannot update: a retention change would replace
(and, with a fixed name, fail to re-create) the group.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from moto.logs.models import LogsBackend, logs_backends

from .base import Provisioned, ResourceContext, register
from .common import ConfiguredInPlace, as_int, name_or_generated, resource_tags, sync_tags


def logs_backend(ctx: ResourceContext) -> LogsBackend:
    return logs_backends[ctx.account_id][ctx.region]


@register
class LogGroup(ConfiguredInPlace):
    """Ref is the group name; GetAtt Arn ends in `:*`, as CloudFormation's does."""

    resource_type = "AWS::Logs::LogGroup"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        group = logs_backend(ctx).create_log_group(
            name_or_generated(ctx, props, "LogGroupName", 512),
            resource_tags(ctx, props),
            kmsKeyId=props.get("KmsKeyId"),
        )
        self._configure(ctx, group.name, props)
        return Provisioned(group.name, {"Arn": f"{group.arn}:*"})

    def _configure(self, ctx: ResourceContext, name: str, props: dict[str, Any]) -> None:
        backend = logs_backend(ctx)
        group = backend.groups[name]
        retention = as_int(props.get("RetentionInDays"))
        if retention is None:
            backend.delete_retention_policy(name)
        else:
            backend.put_retention_policy(name, retention)  # type: ignore[arg-type]
        group.kms_key_id = props.get("KmsKeyId")  # AssociateKmsKey is not in moto's backend
        sync_tags(
            resource_tags(ctx, props),
            backend.list_tags_log_group(name),
            partial(backend.untag_log_group, name),
            partial(backend.tag_log_group, name),
        )

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = logs_backend(ctx)
        if current.physical_id in backend.groups:
            backend.delete_log_group(current.physical_id)
