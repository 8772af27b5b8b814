"""The copy of a product's template that a launch or update is made from.

AWS's Service Catalog does not hand CloudFormation the template it took in at
CreateProvisioningArtifact: it puts the template into an S3 bucket Service Catalog owns, tags
the object `servicecatalog:provisioning=true`, and has CloudFormation read it from there with
the launch role. That is why the Administrator Guide ("Launch constraints", "Step 6: add a
launch constraint") requires every launch role to have `s3:GetObject` on objects with
`s3:ExistingObjectTag/servicecatalog:provisioning` = `true`: the bucket is not in the
customer's account, so the role's own policy must allow the read as well as the bucket's.

The local Service Catalog does the same. Its bucket lives in `SERVICE_ACCOUNT_ID`, an account
that stands for Service Catalog's own (AWS documents neither its name nor its account); its
bucket policy lets each account that launched read its own prefix, so an IAM engine judging
the read (see `localaws.access`) sees a cross-account read, as AWS's does. The launch role's
read is authorized through `localaws.s3urls.read_as`.
"""

from __future__ import annotations

import json
from typing import Any

from moto.s3.models import s3_backends

from localaws import s3urls

#: The account that owns Service Catalog's bucket in the local AWS (no customer's account).
SERVICE_ACCOUNT_ID = "999999999999"
#: The tag Service Catalog puts on each copy, which launch roles' policies test.
PROVISIONING_TAG = ("servicecatalog:provisioning", "true")


def bucket_name(region: str) -> str:
    """Service Catalog's bucket for launches in `region`."""
    return f"servicecatalog-provisioning-{region}-{SERVICE_ACCOUNT_ID}"


def copy_url(region: str, key: str) -> str:
    return f"https://{bucket_name(region)}.s3.{region}.amazonaws.com/{key}"


def put_copy(
    *,
    account_id: str,
    region: str,
    partition: str,
    provisioned_product_id: str,
    record_id: str,
    body: str,
) -> str:
    """Store `body` as the template of one record's stack operation; return the copy's URL.

    The key is `<launching account>/<provisioned product>/<record>.template`: one copy per
    operation, under the prefix the bucket policy opens to that account only.
    """
    backend = s3_backends[SERVICE_ACCOUNT_ID][partition]
    bucket = _bucket(backend, account_id, region, partition)
    key = f"{account_id}/{provisioned_product_id}/{record_id}.template"
    stored = backend.put_object(bucket, key, body.encode("utf-8"))
    backend.put_object_tagging(stored, dict([PROVISIONING_TAG]))
    return copy_url(region, key)


def read_copy(url: str, *, principal_arn: str, account_id: str, partition: str, stack: str) -> str:
    """The copy at `url`, read by `principal_arn` as CloudFormation reads a stack's template."""
    return s3urls.read_as(
        url,
        principal_arn,
        purpose=f"template of stack {stack}",
        account_id=account_id,
        partition=partition,
    )


def _bucket(backend: Any, account_id: str, region: str, partition: str) -> str:
    """The bucket, created on first use, with `account_id` among the readers of its policy."""
    name = bucket_name(region)
    if name not in backend.buckets:
        backend.create_bucket(name, region)
        backend.put_public_access_block(
            name,
            {
                "BlockPublicAcls": "true",
                "IgnorePublicAcls": "true",
                "BlockPublicPolicy": "true",
                "RestrictPublicBuckets": "true",
            },
        )
    bucket = backend.get_bucket(name)
    policy: dict[str, Any] = (
        json.loads(bucket.policy) if bucket.policy else {"Version": "2012-10-17", "Statement": []}
    )
    statements: list[dict[str, Any]] = policy["Statement"]
    sid = f"Account{account_id}ReadsItsCopies"
    if not any(statement.get("Sid") == sid for statement in statements):
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "s3:GetObject",
                "Resource": f"arn:{partition}:s3:::{name}/{account_id}/*",
            }
        )
        backend.put_bucket_policy(name, json.dumps(policy).encode())
    return name
