"""Requests the local AWS makes for a principal, kept so that an IAM engine can judge them.

AWS authorizes more than the calls a client signs: when CloudFormation fetches a template from
S3 it does so with the credentials of the stack's role (a Service Catalog launch role, say),
and the read fails with AccessDenied if that role may not read the object. The local AWS makes
such requests by calling its backends directly, so each one is described here as an `Access`
(who, which action, on what, with which request context) and handed to `authorize` first:

- every access is kept in `ACCESSES`, newest last, and served at `/_localaws/accesses`, so a
  test can see who read what;
- the authorizer installed with `set_authorizer` decides, on every access of one operation at
  once (one round trip to an engine); it returns the first denial message in AWS's words, or
  None to allow. None is installed by default: until an IAM engine installs one,
  every access is allowed, as before;
- `judge` asks the authorizer again about recorded accesses, against the policies as they are
  now (served at `POST /_localaws/accesses/judge`): a test can change a role's policy and see
  which of a recorded launch's operations it would deny, without launching again.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: How many accesses `ACCESSES` keeps: enough for a test's launch, bounded for a long demo.
KEPT = 10_000
#: The session name CloudFormation's sessions of a stack role carry in the local AWS (the
#: same name its SSM-typed parameter check reports).
CLOUDFORMATION_SESSION = "AWSCloudFormation"


@dataclass(frozen=True)
class Access:
    """One request made on a principal's behalf, as IAM would evaluate it.

    `principal_arn` is what AWS would see as the signer: an assumed-role session
    (`arn:aws:sts::<account>:assumed-role/<role>/<session>`), a user or the account root.
    `resource_account` owns the resource: when it differs from the principal's account, AWS
    needs both the principal's identity policy and the resource's policy to allow.
    `context` holds the request's condition keys known here (e.g.
    `s3:ExistingObjectTag/<key>`); `purpose` says why, for messages and tests.
    """

    principal_arn: str
    action: str
    resource_arn: str
    resource_account: str
    purpose: str
    context: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)

    @property
    def principal_account(self) -> str:
        return self.principal_arn.split(":")[4]

    def to_api(self) -> dict[str, Any]:
        return {
            "PrincipalArn": self.principal_arn,
            "Action": self.action,
            "Resource": self.resource_arn,
            "ResourceAccount": self.resource_account,
            "Purpose": self.purpose,
            "Context": {k: v if isinstance(v, str) else list(v) for k, v in self.context.items()},
        }

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Access:
        """An access in the API's shape (`to_api`), e.g. one `recorded` returned."""
        try:
            context = data.get("Context") or {}
            return cls(
                str(data["PrincipalArn"]),
                str(data["Action"]),
                str(data["Resource"]),
                str(data["ResourceAccount"]),
                str(data.get("Purpose", "")),
                {k: v if isinstance(v, str) else tuple(v) for k, v in context.items()},
            )
        except (KeyError, AttributeError, TypeError) as error:
            raise ValueError(
                f"an access needs PrincipalArn, Action, Resource and ResourceAccount "
                f"(and a Context object): {error}"
            ) from None


class AccessDenied(Exception):
    """The authorizer refused an access; the message is AWS's, naming principal and action."""


Authorizer = Callable[[Sequence[Access]], str | None]

_lock = threading.Lock()
_authorizer: Authorizer | None = None
ACCESSES: deque[Access] = deque(maxlen=KEPT)


def set_authorizer(authorizer: Authorizer | None) -> None:
    """Judge every later access with `authorizer` (None: allow everything)."""
    global _authorizer
    with _lock:
        _authorizer = authorizer


def judging() -> bool:
    """Whether an authorizer is installed (IAM enforcement is on)."""
    return _authorizer is not None


def authorize(*accesses: Access) -> None:
    """Keep `accesses` (one operation's), then raise AccessDenied if the installed authorizer
    refuses any of them."""
    with _lock:
        ACCESSES.extend(accesses)
        judge = _authorizer
    denial = judge(accesses) if judge is not None and accesses else None
    if denial is not None:
        raise AccessDenied(denial)


class NotJudging(RuntimeError):
    """`judge` was asked while no authorizer is installed (IAM enforcement is off)."""


def judge(operations: Sequence[Sequence[Access]]) -> list[str | None]:
    """The installed authorizer's answer for each operation's accesses (AWS's first denial
    message, or None), against the policies as they are now; nothing is kept."""
    judge_now = _authorizer
    if judge_now is None:
        raise NotJudging("IAM enforcement is off: turn it on to judge accesses")
    # All of them at once first: one round trip to an engine, whose cache then answers each
    # operation's own question; and if nothing is denied, that is every answer.
    if judge_now([one for operation in operations for one in operation]) is None:
        return [None] * len(operations)
    return [judge_now(operation) if operation else None for operation in operations]


def recorded() -> list[dict[str, Any]]:
    """The kept accesses in the API's shape, oldest first."""
    with _lock:
        return [access.to_api() for access in ACCESSES]


def clear() -> None:
    with _lock:
        ACCESSES.clear()


def role_session_arn(role_arn: str, session: str = CLOUDFORMATION_SESSION) -> str:
    """The assumed-role session ARN for a session of `role_arn` (its path is not part of it)."""
    prefix, _, path_and_name = role_arn.partition(":role/")
    sts = prefix.replace(":iam::", ":sts::", 1)
    return f"{sts}:assumed-role/{path_and_name.rsplit('/', 1)[-1]}/{session}"
