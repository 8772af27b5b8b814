"""DeletePolicy as AWS documents it (IAM API Reference, DeletePolicy): "Before you can delete a
managed policy, you must first detach the policy from all users, groups, and roles that it is
attached to. In addition, you must delete all the policy's versions." Either left answers
DeleteConflict (HTTP 409) with IAM's own message.
"""

from __future__ import annotations

from typing import Any

from moto.iam.exceptions import DeleteConflictException
from moto.iam.models import IAMBackend

ATTACHED = "Cannot delete a policy attached to entities."
VERSIONS = (
    "This policy has more than one version. Before you delete a policy, you must delete the "
    "policy's versions. The default version is deleted with the policy."
)

_moto_delete_policy = IAMBackend.delete_policy


def _delete_policy(self: IAMBackend, policy_arn: str) -> None:
    policy: Any = self.get_policy(policy_arn)  # NoSuchEntity first, as AWS checks
    if policy.attachment_count > 0:
        raise DeleteConflictException(ATTACHED)
    if len(policy.versions) > 1:
        raise DeleteConflictException(VERSIONS)
    _moto_delete_policy(self, policy_arn)


def install() -> None:
    """Make every IAM backend refuse to delete an attached or multi-version managed policy."""
    IAMBackend.delete_policy = _delete_policy  # type: ignore[method-assign]
