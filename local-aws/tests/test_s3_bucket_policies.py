"""Bucket policies on the local S3 judge object requests as AWS does over its HTTPS endpoint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique


def deny(bucket: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }
    if condition:
        statement["Condition"] = condition
    return statement


@pytest.fixture
def s3(local_aws: LocalAwsHandle) -> Any:
    return local_aws.client("s3")


def bucket_with(s3: Any, *statements: Any) -> str:
    bucket = unique("policy-test")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    policy = {"Version": "2012-10-17", "Statement": [s(bucket) for s in statements]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    return bucket


def test_a_tls_only_policy_lets_requests_through(s3: Any) -> None:
    bucket = bucket_with(
        s3,
        lambda b: deny(b, {"Bool": {"aws:SecureTransport": "false"}}),
        lambda b: deny(b, {"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
    )

    s3.put_object(Bucket=bucket, Key="data.csv", Body=b"1,2")
    assert s3.get_object(Bucket=bucket, Key="data.csv")["Body"].read() == b"1,2"


@pytest.mark.parametrize(
    "condition",
    [
        None,
        {"Bool": {"aws:SecureTransport": "true"}},
        {"NumericGreaterThanEquals": {"s3:TlsVersion": ["1.2", "1.3"]}},
    ],
)
def test_a_deny_whose_conditions_hold_denies(s3: Any, condition: dict[str, Any] | None) -> None:
    bucket = bucket_with(s3, lambda b: deny(b, condition))

    with pytest.raises(ClientError, match="Forbidden"):
        s3.put_object(Bucket=bucket, Key="data.csv", Body=b"1,2")


def test_a_condition_on_a_key_the_request_lacks_does_not_hold(s3: Any) -> None:
    bucket = bucket_with(s3, lambda b: deny(b, {"StringEquals": {"aws:SourceVpce": "vpce-1a2b"}}))

    s3.put_object(Bucket=bucket, Key="data.csv", Body=b"1,2")
