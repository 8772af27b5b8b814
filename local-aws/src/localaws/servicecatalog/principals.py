"""Who is calling, and which portfolio principal associations let them in.

moto identifies a request's caller only by its access key: keys made with iam.create_access_key
belong to their IAM user, keys from sts.assume_role to the assumed role, and every other key (the
"testing" key of the test suites) to the account itself. We treat that last case as the account
root, which is not subject to principal associations and so sees every portfolio of its account:
it keeps scripted admin flows working, while IAM users and roles get AWS's end-user rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

from .exceptions import InvalidParametersException

# IAM names and paths use [\w+=,.@-] and "/"; patterns add the wildcards * and ?.
_IAM_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):"
    r"(?P<kind>user|role|group)/(?P<name>[\w+=,.@/-]+)"
)
_IAM_PATTERN_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam:::(?P<kind>user|role|group)/(?P<name>[\w+=,.@/*?-]+)"
)


@dataclass(frozen=True)
class Caller:
    """The principal behind a request.

    `identity_arn` is the IAM identity (user, role or the account root); `session_arn` what
    STS GetCallerIdentity would say (the assumed-role session for roles).
    """

    account_id: str
    identity_arn: str
    session_arn: str
    is_root: bool = False
    group_arns: tuple[str, ...] = field(default=())

    @property
    def credentials_arn(self) -> str | None:
        """Whose credentials CloudFormation uses for a launch without a launch role: this
        caller's session; None for the account root, which is not checked."""
        return None if self.is_root else self.session_arn

    def may_use(self, principal_arn: str, principal_type: str) -> bool:
        """Whether a portfolio association of `principal_arn` covers this caller."""
        if principal_type == "IAM_PATTERN":
            pattern = _IAM_PATTERN_ARN.fullmatch(principal_arn)
            own = _IAM_ARN.fullmatch(self.identity_arn)
            return bool(
                pattern
                and own
                and pattern["kind"] == own["kind"]
                and fnmatchcase(own["name"], pattern["name"])
            )
        return principal_arn in (self.identity_arn, *self.group_arns)


def resolve_caller(account_id: str, region: str, access_key_id: str) -> Caller:
    """The caller that moto's IAM and STS know for `access_key_id`, else the account root."""
    partition = get_partition(region)
    assumed = sts_backends[account_id][partition].get_assumed_role_from_access_key(access_key_id)
    if assumed is not None:
        return Caller(account_id, assumed.role_arn, assumed.arn)
    iam = iam_backends[account_id][partition]
    user = iam.get_user_from_access_key_id(access_key_id)
    if user is not None:
        groups = tuple(group.arn for group in iam.get_groups_for_user(user.name))
        return Caller(account_id, user.arn, user.arn, group_arns=groups)
    root = f"arn:{partition}:iam::{account_id}:root"
    return Caller(account_id, root, root, is_root=True)


def check_principal(principal_arn: str, principal_type: str) -> None:
    """Refuse an association AWS would refuse: a malformed ARN or a mismatched type."""
    if principal_type == "IAM":
        if not _IAM_ARN.fullmatch(principal_arn):
            raise InvalidParametersException(
                f"PrincipalARN {principal_arn!r} is not an IAM user, role or group ARN "
                "(arn:aws:iam::<account>:role/<name>); for wildcards use PrincipalType IAM_PATTERN"
            )
    elif principal_type == "IAM_PATTERN":
        if not _IAM_PATTERN_ARN.fullmatch(principal_arn):
            raise InvalidParametersException(
                f"PrincipalARN {principal_arn!r} is not an IAM_PATTERN ARN: leave the account "
                "out, e.g. arn:aws:iam:::role/Admin*"
            )
    else:
        raise InvalidParametersException(
            f"PrincipalType {principal_type!r} is not valid: use IAM or IAM_PATTERN"
        )


def role_arn_for_name(account_id: str, region: str, role_name: str) -> str | None:
    """The ARN (path included) of the role called `role_name`, if it exists."""
    iam = iam_backends[account_id][get_partition(region)]
    for role in iam.get_roles():
        if role.name == role_name:
            arn: str = role.arn
            return arn
    return None


def role_exists(role_arn: str) -> bool:
    match = _IAM_ARN.fullmatch(role_arn)
    if not match or match["kind"] != "role":
        return False
    iam = iam_backends[match["account"]][match["partition"]]
    return any(role.arn == role_arn for role in iam.get_roles())
