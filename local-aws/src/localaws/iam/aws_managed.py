"""AWS's managed policies (AWSServiceCatalogEndUserFullAccess, AWSLambdaBasicExecutionRole...)
attachable and readable in every account, as in AWS.

moto loads them only when configured to (MOTO_IAM_LOAD_MANAGED_POLICIES), which costs every
account's first IAM call about a thousand policies; without it AttachUserPolicy of an AWS
managed policy answers NoSuchEntity. Here each one is brought in on first use, from the copy of
AWS's policies moto ships.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, IAMBackend


@functools.cache
def _published() -> dict[str, Any]:
    return dict(json.loads(aws_managed_policies_data))


def bring_in(backend: IAMBackend, arn: str) -> bool:
    """Make AWS's managed policy `arn` known to `backend` if it is one; whether it is known."""
    if arn in backend.managed_policies:
        return True
    name = arn.rsplit("/", 1)[-1]
    data = _published().get(name)
    if data is None or arn != f"arn:{backend.partition}:iam::aws:policy{data['Path']}{name}":
        return False
    policy = AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, data)
    backend.managed_policies[policy.arn] = policy
    return True


_MOTO = {
    name: getattr(IAMBackend, name)
    for name in ("attach_user_policy", "attach_role_policy", "attach_group_policy", "get_policy")
}


def _bringing_in(name: str) -> Any:
    method = _MOTO[name]

    def wrapped(self: IAMBackend, policy_arn: str, *args: Any, **kwargs: Any) -> Any:
        bring_in(self, policy_arn)
        return method(self, policy_arn, *args, **kwargs)

    return functools.wraps(method)(wrapped)


def install() -> None:
    """Attach*Policy and GetPolicy find AWS's managed policies (idempotent)."""
    for name in _MOTO:
        setattr(IAMBackend, name, _bringing_in(name))
