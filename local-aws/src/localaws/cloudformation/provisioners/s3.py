"""S3 buckets and bucket policies.

moto's Bucket model applies only BucketEncryption and Tags (public access block, versioning,
lifecycle, CORS, ownership and logging are dropped) and deletes a bucket that still holds
objects without a word; it has no BucketPolicy type. The S3 backend takes configuration in
the shapes its XML parser produces, so CloudFormation's property names are translated here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.s3.models import FakeBucket, S3Backend, s3_backends

from .base import Provisioned, ProvisionError, ResourceContext, register
from .common import MotoProvisioner, json_text, name_or_generated, resource_tags


def s3_backend(ctx: ResourceContext) -> S3Backend:
    return s3_backends[ctx.account_id][ctx.partition]


def _text(value: Any) -> str:
    """A scalar as moto's XML-parsed configuration holds it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle Rule in the shape of the S3 API's LifecycleConfiguration."""
    api: dict[str, Any] = {"Status": rule["Status"]}
    if "Id" in rule:
        api["ID"] = rule["Id"]
    tags = [{"Key": t["Key"], "Value": t["Value"]} for t in rule.get("TagFilters", [])]
    prefix = rule.get("Prefix", "")
    if tags and (prefix or len(tags) > 1):
        api["Filter"] = {"And": {"Prefix": prefix, "Tag": tags}}
    elif tags:
        api["Filter"] = {"Tag": tags[0]}
    else:
        api["Filter"] = {"Prefix": prefix}
    expiration = {
        key: _text(rule[prop])
        for prop, key in (
            ("ExpirationInDays", "Days"),
            ("ExpirationDate", "Date"),
            ("ExpiredObjectDeleteMarker", "ExpiredObjectDeleteMarker"),
        )
        if prop in rule
    }
    if expiration:
        api["Expiration"] = expiration
    transitions = [
        {
            **({"Days": _text(t["TransitionInDays"])} if "TransitionInDays" in t else {}),
            **({"Date": t["TransitionDate"]} if "TransitionDate" in t else {}),
            "StorageClass": t["StorageClass"],
        }
        for t in rule.get("Transitions", [])
    ]
    if transitions:
        api["Transition"] = transitions
    noncurrent = rule.get("NoncurrentVersionExpiration", {}).get(
        "NoncurrentDays", rule.get("NoncurrentVersionExpirationInDays")
    )
    if noncurrent is not None:
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": _text(noncurrent)}
    noncurrent_transitions = [
        {"NoncurrentDays": _text(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
        for t in rule.get("NoncurrentVersionTransitions", [])
    ]
    if noncurrent_transitions:
        api["NoncurrentVersionTransition"] = noncurrent_transitions
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": _text(days)}
    return api


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    api: dict[str, Any] = {
        "AllowedMethod": list(rule["AllowedMethods"]),
        "AllowedOrigin": list(rule["AllowedOrigins"]),
    }
    for prop, key in (("AllowedHeaders", "AllowedHeader"), ("ExposedHeaders", "ExposeHeader")):
        if rule.get(prop):
            api[key] = list(rule[prop])
    if "MaxAge" in rule:
        api["MaxAgeSeconds"] = _text(rule["MaxAge"])
    if "Id" in rule:
        api["ID"] = rule["Id"]
    return api


def _encryption(config: dict[str, Any]) -> dict[str, Any]:
    rule = config["ServerSideEncryptionConfiguration"][0]
    default = dict(rule.get("ServerSideEncryptionByDefault", {}))
    api_rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default}
    if "BucketKeyEnabled" in rule:
        api_rule["BucketKeyEnabled"] = _text(rule["BucketKeyEnabled"])
    return {"Rule": api_rule}


@register
class Bucket(MotoProvisioner):
    """Ref is the bucket name; every configuration property is updated in place."""

    resource_type = "AWS::S3::Bucket"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = s3_backend(ctx)
        bucket = backend.create_bucket(
            name_or_generated(ctx, props, "BucketName", 63, lower=True), ctx.region
        )
        try:
            self._configure(ctx, bucket, {}, props)
        except Exception:
            backend.delete_bucket(bucket.name)
            raise
        return Provisioned(
            bucket.name,
            {
                "Arn": bucket.arn,
                "DomainName": bucket.domain_name,
                "RegionalDomainName": bucket.regional_domain_name,
                "DualStackDomainName": bucket.dual_stack_domain_name,
                "WebsiteURL": bucket.website_url,
            },
        )

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        bucket = s3_backend(ctx).get_bucket(current.physical_id)
        self._configure(ctx, bucket, old_props, new_props)
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = s3_backend(ctx)
        if current.physical_id not in backend.buckets:
            return
        if backend.delete_bucket(current.physical_id) is None:
            raise ProvisionError(
                f"The bucket you tried to delete is not empty (Bucket: {current.physical_id})"
            )

    def _configure(
        self, ctx: ResourceContext, bucket: FakeBucket, old: dict[str, Any], new: dict[str, Any]
    ) -> None:
        """Apply each configuration `new` has; remove those only `old` had."""
        backend = s3_backend(ctx)
        for prop, (apply, remove) in _CONFIGURATIONS.items():
            if prop in new:
                apply(backend, bucket.name, new[prop])
            elif prop in old:
                remove(backend, bucket.name)
        tags = resource_tags(ctx, new)
        if tags:
            backend.put_bucket_tagging(bucket.name, tags)
        else:
            backend.delete_bucket_tagging(bucket.name)


_Apply = Callable[[S3Backend, str, Any], None]
_Remove = Callable[[S3Backend, str], None]

# Each configuration property of a bucket: how to apply it, how to remove it when dropped.
_CONFIGURATIONS: dict[str, tuple[_Apply, _Remove]] = {
    "PublicAccessBlockConfiguration": (
        lambda b, name, v: b.put_public_access_block(name, {k: _text(x) for k, x in v.items()}),
        lambda b, name: b.delete_public_access_block(name),
    ),
    "BucketEncryption": (
        lambda b, name, v: b.put_bucket_encryption(name, _encryption(v)),
        lambda b, name: b.delete_bucket_encryption(name),
    ),
    "VersioningConfiguration": (
        lambda b, name, v: b.put_bucket_versioning(name, v["Status"]),
        lambda b, name: b.put_bucket_versioning(name, "Suspended"),  # never back to unversioned
    ),
    "LifecycleConfiguration": (
        lambda b, name, v: b.put_bucket_lifecycle_configuration(
            name, [_lifecycle_rule(r) for r in v["Rules"]]
        ),
        lambda b, name: b.delete_bucket_lifecycle(name),
    ),
    "CorsConfiguration": (
        lambda b, name, v: b.put_bucket_cors(name, [_cors_rule(r) for r in v["CorsRules"]]),
        lambda b, name: b.delete_bucket_cors(name),
    ),
    "OwnershipControls": (
        lambda b, name, v: b.put_bucket_ownership_controls(name, v["Rules"][0]["ObjectOwnership"]),
        lambda b, name: b.delete_bucket_ownership_controls(name),
    ),
    "LoggingConfiguration": (
        lambda b, name, v: b.put_bucket_logging(
            name,
            {
                "TargetBucket": v.get("DestinationBucketName", name),
                "TargetPrefix": v.get("LogFilePrefix", ""),
            },
        ),
        lambda b, name: b.put_bucket_logging(name, {}),
    ),
}


@register
class BucketPolicy(MotoProvisioner):
    """A bucket's policy; Ref is the bucket name."""

    resource_type = "AWS::S3::BucketPolicy"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        s3_backend(ctx).put_bucket_policy(
            props["Bucket"], json_text(props["PolicyDocument"]).encode()
        )
        return Provisioned(props["Bucket"])

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        return self.create(ctx, new_props)

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = s3_backend(ctx)
        if props["Bucket"] in backend.buckets:
            backend.delete_bucket_policy(props["Bucket"])
