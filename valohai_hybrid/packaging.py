"""Packaging the product templates into an immutable, versioned S3 release.

`cfn/` templates refer to their nested templates by local relative paths (so cfn-lint can
follow them). A release uploads every template reachable from the product roots, children
first, each with its nested TemplateURLs rewritten to the S3 URLs of this release, under
`releases/<version>/`. A release is immutable: publishing the same version again with
different content is refused, so a launched product's templates never change under it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from valohai_hybrid.products import IAM, ROOT_TEMPLATES, WORKERS
from valohai_hybrid.templates import TemplateError, load_template

RELEASE_PREFIX = "releases"
_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$")


class PackagingError(Exception):
    """A problem with the templates or the release location; the message says what to do."""


@dataclass
class Release:
    """Where a packaged release lives: the S3 URL of every template, by file name."""

    version: str
    bucket: str
    prefix: str
    urls: dict[str, str] = field(default_factory=dict)
    uploaded: list[str] = field(default_factory=list)

    @property
    def iam_template_url(self) -> str:
        return self.urls[IAM.root_template]

    @property
    def workers_template_url(self) -> str:
        return self.urls[WORKERS.root_template]


def template_url(bucket: str, region: str, key: str) -> str:
    """The virtual-hosted S3 URL CloudFormation and Service Catalog read templates from."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{suffix}/{key}"


def package(
    cfn_dir: Path,
    s3: Any,
    *,
    bucket: str,
    region: str,
    version: str,
    roots: tuple[str, ...] = ROOT_TEMPLATES,
) -> Release:
    """Upload the templates reachable from `roots` as release `version`; return their URLs."""
    if not _VERSION.match(version):
        raise PackagingError(f"release version {version!r} is not a semantic version such as 1.2.0")
    release = Release(version=version, bucket=bucket, prefix=f"{RELEASE_PREFIX}/{version}/")
    for root in roots:
        _package_file(cfn_dir, root, s3, region, release, visiting=())
    return release


def _package_file(
    cfn_dir: Path,
    name: str,
    s3: Any,
    region: str,
    release: Release,
    visiting: tuple[str, ...],
) -> str:
    if name in release.urls:
        return release.urls[name]
    if name in visiting:
        raise PackagingError(
            f"nested templates refer to each other in a loop: {' -> '.join((*visiting, name))}"
        )
    path = cfn_dir / name
    if not path.is_file():
        parent = visiting[-1] if visiting else "the product roots"
        raise PackagingError(f"{parent} refers to {name}, which is not in {cfn_dir}")
    template = _load(path)
    for resource in (template.get("Resources") or {}).values():
        url = (resource.get("Properties") or {}).get("TemplateURL")
        if resource.get("Type") == "AWS::CloudFormation::Stack" and _is_local(url):
            assert isinstance(url, str)
            resource["Properties"]["TemplateURL"] = _package_file(
                cfn_dir, url, s3, region, release, (*visiting, name)
            )
    body = json.dumps(template, indent=1, sort_keys=False).encode()
    key = f"{release.prefix}{Path(name).stem}.json"
    _put_immutable(s3, release, key, body)
    release.urls[name] = template_url(release.bucket, region, key)
    return release.urls[name]


def _load(path: Path) -> dict[str, Any]:
    try:
        return load_template(path)
    except TemplateError as error:
        raise PackagingError(str(error)) from error


def _is_local(url: Any) -> bool:
    return isinstance(url, str) and "://" not in url


def _put_immutable(s3: Any, release: Release, key: str, body: bytes) -> None:
    digest = hashlib.sha256(body).hexdigest()
    try:
        existing = s3.head_object(Bucket=release.bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    else:
        if existing.get("Metadata", {}).get("sha256") == digest:
            return
        raise PackagingError(
            f"release {release.version} is already published with different templates "
            f"(s3://{release.bucket}/{key}); releases are immutable: bump the version"
        )
    s3.put_object(
        Bucket=release.bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        Metadata={"sha256": digest},
    )
    release.uploaded.append(key)
