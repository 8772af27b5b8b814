"""IAM authorization of requests signed by IAM users and assumed roles, judged by the engine.

moto finds a request's caller by its access key and asks `ActionAuthenticatorMixin` before it
runs an operation; moto's own evaluator ignores Resource and Condition elements, so this module
replaces only the evaluation: it names the request's resource as AWS does (with its resource
policy and the request context), and asks the engine (`engine.py`). Keys that belong to no IAM
user and no assumed role are the account's administrator credentials (the "testing" keys) and
are not checked, as before.

Services authorized so far: S3, Secrets Manager, SQS, SSM, sts:AssumeRole, and CloudFormation's
reads by stack (DescribeStacks with a StackName, DescribeStackResource(s), DescribeStackEvents).
Requests to other services pass unchecked: their resources are not named here yet, and a guess
would deny what AWS allows. Among them: CloudWatch Logs (Lambda's own writes of a function's
logs are not judged either: which log-group or log-stream ARN AWS evaluates for
CreateLogStream is not pinned by a test here), EventBridge, Lambda's API, KMS, IAM,
CloudFormation's other operations and DescribeStacks without a stack.
Enforcement is on unless the server starts with `--no-enforce-iam` (or LOCALAWS_ENFORCE_IAM=0).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError, JsonRESTError
from moto.iam.exceptions import NotFoundException as IAMNotFoundException
from moto.iam.models import IAMBackend, ManagedPolicy, iam_backends
from moto.s3.exceptions import S3ClientError
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

from localaws import access
from localaws.s3_policies import REQUEST_CONTEXT

from .engine import Decision, EngineError, Policy, Request, get_engine

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")

# Operations authorized as another action (Service Authorization Reference: SQS's batch
# operations need the single-message action).
_ALIASES = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}

# moto's S3 operation names that are not IAM action names (Service Authorization Reference,
# "Actions defined by Amazon S3"); every other name moto gives is the action's own.
_S3_ACTIONS = {
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "ListBuckets": "ListAllMyBuckets",
    "ListObjectVersions": "ListBucketVersions",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "GetBucketEncryption": "GetEncryptionConfiguration",
    "PutBucketEncryption": "PutEncryptionConfiguration",
    "DeleteBucketEncryption": "PutEncryptionConfiguration",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "GetBucketCors": "GetBucketCORS",
    "PutBucketCors": "PutBucketCORS",
    "DeleteBucketCors": "PutBucketCORS",
    "GetBucketAccelerateConfiguration": "GetAccelerateConfiguration",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeleteBucketTagging": "PutBucketTagging",
}


@dataclass(frozen=True)
class Caller:
    """An IAM user or an assumed-role session, with every policy that applies to it."""

    arn: str
    principal_arn: str
    account_id: str
    policies: tuple[Policy, ...]
    boundary: Policy | None
    user_name: str | None = None


@dataclass
class Target:
    """One resource a request acts on, as AWS names it for authorization."""

    arn: str
    account_id: str
    policy: Policy | None = None
    context: dict[str, str | list[str]] = field(default_factory=dict)


def _managed(policy: ManagedPolicy) -> Policy:
    document = next(v.document for v in policy.versions if v.is_default)
    return Policy(policy.arn, document)


def _inline(owner_arn: str, name: str, document: str) -> Policy:
    # Not an ARN: AWS's messages name only managed policies by ARN.
    return Policy(f"inline policy {name} of {owner_arn}", document)


def _boundary(iam: IAMBackend, arn: str | None) -> Policy | None:
    return _managed(iam.get_policy(arn)) if arn else None


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
        policies = [_inline(role.arn, name, doc) for name, doc in role.policies.items()]
        policies += [_managed(p) for p in role.managed_policies.values()]
        return Caller(
            assumed.arn,
            role.arn,
            account_id,
            tuple(policies),
            _boundary(iam, role.permissions_boundary_arn),
        )
    user = iam.get_user_from_access_key_id(access_key_id)
    if user is None:
        return None
    policies = [_inline(user.arn, name, doc) for name, doc in user.policies.items()]
    policies += [_managed(p) for p in user.managed_policies.values()]
    for group in iam.get_groups_for_user(user.name):
        policies += [_inline(group.arn, name, doc) for name, doc in group.policies.items()]
        policies += [_managed(p) for p in group.managed_policies.values()]
    return Caller(
        user.arn,
        user.arn,
        account_id,
        tuple(policies),
        _boundary(iam, getattr(user, "permissions_boundary_arn", None)),
        user_name=user.name,
    )


def _tags(pairs: Any, prefix: str) -> dict[str, str | list[str]]:
    items = (
        pairs.items() if isinstance(pairs, dict) else [(t["Key"], t["Value"]) for t in pairs or []]
    )
    return {f"{prefix}{key}": value for key, value in items}


def _request_tags(tags: Any) -> dict[str, str | list[str]]:
    context = _tags(tags, "aws:RequestTag/")
    if context:
        context["aws:TagKeys"] = [k.removeprefix("aws:RequestTag/") for k in context]
    return context


def _s3_targets(response: Any, bucket: str | None, key: str | None) -> list[Target]:
    from moto.s3.models import s3_backends

    partition = get_partition(response.region)
    account = response.current_account
    if not bucket:
        return [Target("*", account)]
    backend = s3_backends[account][partition]
    found = backend.buckets.get(bucket)
    policy = Policy("bucket policy", found.policy.decode()) if found and found.policy else None
    if not key:
        return [Target(f"arn:{partition}:s3:::{bucket}", account, policy)]
    context: dict[str, str | list[str]] = {}
    stored = found.keys.get(key) if found else None
    if stored is not None:
        context = _tags(
            backend.tagger.get_tag_dict_for_resource(stored.arn), "s3:ExistingObjectTag/"
        )
    return [Target(f"arn:{partition}:s3:::{bucket}/{key}", account, policy, context)]


def _secret_targets(response: Any, action: str) -> list[Target]:
    from moto.secretsmanager.models import secretsmanager_backends

    account, region = response.current_account, response.region
    partition = get_partition(region)
    if action == "CreateSecret":
        # The ARN the new secret will have: its six-character suffix is chosen at creation.
        name = response._get_param("Name")
        arn = f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"
        return [Target(arn, account, context=_request_tags(response._get_param("Tags")))]
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
    context = _tags(secret.tags, "aws:ResourceTag/")
    if action == "TagResource":
        context.update(_request_tags(response._get_param("Tags")))
    return [Target(secret.arn, account, policy, context)]


def _queue_targets(response: Any, action: str) -> list[Target]:
    from moto.sqs.models import sqs_backends

    account, region = response.current_account, response.region
    partition = get_partition(region)
    url = response._get_param("QueueUrl")
    name = url.rstrip("/").rsplit("/", 1)[-1] if url else response._get_param("QueueName")
    if not name:
        return [Target("*", account)]
    arn = f"arn:{partition}:sqs:{region}:{account}:{name}"
    queue = sqs_backends[account][region].queues.get(name)
    if queue is None:
        context = _request_tags(response._get_param("tags")) if action == "CreateQueue" else {}
        return [Target(arn, account, context=context)]
    policy = Policy("queue policy", queue.policy) if queue.policy else None
    context = _tags(queue.tags, "aws:ResourceTag/")
    if action == "TagQueue":
        context.update(_request_tags(response._get_param("Tags")))
    return [Target(arn, account, policy, context)]


def _parameter_targets(response: Any) -> list[Target]:
    account, region = response.current_account, response.region
    partition = get_partition(region)
    names = response._get_param("Names") or [
        n for n in (response._get_param("Name"), response._get_param("Path")) if n
    ]
    if response._get_param("ResourceType") == "Parameter":
        names = [response._get_param("ResourceId")]
    if not names:
        return [Target("*", account)]
    targets = []
    for name in names:
        if name.startswith("arn:"):
            targets.append(Target(name, name.split(":")[4]))
            continue
        path = name.lstrip("/")
        # AWS's public parameters belong to no account: their ARNs have none.
        owner = "" if path.startswith("aws/service/") else account
        targets.append(Target(f"arn:{partition}:ssm:{region}:{owner}:parameter/{path}", owner))
    return targets


def _role_targets(response: Any, partition: str) -> list[Target]:
    """sts:AssumeRole on the role, judged with its trust policy as the resource policy."""
    role_arn = response._get_param("RoleArn")
    owner = role_arn.split(":")[4] if role_arn and role_arn.count(":") >= 5 else ""
    if not owner:
        return [Target("*", response.current_account)]
    context: dict[str, str | list[str]] = {}
    for key, parameter in (
        ("sts:ExternalId", "ExternalId"),
        ("sts:RoleSessionName", "RoleSessionName"),
    ):
        value = response._get_param(parameter)
        if value:
            context[key] = value
    try:
        role = iam_backends[owner][partition].get_role_by_arn(role_arn)
    except IAMNotFoundException:
        return [Target(role_arn, owner, context=context)]
    trust = Policy("trust policy", role.assume_role_policy_document)
    return [Target(role_arn, owner, trust, context)]


# CloudFormation's reads by stack (Service Authorization Reference, "Actions defined by AWS
# CloudFormation": resource type `stack`), which custom-resource functions make to confirm a
# request's origin and to report a stack's status.
_STACK_READS = frozenset(
    {"DescribeStacks", "DescribeStackResource", "DescribeStackResources", "DescribeStackEvents"}
)


def _stack_read_targets(response: Any, action: str) -> list[Target] | None:
    """The stack a read by stack acts on, as `arn:...:stack/NAME/ID` (an unknown name as
    `stack/NAME/*`, the resource AWS's denials name); None (unchecked) for other operations
    and for DescribeStacks without a stack, whose resource this module does not name."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import cloudformation_backends

    name = response._get_param("StackName") if action in _STACK_READS else None
    if not name:
        return None
    account, region = response.current_account, response.region
    if name.startswith("arn:"):
        return [Target(name, name.split(":")[4])]
    backend = cloudformation_backends[account][region]
    try:
        arn = backend.get_stack(name).stack_id
    except ValidationError:  # no such stack: the operation itself reports it, if allowed
        arn = f"arn:{get_partition(region)}:cloudformation:{region}:{account}:stack/{name}/*"
    return [Target(arn, account)]


def _targets(response: Any, service: str, action: str) -> list[Target] | None:
    """The resources of a request to a service authorized here; None for other services."""
    if service == "cloudformation":
        return _stack_read_targets(response, action)
    if service == "secretsmanager":
        return _secret_targets(response, action)
    if service == "sqs":
        return _queue_targets(response, action)
    if service == "ssm":
        return _parameter_targets(response)
    if service == "sts" and action == "AssumeRole":
        return _role_targets(response, get_partition(response.region))
    return None


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


class QueryAccessDenied(AccessDeniedError):
    """The query-protocol services' denial (STS, CloudFormation): HTTP 403, AccessDenied,
    AWS's message."""

    def __init__(self, message: str) -> None:
        # moto's AccessDeniedError writes its own shorter message: set ours through its base.
        super(AccessDeniedError, self).__init__("AccessDenied", message)


class CannotAuthorize(JsonRESTError):
    """A request the engine could not judge: a gap of the local AWS, named, never a guess."""

    code = 500

    def __init__(self, error: EngineError) -> None:
        super().__init__("InternalFailure", f"the local AWS cannot authorize this request: {error}")


class AccessDeniedException(JsonRESTError):
    """The JSON services' denial (Secrets Manager, SSM): HTTP 400, AccessDeniedException."""

    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


class SqsAccessDenied(JsonRESTError):
    """SQS's denial: its JSON protocol keeps the query API's code through the
    x-amzn-query-error header (SDKs report AccessDenied, HTTP 403 as the query API answered),
    and its message writes the action in lower case ("sqs:sendmessage")."""

    code = 403

    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message)


