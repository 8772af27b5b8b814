"""What every service's authorization rules share: the resource a request acts on (`Target`),
the condition keys tags give, the errors a denial answers, and the shape of one service's rules
(`Service`, registered in `services`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import AccessDeniedError, JsonRESTError
from moto.s3.exceptions import S3ClientError

from .engine import Decision, Policy, Request

Context = dict[str, str | list[str]]


@dataclass
class Target:
    """One resource a request acts on, as AWS names it for authorization."""

    arn: str
    account_id: str
    policy: Policy | None = None
    context: Context = field(default_factory=dict)


def tags(pairs: Any, prefix: str) -> Context:
    """Condition keys `prefix + key` for tags given as a dict or as [{Key, Value}]."""
    items = (
        pairs.items() if isinstance(pairs, dict) else [(t["Key"], t["Value"]) for t in pairs or []]
    )
    return {f"{prefix}{key}": value for key, value in items}


def request_tags(pairs: Any) -> Context:
    """`aws:RequestTag/*` and `aws:TagKeys` for the tags a request sets."""
    context = tags(pairs, "aws:RequestTag/")
    if context:
        context["aws:TagKeys"] = [k.removeprefix("aws:RequestTag/") for k in context]
    return context


class QueryAccessDenied(AccessDeniedError):
    """The query-protocol services' denial (STS, CloudFormation): HTTP 403, AccessDenied,
    AWS's message."""

    def __init__(self, message: str) -> None:
        # moto's AccessDeniedError writes its own shorter message: set ours through its base.
        super(AccessDeniedError, self).__init__("AccessDenied", message)


class AccessDeniedException(JsonRESTError):
    """The JSON services' denial (Secrets Manager, SSM): HTTP 400, AccessDeniedException."""

    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


class S3AccessDenied(S3ClientError):
    """S3's denial: HTTP 403, AccessDenied, with the reason in the message."""

    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message)


def json_denial(response: Any, request: Request, decision: Decision) -> Exception:
    return AccessDeniedException(decision.message(request))


def query_denial(response: Any, request: Request, decision: Decision) -> Exception:
    return QueryAccessDenied(decision.message(request))


@dataclass(frozen=True)
class Service:
    """How requests to one service are authorized.

    `targets(response, action)` names the resources the request acts on, or None when this
    operation is not authorized here (its resource is not named yet: a guess would deny what
    AWS allows). `denial` is the error AWS answers in that service's protocol. `actions` maps
    operations to the IAM action they are authorized as, where the two differ.
    """

    targets: Callable[[Any, str], list[Target] | None]
    denial: Callable[[Any, Request, Decision], Exception] = json_denial
    actions: Mapping[str, str] = field(default_factory=dict)
