"""Reading templates from the local S3 by the URLs CloudFormation and Service Catalog accept."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from moto.s3.models import s3_backends

from .access import Access, AccessDenied, authorize

_VIRTUAL_HOSTED = re.compile(r"^(?P<bucket>.+)\.s3(?:[.-](?P<region>[a-z0-9-]+))?\.amazonaws\.com$")
_PATH_STYLE = re.compile(r"^s3(?:[.-](?P<region>[a-z0-9-]+))?\.amazonaws\.com$")
_LOCAL_HOSTS = {"127.0.0.1", "localhost"}


class TemplateUrlError(ValueError):
    """The URL is not one CloudFormation can read, or nothing is stored there."""


class TemplateAccessDenied(TemplateUrlError):
    """The principal reading the template may not: S3 answered AccessDenied."""


def split(url: str) -> tuple[str, str, str | None]:
    """Return (bucket, key, version id) for an S3 URL in any form AWS or the local AWS uses.

    Accepted: virtual-hosted (`https://b.s3.amazonaws.com/k`, `https://b.s3.eu-west-1...`),
    path style (`https://s3.eu-west-1.amazonaws.com/b/k`) and the local server
    (`http://127.0.0.1:PORT/b/k`, `http://localhost:PORT/b/k`).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = unquote(parts.path).lstrip("/")
    version = None
    for pair in parts.query.split("&"):
        if pair.startswith("versionId="):
            version = pair.split("=", 1)[1]
    if parts.scheme not in ("http", "https") or not host:
        raise TemplateUrlError(f"TemplateURL must be an Amazon S3 URL, got {url!r}")
    hosted = _VIRTUAL_HOSTED.match(host)
    if hosted:
        bucket, key = hosted.group("bucket"), path
    elif _PATH_STYLE.match(host) or host in _LOCAL_HOSTS:
        bucket, _, key = path.partition("/")
    else:
        raise TemplateUrlError(f"TemplateURL must be an Amazon S3 URL, got {url!r}")
    if not bucket or not key:
        raise TemplateUrlError(f"TemplateURL {url!r} names no bucket and key")
    return bucket, key, version


def read(url: str, account_id: str, partition: str = "aws") -> str:
    """The object's content as text, read straight from moto's S3 backend."""
    return bytes(_object(url, account_id, partition).value).decode("utf-8")


def read_as(
    url: str, principal_arn: str, *, purpose: str, account_id: str, partition: str = "aws"
) -> str:
    """The object's content, read as `principal_arn` would read it: an `s3:GetObject` access
    is authorized first (see `localaws.access`), with the object's tags as
    `s3:ExistingObjectTag/<key>` in its context. A refusal raises TemplateUrlError with
    S3's AccessDenied message, as CloudFormation reports an unreadable TemplateURL."""
    obj = _object(url, account_id, partition)
    bucket, key, _ = split(url)
    owner = str(obj.account_id)
    tags = s3_backends[owner][partition].get_object_tagging(obj)["Tags"]
    access = Access(
        principal_arn=principal_arn,
        action="s3:GetObject",
        resource_arn=f"arn:{partition}:s3:::{bucket}/{key}",
        resource_account=owner,
        purpose=purpose,
        context={f"s3:ExistingObjectTag/{tag['Key']}": tag["Value"] for tag in tags},
    )
    try:
        authorize(access)
    except AccessDenied as denied:
        raise TemplateAccessDenied(f"S3 error: Access Denied reading {url}: {denied}") from denied
    return bytes(obj.value).decode("utf-8")


def _object(url: str, account_id: str, partition: str) -> Any:
    bucket, key, version = split(url)
    backend = s3_backends[account_id][partition]
    try:
        obj = backend.get_object(bucket, key, version_id=version)
    except Exception as exc:  # moto raises MissingBucket / MissingKey
        raise TemplateUrlError(f"Unable to read the template at {url}: {exc}") from exc
    if obj is None:
        raise TemplateUrlError(f"Unable to read the template at {url}: no such object")
    return obj
