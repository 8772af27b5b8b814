"""S3 requests for operations moto's S3 does not implement are refused as unknown operations.

moto 5.2.5 picks a bucket or object operation by the sub-resource in the query string
(`?tagging`, `?policy`...) and falls back to the plain operation for one it does not know:
GetBucketIntelligentTieringConfiguration lists the bucket's objects, PutObjectRetention
overwrites the object with the request body, DeleteBucketAnalyticsConfiguration deletes the
bucket. Here a request naming a sub-resource of S3's API (the literal query keys of the
operations' URIs in botocore's S3 model) that moto's dispatch for that method does not handle
raises NotImplementedError, which `unimplemented` answers as AWS answers an unknown operation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

from botocore.session import get_session
from moto.s3.responses import S3Response

#: The sub-resources moto's S3Response dispatches on, by (method, bucket or key), as read from
#: moto 5.2.5's _bucket_response_* and _key_response_* methods.
HANDLED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "bucket"): frozenset(
        {
            "accelerate", "acl", "cors", "encryption", "inventory", "lifecycle", "list-type",
            "location", "logging", "notification", "object-lock", "ownershipControls",
            "policy", "policyStatus", "publicAccessBlock", "replication", "tagging", "uploads",
            "versioning", "versions", "website",
        }
    ),
    ("PUT", "bucket"): frozenset(
        {
            "accelerate", "acl", "cors", "encryption", "inventory", "lifecycle", "logging",
            "notification", "object-lock", "ownershipControls", "policy", "publicAccessBlock",
            "replication", "tagging", "versioning", "website",
        }
    ),
    ("DELETE", "bucket"): frozenset(
        {
            "cors", "encryption", "lifecycle", "ownershipControls", "policy",
            "publicAccessBlock", "replication", "tagging", "website",
        }
    ),
    ("POST", "bucket"): frozenset({"delete"}),
    ("GET", "key"): frozenset({"acl", "attributes", "legal-hold", "tagging"}),
    ("PUT", "key"): frozenset({"acl", "legal-hold", "retention", "tagging"}),
    ("DELETE", "key"): frozenset({"tagging"}),
    ("POST", "key"): frozenset({"restore", "select", "select-type", "uploads"}),
}  # fmt: skip


@functools.cache
def _sub_resources() -> dict[tuple[str, str], dict[str, str]]:
    """{(method, bucket or key): {sub-resource: operation}} from botocore's S3 model."""
    model = get_session().get_service_model("s3")
    found: dict[tuple[str, str], dict[str, str]] = {}
    for name in model.operation_names:
        http = model.operation_model(name).http
        path, _, query = str(http["requestUri"]).partition("?")
        if "{Bucket}" not in path:
            continue  # the service's own operations (ListBuckets...) have no sub-resources
        level = "key" if "{Key+}" in path else "bucket"
        for item in filter(None, query.split("&")):
            key = item.partition("=")[0]
            if key != "x-id":  # botocore's operation marker, not a sub-resource
                found.setdefault((str(http["method"]), level), {})[key] = name
    return found


def refuse_unimplemented(method: str, level: str, full_url: str) -> None:
    """Raise NotImplementedError if the request names a sub-resource moto does not handle."""
    known = _sub_resources().get((method, level), {})
    asked = parse_qs(urlparse(full_url).query, keep_blank_values=True)
    for key in asked.keys() & known.keys() - HANDLED.get((method, level), frozenset()):
        raise NotImplementedError(f"S3 {known[key]} ({method} ?{key})")


def _checked(level: str, dispatch: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(dispatch)
    def wrapper(self: S3Response, request: Any, full_url: str) -> Any:
        refuse_unimplemented(str(request.method), level, full_url)
        return dispatch(self, request, full_url)

    wrapper.__localaws_checked__ = True  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Check every bucket and object request before moto dispatches it; idempotent."""
    for name, level in (("_bucket_response", "bucket"), ("_key_response", "key")):
        dispatch = getattr(S3Response, name)
        if not getattr(dispatch, "__localaws_checked__", False):
            setattr(S3Response, name, _checked(level, dispatch))
