"""Secrets Manager: a secret by its full ARN, with its resource policy and tags."""

from __future__ import annotations

from typing import Any

from moto.secretsmanager.models import secretsmanager_backends
from moto.utilities.utils import get_partition

from localaws.iam.engine import Policy
from localaws.iam.targets import Service, Target, request_tags, tags


def _targets(response: Any, action: str) -> list[Target]:
    account, region = response.current_account, response.region
    partition = get_partition(region)
    if action == "CreateSecret":
        # The ARN the new secret will have: its six-character suffix is chosen at creation.
        name = response._get_param("Name")
        arn = f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"
        return [Target(arn, account, context=request_tags(response._get_param("Tags")))]
    secret_id = response._get_param("SecretId")
    if not secret_id:
        return [Target("*", account)]
    secrets = secretsmanager_backends[account][region].secrets
    if secret_id not in secrets:
        return [
            Target(f"arn:{partition}:secretsmanager:{region}:{account}:secret:{secret_id}", account)
        ]
    secret = secrets[secret_id]
    document = getattr(secret, "policy", None)  # a replica has none of its own
    policy = Policy("secret policy", document) if document else None
    context = tags(secret.tags, "aws:ResourceTag/")
    if action == "TagResource":
        context.update(request_tags(response._get_param("Tags")))
    return [Target(secret.arn, account, policy, context)]


SERVICE = Service(_targets)
