"""IAM authorization of requests signed by IAM users and assumed roles, judged by the engine.

moto finds a request's caller by its access key and asks `ActionAuthenticatorMixin` before it
runs an operation; moto's own evaluator ignores Resource and Condition elements, so this module
replaces only the evaluation: it names the request's resource as AWS does (with its resource
policy and the request context), and asks the engine (`engine.py`). Keys that belong to no IAM
user and no assumed role are the account's administrator credentials (the "testing" keys) and
are not checked, as before.

Each service's rules (which resources a request acts on, the error a denial answers) are in
`services`, one module per service; a service not there passes unchecked.
Enforcement is on unless the server starts with `--no-enforce-iam` (or LOCALAWS_ENFORCE_IAM=0).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError
from moto.iam.exceptions import NotFoundException as IAMNotFoundException
from moto.iam.models import IAMBackend, ManagedPolicy, iam_backends
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

from localaws import access
from localaws.s3_policies import REQUEST_CONTEXT

from .engine import Decision, EngineError, Policy, Request, get_engine
from .services import SERVICES, s3, sqs
from .targets import AccessDeniedException, S3AccessDenied, Target

# Public for the services that authorize in their own way (Service Catalog).
__all__ = ["AccessDeniedException", "Caller", "Target", "caller_of", "checks", "first_denial"]

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class Caller:
    """An IAM user or an assumed-role session, with every policy that applies to it."""

    arn: str
    principal_arn: str
    account_id: str
    policies: tuple[Policy, ...]
    boundary: Policy | None
    user_name: str | None = None


def _managed(policy: ManagedPolicy) -> Policy:
    document = next(v.document for v in policy.versions if v.is_default)
    return Policy(policy.arn, document)


def _inline(owner_arn: str, name: str, document: str) -> Policy:
    # Not an ARN: AWS's messages name only managed policies by ARN.
    return Policy(f"inline policy {name} of {owner_arn}", document)


def _boundary(iam: IAMBackend, arn: str | None) -> Policy | None:
    return _managed(iam.get_policy(arn)) if arn else None


def _role_caller(iam: IAMBackend, role: Any, session_arn: str, account: str) -> Caller:
    policies = [_inline(role.arn, name, doc) for name, doc in role.policies.items()]
    policies += [_managed(p) for p in role.managed_policies.values()]
    boundary = _boundary(iam, role.permissions_boundary_arn)
    return Caller(session_arn, role.arn, account, tuple(policies), boundary)


def _user_caller(iam: IAMBackend, user: Any, account: str) -> Caller:
    policies = [_inline(user.arn, name, doc) for name, doc in user.policies.items()]
    policies += [_managed(p) for p in user.managed_policies.values()]
    for group in iam.get_groups_for_user(user.name):
        policies += [_inline(group.arn, name, doc) for name, doc in group.policies.items()]
        policies += [_managed(p) for p in group.managed_policies.values()]
    boundary = _boundary(iam, getattr(user, "permissions_boundary_arn", None))
    return Caller(user.arn, user.arn, account, tuple(policies), boundary, user.name)


def resolve_caller(account_id: str, partition: str, access_key_id: str) -> Caller | None:
    """The IAM user or assumed role behind `access_key_id`; None for the account's
    administrator credentials (a key moto's IAM and STS do not know)."""
    iam = iam_backends[account_id][partition]
    assumed = sts_backends[account_id][partition].get_assumed_role_from_access_key(access_key_id)
    if assumed is not None:
        try:
            role = iam.get_role_by_arn(assumed.role_arn)
        except IAMNotFoundException:
            # A session of a role that is gone (or never existed: moto's AssumeRole does not
            # check) has no policy left to allow anything.
            return Caller(assumed.arn, assumed.role_arn, account_id, (), None)
        return _role_caller(iam, role, assumed.arn, account_id)
    user = iam.get_user_from_access_key_id(access_key_id)
    return None if user is None else _user_caller(iam, user, account_id)


def checks(caller: Caller, action: str, region: str, targets: list[Target]) -> Iterator[Request]:
    """The engine's requests for `caller` doing `action` on each target, with its context."""
    for target in targets:
        context: dict[str, str | list[str]] = {
            **REQUEST_CONTEXT,
            "aws:PrincipalArn": caller.principal_arn,
            "aws:PrincipalAccount": caller.account_id,
            **({"aws:RequestedRegion": region} if region else {}),
            **target.context,
        }
        if caller.user_name:
            context["aws:username"] = caller.user_name
        yield Request(
            principal=caller.arn,
            action=action,
            resource=target.arn,
            resource_account=target.account_id,
            identity_policies=caller.policies,
            resource_policy=target.policy,
            permission_boundary=caller.boundary,
            context=Request.context_of(context),
        )


class CannotAuthorize(JsonRESTError):
    """A request the engine could not judge: a gap of the local AWS, named, never a guess."""

    code = 500

    def __init__(self, error: EngineError) -> None:
        super().__init__("InternalFailure", f"the local AWS cannot authorize this request: {error}")


def first_denial(requests: list[Request]) -> tuple[Request, Decision] | None:
    """The first request the engine denies, with its decision (all judged in one round trip)."""
    try:
        decisions = get_engine().decide_all(requests)
    except EngineError as error:
        raise CannotAuthorize(error) from None
    for request, decision in zip(requests, decisions, strict=True):
        if not decision.allowed:
            return request, decision
    return None


def caller_of(response: Any) -> Caller | None:
    """The signer: from the Authorization header, or from a presigned URL (SigV4's
    X-Amz-Credential, or SigV2's AWSAccessKeyId, which boto3 uses to presign S3 URLs)."""
    match = _CREDENTIAL.search(response.headers.get("Authorization", ""))
    query = response.querystring
    if match is not None:
        key = match[1]
    elif query.get("X-Amz-Credential"):
        key = query["X-Amz-Credential"][0].split("/", 1)[0]
    else:
        key = (query.get("AWSAccessKeyId") or [""])[0]
    if not key:
        return None
    return resolve_caller(response.current_account, get_partition(response.region), key)


def _authorize_normal(response: Any, resource: str = "*") -> None:
    service = SERVICES.get(response.service_name)
    if service is None:
        return
    operation = response._get_action()
    targets = service.targets(response, operation)
    if targets is None:
        return
    caller = caller_of(response)
    if caller is None:
        return
    action = f"{response.service_name}:{service.actions.get(operation, operation)}"
    denied = first_denial(list(checks(caller, action, response.region, targets)))
    if denied is not None:
        raise service.denial(response, *denied)


def _authorize_s3(
    response: Any, bucket_name: str | None = None, key_name: str | None = None
) -> None:
    caller = caller_of(response)
    if caller is None:
        return
    action = s3.action(response._get_action())
    targets = s3.targets(response, bucket_name, key_name)
    denied = first_denial(list(checks(caller, action, response.region, targets)))
    if denied is not None:
        request, decision = denied
        raise S3AccessDenied(decision.message(request))


def _principal(principal_arn: str, partition: str) -> Caller | None:
    """The caller behind an ARN `localaws.access` records: an assumed-role session (its role's
    policies) or an IAM user; None for the account's root, which is not checked."""
    account = principal_arn.split(":")[4]
    iam = iam_backends[account][partition]
    kind, _, rest = principal_arn.split(":", 5)[5].partition("/")
    if kind == "assumed-role":
        return _role_caller(iam, iam.get_role(rest.split("/", 1)[0]), principal_arn, account)
    if kind == "user":
        return _user_caller(iam, iam.get_user(rest.rsplit("/", 1)[-1]), account)
    return None


def _resource_policy(request: access.Access, partition: str) -> Policy | None:
    """The policy of the resource an access reaches: a bucket's, for S3 (the local AWS reads
    templates on a principal's behalf in another account); a queue's, for SQS (Lambda polls
    and dead-letters as a function's execution role)."""
    if request.action.startswith("sqs:"):
        return sqs.queue_policy(request.resource_arn)
    if not request.action.startswith("s3:") or not request.resource_arn.startswith("arn:"):
        return None
    bucket_name = request.resource_arn.split(":", 5)[5].split("/", 1)[0]
    return s3.bucket_policy(request.resource_account, partition, bucket_name)


def judge_accesses(accesses: Sequence[access.Access]) -> str | None:
    """The engine's decision on what the local AWS does for a principal (a launch role reading
    Service Catalog's template copy, CloudFormation acting as a stack's role), all of one
    operation in one round trip: the principal's identity policies and, for a resource in
    another account, its resource policy too. AWS's message for the first denial, else None."""
    requests: list[Request] = []
    for one in accesses:
        partition = one.principal_arn.split(":")[1]
        try:
            caller = _principal(one.principal_arn, partition)
        except IAMNotFoundException:
            return (
                f"User: {one.principal_arn} is not authorized to perform: {one.action} "
                f"on resource: {one.resource_arn}: its role or user no longer exists"
            )
        if caller is None:
            continue
        target = Target(
            one.resource_arn,
            one.resource_account,
            _resource_policy(one, partition),
            {k: v if isinstance(v, str) else list(v) for k, v in one.context.items()},
        )
        requests += checks(caller, one.action, "", [target])
    denied = first_denial(requests) if requests else None
    return None if denied is None else denied[1].message(denied[0])


_ORIGINAL: dict[str, Callable[..., None]] = {}


def enforcing() -> bool:
    """Whether requests are authorized now."""
    return ActionAuthenticatorMixin._authenticate_and_authorize_s3_action is _authorize_s3


def install() -> None:
    """Authorize every request signed by an IAM user or an assumed role (idempotent)."""
    if not _ORIGINAL:
        _ORIGINAL["normal"] = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action
        _ORIGINAL["s3"] = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action
    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = _authorize_normal  # type: ignore[method-assign,assignment]
    ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = _authorize_s3  # type: ignore[method-assign,assignment]
    access.set_authorizer(judge_accesses)


def uninstall() -> None:
    """moto's own (permissive by default) checks again."""
    if _ORIGINAL:
        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = _ORIGINAL["normal"]  # type: ignore[method-assign]
        ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = _ORIGINAL["s3"]  # type: ignore[method-assign]
    access.set_authorizer(None)
