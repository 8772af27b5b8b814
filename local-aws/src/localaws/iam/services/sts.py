"""STS: AssumeRole on the role, judged with its trust policy as the resource policy.

GetCallerIdentity needs no permission, even with an explicit deny (STS API reference); STS's
other operations are not authorized here yet.
"""

from __future__ import annotations

from typing import Any

from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

from localaws.iam.engine import Policy
from localaws.iam.targets import Context, Service, Target, query_denial


def _targets(response: Any, action: str) -> list[Target] | None:
    if action != "AssumeRole":
        return None
    role_arn = response._get_param("RoleArn")
    owner = role_arn.split(":")[4] if role_arn and role_arn.count(":") >= 5 else ""
    if not owner:
        return [Target("*", response.current_account)]
    context: Context = {}
    for key, parameter in (
        ("sts:ExternalId", "ExternalId"),
        ("sts:RoleSessionName", "RoleSessionName"),
    ):
        value = response._get_param(parameter)
        if value:
            context[key] = value
    try:
        role = iam_backends[owner][get_partition(response.region)].get_role_by_arn(role_arn)
    except NotFoundException:
        return [Target(role_arn, owner, context=context)]
    trust = Policy("trust policy", role.assume_role_policy_document)
    return [Target(role_arn, owner, trust, context)]


SERVICE = Service(_targets, query_denial)
