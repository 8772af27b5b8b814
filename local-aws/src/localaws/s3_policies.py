"""Bucket policies judged for a request as AWS's HTTPS endpoint would see it.

moto 5.2.5 checks a bucket's policy on object requests, but understands only StringEquals in
conditions and treats any other operator as true, and a statement whose condition is false as an
explicit Deny. So the usual TLS-only policy (Deny when `aws:SecureTransport` is false) denies
every request. Here a statement applies only when all of its conditions hold for the request
context below: the local endpoint stands for AWS's, which is HTTPS with TLS 1.2 or later.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.s3.models import FakeBucket

#: What AWS knows about a request to its S3 endpoint that the local one cannot tell.
REQUEST_CONTEXT = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _compare_numbers(test: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def compare(actual: str, expected: str) -> bool:
        a, e = _number(actual), _number(expected)
        return a is not None and e is not None and test(a, e)

    return compare


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda actual, expected: actual == expected,
    "StringLike": fnmatchcase,
    "Bool": lambda actual, expected: actual.lower() == expected.lower(),
    "NumericEquals": _compare_numbers(lambda a, e: a == e),
    "NumericLessThan": _compare_numbers(lambda a, e: a < e),
    "NumericLessThanEquals": _compare_numbers(lambda a, e: a <= e),
    "NumericGreaterThan": _compare_numbers(lambda a, e: a > e),
    "NumericGreaterThanEquals": _compare_numbers(lambda a, e: a >= e),
}


def conditions_hold(conditions: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """IAM's rule for these operators: every operator and key must match one of its values; a
    key the request lacks fails its test. Other operators never hold here, so a statement
    using them is left out (its Deny does not deny, its Allow does not allow)."""
    for operator, tests in conditions.items():
        compare = _OPERATORS.get(operator)
        for key, expected in tests.items():
            values = expected if isinstance(expected, list) else [expected]
            actual = context.get(key)
            if compare is None or actual is None:
                return False
            if not any(compare(actual, str(value)) for value in values):
                return False
    return True


def _get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
    if self.policy is None:
        return PermissionResult.NEUTRAL
    statements = json.loads(self.policy)["Statement"]
    result = PermissionResult.NEUTRAL
    for statement in statements if isinstance(statements, list) else [statements]:
        if not conditions_hold(statement.get("Condition") or {}, REQUEST_CONTEXT):
            continue
        unconditional = {k: v for k, v in statement.items() if k != "Condition"}
        permission = IAMPolicyStatement(unconditional).is_action_permitted(action, resource)
        if permission == PermissionResult.DENIED:
            return permission
        if permission == PermissionResult.PERMITTED:
            result = permission
    return result


def install() -> None:
    """Idempotent: replace moto's bucket-policy check."""
    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
