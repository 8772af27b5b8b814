"""Roles a service assumes to do its work: Lambda's execution roles.

Lambda runs a function with temporary credentials of the function's execution role: the
service itself (its principal, lambda.amazonaws.com) calls AssumeRole, which the role's trust
policy must allow, and names the session after the function; the environment gets the session's
keys as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (Lambda Developer Guide,
"Defining Lambda function permissions with an execution role" and "Using Lambda environment
variables"). CreateFunction and UpdateFunctionConfiguration refuse a role Lambda cannot assume
with InvalidParameterValueException, "The role defined for the function cannot be assumed by
Lambda." (Lambda API Reference). With IAM enforcement off, nothing is judged and functions
keep the account's administrator keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from moto.iam.exceptions import NotFoundException as IAMNotFoundException
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from localaws.s3_policies import REQUEST_CONTEXT

from .engine import EngineError, Policy, Request, get_engine

LAMBDA = "lambda.amazonaws.com"
#: AWS's message when Lambda cannot assume a function's role.
CANNOT_ASSUME = "The role defined for the function cannot be assumed by Lambda."
#: A session's life: Lambda renews its credentials; a local environment lives far shorter.
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    """Temporary credentials of a role, as the service's session holds them."""

    arn: str
    access_key_id: str
    secret_access_key: str
    session_token: str


def service_may_assume(role_arn: str, service: str = LAMBDA) -> bool:
    """Whether the role exists and its trust policy lets `service` call sts:AssumeRole."""
    parts = role_arn.split(":")
    if len(parts) < 6 or not parts[5].startswith("role/"):
        return False
    partition, owner = parts[1], parts[4]
    try:
        role = iam_backends[owner][partition].get_role_by_arn(role_arn)
    except IAMNotFoundException:
        return False
    request = Request(
        principal=service,
        action="sts:AssumeRole",
        resource=role.arn,
        resource_account=owner,
        resource_policy=Policy("trust policy", role.assume_role_policy_document),
        context=Request.context_of(REQUEST_CONTEXT),
    )
    try:
        return get_engine().decide(request).allowed
    except EngineError:
        return False


def assume(role_arn: str, session_name: str, region: str, service: str = LAMBDA) -> Session | None:
    """A session of `role_arn` started by `service`, named `session_name`; None when the role
    does not trust the service (or no longer exists)."""
    if not service_may_assume(role_arn, service):
        return None
    owner = role_arn.split(":")[4]
    partition = role_arn.split(":")[1]
    session = sts_backends[owner][partition].assume_role(
        region_name=region,
        role_session_name=session_name,
        role_arn=role_arn,
        policy="",
        duration=SESSION_SECONDS,
        external_id="",
    )
    return Session(
        session.arn, session.access_key_id, session.secret_access_key, session.session_token
    )