class S3AccessDenied(S3ClientError):
    """S3's denial: HTTP 403, AccessDenied, with the reason in the message."""

    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message)


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
    service = response.service_name
    action = response._get_action()
    if service == "sts" and action == "GetCallerIdentity":
        return  # no permission needed, even with an explicit deny (STS API reference)
    targets = _targets(response, service, action)
    if targets is None:
        return
    caller = caller_of(response)
    if caller is None:
        return
    iam_action = f"{service}:{action}"
    requests = list(checks(caller, _ALIASES.get(iam_action, iam_action), response.region, targets))
    denied = first_denial(requests)
    if denied is not None:
        request, decision = denied
        if service in ("sts", "cloudformation"):  # query protocol: 403 AccessDenied
            raise QueryAccessDenied(decision.message(request))
        if service == "sqs":
            # moto answers an authorization error with the response's own headers.
            response.response_headers["x-amzn-query-error"] = "AccessDenied;Sender"
            raise SqsAccessDenied(decision.message(replace(request, action=request.action.lower())))
        raise AccessDeniedException(decision.message(request))


def _authorize_s3(
    response: Any, bucket_name: str | None = None, key_name: str | None = None
) -> None:
    caller = caller_of(response)
    if caller is None:
        return
    name = response._get_action()
    action = f"s3:{_S3_ACTIONS.get(name, name)}"
    requests = list(
        checks(caller, action, response.region, _s3_targets(response, bucket_name, key_name))
    )
    denied = first_denial(requests)
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
        role = iam.get_role(rest.split("/", 1)[0])
        policies = [_inline(role.arn, name, doc) for name, doc in role.policies.items()]
        policies += [_managed(p) for p in role.managed_policies.values()]
        boundary = _boundary(iam, role.permissions_boundary_arn)
        return Caller(principal_arn, role.arn, account, tuple(policies), boundary)
    if kind == "user":
        user = iam.get_user(rest.rsplit("/", 1)[-1])
        policies = [_inline(user.arn, name, doc) for name, doc in user.policies.items()]
        policies += [_managed(p) for p in user.managed_policies.values()]
        for group in iam.get_groups_for_user(user.name):
            policies += [_inline(group.arn, name, doc) for name, doc in group.policies.items()]
            policies += [_managed(p) for p in group.managed_policies.values()]
        boundary = _boundary(iam, getattr(user, "permissions_boundary_arn", None))
        return Caller(user.arn, user.arn, account, tuple(policies), boundary, user.name)
    return None


def _resource_policy(request: access.Access, partition: str) -> Policy | None:
    """The policy of the resource an access reaches: a bucket's, for S3 (the local AWS reads
    templates on a principal's behalf in another account); a queue's, for SQS (Lambda polls
    and dead-letters as a function's execution role)."""
    if request.action.startswith("sqs:"):
        return _queue_policy(request.resource_arn)
    if not request.action.startswith("s3:") or not request.resource_arn.startswith("arn:"):
        return None
    from moto.s3.models import s3_backends

    bucket_name = request.resource_arn.split(":", 5)[5].split("/", 1)[0]
    bucket = s3_backends[request.resource_account][partition].buckets.get(bucket_name)
    return Policy("bucket policy", bucket.policy.decode()) if bucket and bucket.policy else None


def _queue_policy(queue_arn: str) -> Policy | None:
    """The queue policy of an SQS queue named by ARN (None if it has none, or is gone)."""
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, name = queue_arn.split(":", 5)
    queue = sqs_backends[account][region].queues.get(name)
    return Policy("queue policy", queue.policy) if queue is not None and queue.policy else None


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
