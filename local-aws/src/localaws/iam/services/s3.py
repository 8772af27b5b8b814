"""S3: buckets and objects, with the bucket policy and the object's existing tags.

moto authorizes S3 through its own hook (bucket and key already parsed), so S3 is not in the
`SERVICES` registry: `authorization` calls `targets` and `action` directly.
"""

from __future__ import annotations

from typing import Any

from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

from localaws.iam.engine import Policy
from localaws.iam.targets import Context, Target, tags

# moto's S3 operation names that are not IAM action names (Service Authorization Reference,
# "Actions defined by Amazon S3"); every other name moto gives is the action's own.
_ACTIONS = {
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


def action(operation: str) -> str:
    """The IAM action an S3 operation (moto's name for it) is authorized as."""
    return f"s3:{_ACTIONS.get(operation, operation)}"


def targets(response: Any, bucket: str | None, key: str | None) -> list[Target]:
    partition = get_partition(response.region)
    account = response.current_account
    if not bucket:
        return [Target("*", account)]
    backend = s3_backends[account][partition]
    found = backend.buckets.get(bucket)
    policy = Policy("bucket policy", found.policy.decode()) if found and found.policy else None
    if not key:
        return [Target(f"arn:{partition}:s3:::{bucket}", account, policy)]
    context: Context = {}
    stored = found.keys.get(key) if found else None
    if stored is not None:
        context = tags(
            backend.tagger.get_tag_dict_for_resource(stored.arn), "s3:ExistingObjectTag/"
        )
    return [Target(f"arn:{partition}:s3:::{bucket}/{key}", account, policy, context)]


def bucket_policy(account: str, partition: str, bucket_name: str) -> Policy | None:
    """A bucket's policy, for accesses the local AWS makes on a principal's behalf."""
    bucket = s3_backends[account][partition].buckets.get(bucket_name)
    return Policy("bucket policy", bucket.policy.decode()) if bucket and bucket.policy else None
