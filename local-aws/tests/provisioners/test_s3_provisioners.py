"""S3 provisioners: the data bucket's configuration as the S3 API reports it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from localaws.cloudformation.provisioners import s3
from localaws.cloudformation.provisioners.base import (
    ProvisionError,
    ResourceContext,
)

Ctx = Callable[..., ResourceContext]

ALL_BLOCKED = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": "true",
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}
CORS = [
    {
        "AllowedMethods": ["GET"],
        "AllowedOrigins": ["*"],
        "AllowedHeaders": ["Authorization"],
        "MaxAge": 3000,
    },
    {
        "AllowedMethods": ["POST"],
        "AllowedOrigins": ["https://app.example.com"],
        "AllowedHeaders": ["Authorization"],
        "MaxAge": "3000",
        "Id": "upload",
    },
]
LIFECYCLE = [
    {
        "Id": "uploads",
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    },
    {
        "Id": "tmp",
        "Status": "Enabled",
        "Prefix": "tmp/",
        "ExpirationInDays": "30",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 10},
        "Transitions": [{"StorageClass": "GLACIER", "TransitionInDays": 90}],
    },
]


@pytest.fixture
def client() -> Any:
    return boto3.client("s3")


def data_bucket_props() -> dict[str, Any]:
    return {
        "BucketName": "example-data-abc123",
        "PublicAccessBlockConfiguration": ALL_BLOCKED,
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {
                    "ServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": "alias/data",
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
        "VersioningConfiguration": {"Status": "Enabled"},
        "LifecycleConfiguration": {"Rules": LIFECYCLE},
        "CorsConfiguration": {"CorsRules": CORS},
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "Tags": [{"Key": "Name", "Value": "data"}],
    }


def test_data_bucket_lifecycle(make_ctx: Ctx, client: Any) -> None:
    ctx = make_ctx("AWS::S3::Bucket", "DataBucket")
    props = data_bucket_props()
    made = s3.Bucket().create(ctx, props)
    name = made.physical_id

    assert name == "example-data-abc123"
    assert made.get_att("Arn") == "arn:aws:s3:::example-data-abc123"
    assert made.get_att("DomainName") == "example-data-abc123.s3.amazonaws.com"
    assert made.get_att("RegionalDomainName") == "example-data-abc123.s3.eu-west-1.amazonaws.com"
    block = client.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert block == {key: True for key in ALL_BLOCKED}
    rule = client.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][
        0
    ]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": "alias/data",
    }
    assert rule["BucketKeyEnabled"] is True
    assert client.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    rules = {r["ID"]: r for r in client.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]}
    assert rules["uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rules["tmp"]["Filter"] == {"Prefix": "tmp/"}
    assert rules["tmp"]["Expiration"] == {"Days": 30}
    assert rules["tmp"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 10}
    assert rules["tmp"]["Transitions"] == [{"Days": 90, "StorageClass": "GLACIER"}]
    cors = client.get_bucket_cors(Bucket=name)["CORSRules"]
    assert [(c["AllowedMethods"], c["AllowedOrigins"], c["MaxAgeSeconds"]) for c in cors] == [
        (["GET"], ["*"], 3000),
        (["POST"], ["https://app.example.com"], 3000),
    ]
    assert [c["AllowedHeaders"] for c in cors] == [["Authorization"], ["Authorization"]]
    ownership = client.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]
    assert ownership == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    tags = {t["Key"]: t["Value"] for t in client.get_bucket_tagging(Bucket=name)["TagSet"]}
    assert tags["Name"] == "data"
    assert tags["aws:cloudformation:logical-id"] == "DataBucket"

    updated = {
        **props,
        "CorsConfiguration": {"CorsRules": CORS[:1]},
        "VersioningConfiguration": {"Status": "Suspended"},
        "Tags": [{"Key": "Name", "Value": "data-v2"}],
    }
    del updated["LifecycleConfiguration"]
    del updated["PublicAccessBlockConfiguration"]
    s3.Bucket().update(ctx, made, props, updated)

    assert len(client.get_bucket_cors(Bucket=name)["CORSRules"]) == 1
    assert client.get_bucket_versioning(Bucket=name)["Status"] == "Suspended"
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
        client.get_bucket_lifecycle_configuration(Bucket=name)
    with pytest.raises(ClientError, match="NoSuchPublicAccessBlockConfiguration"):
        client.get_public_access_block(Bucket=name)
    tags = {t["Key"]: t["Value"] for t in client.get_bucket_tagging(Bucket=name)["TagSet"]}
    assert tags["Name"] == "data-v2"

    for _ in range(2):
        s3.Bucket().delete(ctx, made, updated)
    assert name not in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_bucket_with_objects_is_not_deleted(make_ctx: Ctx, client: Any) -> None:
    ctx = make_ctx("AWS::S3::Bucket", "DataBucket")
    made = s3.Bucket().create(ctx, {})
    client.put_object(Bucket=made.physical_id, Key="model.bin", Body=b"weights")

    with pytest.raises(ProvisionError, match="The bucket you tried to delete is not empty"):
        s3.Bucket().delete(ctx, made, {})
    assert client.head_bucket(Bucket=made.physical_id)


def test_generated_bucket_name_is_lower_case_and_fits(make_ctx: Ctx) -> None:
    ctx = make_ctx("AWS::S3::Bucket", "ExampleDataBucketForAllTheExecutionOutputsOfTheOrganization")
    made = s3.Bucket().create(ctx, {})

    assert made.physical_id == made.physical_id.lower()
    assert len(made.physical_id) <= 63


def test_access_logging_to_another_bucket(make_ctx: Ctx, client: Any) -> None:
    logs = s3.Bucket().create(make_ctx("AWS::S3::Bucket", "Logs"), {"BucketName": "access-logs"})
    s3.BucketPolicy().create(
        make_ctx("AWS::S3::BucketPolicy"),
        {
            "Bucket": logs.physical_id,
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": "arn:aws:s3:::access-logs/*",
                    }
                ],
            },
        },
    )
    s3.Bucket().create(
        make_ctx("AWS::S3::Bucket", "Data"),
        {
            "BucketName": "data",
            "LoggingConfiguration": {"DestinationBucketName": "access-logs", "LogFilePrefix": "d/"},
        },
    )

    enabled = client.get_bucket_logging(Bucket="data")["LoggingEnabled"]
    assert enabled == {"TargetBucket": "access-logs", "TargetPrefix": "d/"}


def test_bucket_policy_lifecycle(make_ctx: Ctx, client: Any) -> None:
    s3.Bucket().create(make_ctx("AWS::S3::Bucket"), {"BucketName": "example-data-x"})
    ctx = make_ctx("AWS::S3::BucketPolicy", "TlsOnly")
    deny_plain: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::example-data-x", "arn:aws:s3:::example-data-x/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    props = {"Bucket": "example-data-x", "PolicyDocument": deny_plain}
    made = s3.BucketPolicy().create(ctx, props)

    assert made.physical_id == "example-data-x"
    assert json.loads(client.get_bucket_policy(Bucket="example-data-x")["Policy"]) == deny_plain

    allow = {**deny_plain, "Statement": [{**deny_plain["Statement"][0], "Effect": "Allow"}]}
    s3.BucketPolicy().update(ctx, made, props, {**props, "PolicyDocument": allow})
    assert json.loads(client.get_bucket_policy(Bucket="example-data-x")["Policy"]) == allow

    for _ in range(2):
        s3.BucketPolicy().delete(ctx, made, props)
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        client.get_bucket_policy(Bucket="example-data-x")


# Canaries: stock moto CloudFormation behaviour this module replaces.


def test_canary_moto_drops_bucket_configuration(stock_stack: Any, client: Any) -> None:
    stock_stack(
        {
            "Resources": {
                "Bucket": {
                    "Type": "AWS::S3::Bucket",
                    "Properties": {
                        "BucketName": "canary-bucket",
                        "PublicAccessBlockConfiguration": ALL_BLOCKED,
                        "VersioningConfiguration": {"Status": "Enabled"},
                        "LifecycleConfiguration": {"Rules": LIFECYCLE},
                        "CorsConfiguration": {"CorsRules": CORS},
                    },
                }
            }
        }
    )
    assert "Status" not in client.get_bucket_versioning(Bucket="canary-bucket")
    for read, error in (
        (client.get_public_access_block, "NoSuchPublicAccessBlockConfiguration"),
        (client.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration"),
        (client.get_bucket_cors, "NoSuchCORSConfiguration"),
    ):
        with pytest.raises(ClientError, match=error):
            read(Bucket="canary-bucket")


def test_canary_moto_has_no_bucket_policy_type(stock_stack: Any, client: Any) -> None:
    stock_stack(
        {
            "Resources": {
                "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "canary-b"}},
                "Policy": {
                    "Type": "AWS::S3::BucketPolicy",
                    "Properties": {
                        "Bucket": {"Ref": "Bucket"},
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Deny",
                                    "Principal": "*",
                                    "Action": "s3:*",
                                    "Resource": "arn:aws:s3:::canary-b/*",
                                }
                            ],
                        },
                    },
                },
            }
        },
        skipped=("AWS::S3::BucketPolicy",),
    )
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        client.get_bucket_policy(Bucket="canary-b")
