"""The artifacts bucket (created, encrypted, shared read-only) and the releases in it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from valohai_hybrid.packaging import RELEASE_PREFIX, PackagingError, Release, package

from .options import (
    _NOT_FOUND,
    _RELEASE,
    TEMPLATE_SLOTS,
    PublishError,
    PublishOptions,
    Target,
    _cfn_dir,
    _reason,
)


def ensure_bucket(target: Target, share_with: Sequence[str] = ()) -> None:
    """Create the artifacts bucket if needed; (re)apply its security settings every time.

    Private, encrypted, TLS only, versioned. Accounts the portfolio is shared with may read
    the releases, through their launch roles only.
    """
    s3 = target.client("s3")
    try:
        s3.head_bucket(Bucket=target.bucket, ExpectedBucketOwner=target.account_id)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code == "403":
            raise PublishError(
                f"bucket {target.bucket} belongs to another account or denies access: "
                "choose another with --bucket"
            ) from error
        if code not in _NOT_FOUND:
            raise PublishError(f"cannot check bucket {target.bucket}: {_reason(error)}") from error
        _create_bucket(s3, target)
    s3.put_public_access_block(
        Bucket=target.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_ownership_controls(
        Bucket=target.bucket,
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    )
    s3.put_bucket_encryption(
        Bucket=target.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    s3.put_bucket_versioning(Bucket=target.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(
        Bucket=target.bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    # sam deploy uploads function packages under content-hashed keys, read only
                    # while a deployment changes the code. Releases are never expired.
                    "ID": "ExpireFunctionPackages",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "sam/"},
                    "Expiration": {"Days": 90},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                },
                {
                    "ID": "AbortIncompleteUploads",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                },
            ]
        },
    )
    s3.put_bucket_policy(Bucket=target.bucket, Policy=json.dumps(bucket_policy(target, share_with)))


def _create_bucket(s3: Any, target: Target) -> None:
    location = (
        {}
        if target.region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": target.region}}
    )
    try:
        s3.create_bucket(Bucket=target.bucket, **location)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) == "BucketAlreadyExists":
            raise PublishError(
                f"bucket name {target.bucket} is taken by another account: choose another "
                "with --bucket"
            ) from error
        raise PublishError(f"cannot create bucket {target.bucket}: {_reason(error)}") from error


def bucket_policy(target: Target, share_with: Sequence[str]) -> dict[str, Any]:
    bucket_arn = f"arn:{target.partition}:s3:::{target.bucket}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "DenyPlainHttp",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    if share_with:
        statements.append(
            {
                "Sid": "SharedAccountsLaunchRolesReadReleases",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:{target.partition}:iam::{a}:root" for a in share_with]},
                "Action": "s3:GetObject",
                "Resource": f"{bucket_arn}/{RELEASE_PREFIX}/*",
                "Condition": {
                    "ArnLike": {
                        "aws:PrincipalArn": [
                            f"arn:{target.partition}:iam::{account}:role/ValohaiHybrid*Launch-"
                            f"{target.region}"
                            for account in share_with
                        ]
                    }
                },
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def package_release(options: PublishOptions, target: Target, version: str) -> Release:
    try:
        return package(
            _cfn_dir(options),
            target.client("s3"),
            bucket=target.bucket,
            region=target.region,
            version=version,
        )
    except PackagingError as error:
        raise PublishError(str(error)) from error


def offered_releases(target: Target, current: str) -> list[str]:
    """The newest releases in the bucket, newest first, `current` among them."""
    s3 = target.client("s3")
    found = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=target.bucket, Prefix=f"{RELEASE_PREFIX}/", Delimiter="/"
    )
    for page in pages:
        for prefix in page.get("CommonPrefixes", []):
            name = prefix["Prefix"].rstrip("/").rsplit("/", 1)[-1]
            if _RELEASE.match(name):
                found.append(name)
    newest = sorted(set(found), key=_semver_key, reverse=True)[:TEMPLATE_SLOTS]
    if current not in newest:
        raise PublishError(
            f"{current} is older than the {TEMPLATE_SLOTS} newest releases in "
            f"s3://{target.bucket}/{RELEASE_PREFIX}/ ({', '.join(newest)}): the products offer "
            "only those, so it would be deleted at once; publish a newer version"
        )
    return newest


def _semver_key(version: str) -> tuple[Any, ...]:
    """Semantic version precedence: a pre-release sorts before its release."""
    match = _RELEASE.match(version)
    assert match is not None
    major, minor, patch, pre = match.groups()
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in (pre or "").split(".")
    )
    return (int(major), int(minor), int(patch), pre is None, identifiers)
