"""Secrets Manager secrets (moto has no CloudFormation model for them at all)."""

from __future__ import annotations

import json
import uuid
from functools import partial
from typing import Any

from moto.secretsmanager.models import SecretsManagerBackend, secretsmanager_backends

from .base import Provisioned, ProvisionError, ResourceContext, register
from .common import (
    MotoProvisioner,
    as_bool,
    as_int,
    generated_name,
    resource_tags,
    sync_tags,
    tag_list,
)


def secrets_backend(ctx: ResourceContext) -> SecretsManagerBackend:
    return secretsmanager_backends[ctx.account_id][ctx.region]


def _secret_string(backend: SecretsManagerBackend, props: dict[str, Any]) -> str | None:
    """The value to store: SecretString, or one made from GenerateSecretString, or none."""
    spec = props.get("GenerateSecretString")
    if spec is None:
        return props.get("SecretString")
    if "SecretString" in props:
        raise ProvisionError("You can't specify both SecretString and GenerateSecretString")
    password = json.loads(
        backend.get_random_password(
            password_length=as_int(spec.get("PasswordLength")) or 32,
            exclude_characters=spec.get("ExcludeCharacters", ""),
            exclude_numbers=as_bool(spec.get("ExcludeNumbers")),
            exclude_punctuation=as_bool(spec.get("ExcludePunctuation")),
            exclude_uppercase=as_bool(spec.get("ExcludeUppercase")),
            exclude_lowercase=as_bool(spec.get("ExcludeLowercase")),
            include_space=as_bool(spec.get("IncludeSpace")),
            require_each_included_type=as_bool(spec.get("RequireEachIncludedType"), True),
        )
    )["RandomPassword"]
    template, key = spec.get("SecretStringTemplate"), spec.get("GenerateStringKey")
    if bool(template) != bool(key):
        raise ProvisionError(
            "GenerateStringKey and SecretStringTemplate must be specified together"
        )
    if not template:
        return str(password)
    document = json.loads(template)
    if not isinstance(document, dict):
        raise ProvisionError("SecretStringTemplate must be a JSON object")
    return json.dumps({**document, key: password})


@register
class Secret(MotoProvisioner):
    """Ref and GetAtt Id are the secret's ARN.

    Delete removes the secret at once, without a recovery window: CloudFormation deletes
    secrets with ForceDeleteWithoutRecovery, so a re-created stack can reuse the name.
    """

    resource_type = "AWS::SecretsManager::Secret"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = secrets_backend(ctx)
        # CloudFormation names secrets `<logical id>-<12 random characters>`.
        name = props.get("Name") or generated_name(ctx, 512, mixed_case=True, with_stack=False)
        existing = backend.secrets.get(name)
        if existing is not None and existing.is_deleted():
            raise ProvisionError(
                "You can't create this secret because a secret with this name is already "
                "scheduled for deletion."
            )
        backend.create_secret(
            name=name,
            secret_string=_secret_string(backend, props),
            secret_binary=None,
            description=props.get("Description"),
            tags=tag_list(resource_tags(ctx, props)),
            kms_key_id=props.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        arn = backend.secrets[name].arn
        return Provisioned(arn, {"Id": arn})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        backend = secrets_backend(ctx)
        arn = current.physical_id
        value_changed = any(
            old_props.get(key) != new_props.get(key)
            for key in ("SecretString", "GenerateSecretString")
        )
        backend.update_secret(
            arn,
            # A new version only when the value's definition changed, as in CloudFormation.
            secret_string=_secret_string(backend, new_props) if value_changed else None,
            # The SDK always sends a fresh token; moto refuses an update without one.
            client_request_token=str(uuid.uuid4()),
            kms_key_id=new_props.get("KmsKeyId"),
            description=new_props.get("Description"),
        )
        sync_tags(
            resource_tags(ctx, new_props),
            [t["Key"] for t in backend.secrets[arn].tags or []],
            partial(backend.untag_resource, arn),
            partial(backend.tag_resource, arn),
        )
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = secrets_backend(ctx)
        if current.physical_id in backend.secrets:
            backend.delete_secret(
                current.physical_id,
                recovery_window_in_days=None,
                force_delete_without_recovery=True,
            )
