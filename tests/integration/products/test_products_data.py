"""Valohai's data bucket and the roles that reach it, read back from S3 and IAM."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.products import (
    FOREIGN_MASTER,
    REGION,
    Aws,
    Setup,
    allowed,
    as_list,
    denied,
    granted_actions,
    resource_tags,
    role_policies,
)

ACCOUNT = "123456789012"
DEFAULT_SUFFIX = f"{ACCOUNT}-{REGION}"
BUCKET_ACTIONS = {
    "s3:GetBucketLocation",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
}
OBJECT_ACTIONS = {
    "s3:AbortMultipartUpload",
    "s3:GetObject",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
}


@pytest.fixture(scope="module")
def s3(aws: Aws) -> Any:
    return aws("s3")


@pytest.fixture(scope="module")
def bucket(setup: Setup) -> str:
    return setup.outputs["DataBucketName"]


def test_the_bucket_is_named_for_the_suffix_and_blocks_all_public_access(
    s3: Any, bucket: str
) -> None:
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]

    # No Suffix given: the account and region keep the name unique.
    assert bucket == f"valohai-data-{DEFAULT_SUFFIX}"
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert resource_tags(tags) == {"valohai": "1"}


def test_the_bucket_is_encrypted_and_reachable_over_tls_only(s3: Any, bucket: str) -> None:
    [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    objects = f"arn:aws:s3:::{bucket}/data/output.csv"
    plain = {"aws:SecureTransport": "false", "s3:TlsVersion": "1.2"}
    old_tls = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.0"}
    modern = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}

    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    for action in ("s3:GetObject", "s3:PutObject"):
        assert denied([policy], action, objects, plain), action
        assert denied([policy], action, objects, old_tls), action
        assert not denied([policy], action, objects, modern), action
    assert denied([policy], "s3:ListBucket", f"arn:aws:s3:::{bucket}", plain)
    # A pure deny list: whoever may use the bucket is decided by IAM, not by this policy.
    assert {s["Effect"] for s in policy["Statement"]} == {"Deny"}


def test_cors_lets_browsers_download_from_anywhere_and_upload_from_valohai(
    aws: Aws, s3: Any, setup: Setup, bucket: str
) -> None:
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    stack = aws("cloudformation").describe_stacks(StackName=setup.stack_id)["Stacks"][0]
    api_url = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["ValohaiApiUrl"]
    summary = aws("cloudformation").get_template_summary(StackName=setup.stack_id)
    [declared] = [p for p in summary["Parameters"] if p["ParameterKey"] == "ValohaiApiUrl"]

    assert [{k: v for k, v in r.items() if k != "ID"} for r in rules] == [
        {
            "AllowedMethods": ["GET"],
            "AllowedOrigins": ["*"],
            "AllowedHeaders": ["Authorization"],
            "MaxAgeSeconds": 3000,
        },
        {
            "AllowedMethods": ["POST"],
            "AllowedOrigins": [api_url],
            "AllowedHeaders": ["Authorization"],
            "MaxAgeSeconds": 3000,
        },
    ]
    # Uploads come from the Valohai the setup reports to: app.valohai.com unless told otherwise.
    assert declared["DefaultValue"] == "https://app.valohai.com"


def test_the_multipart_role_is_valohai_masters_and_limited_to_the_bucket(
    aws: Aws, setup: Setup, bucket: str
) -> None:
    iam = aws("iam")
    role = iam.get_role(RoleName=f"ValohaiS3MultipartRole-{DEFAULT_SUFFIX}")["Role"]
    policies = role_policies(iam, role["RoleName"])
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]

    assert role["Arn"] == setup.outputs["MultipartRoleArn"]
    assert (trust["Effect"], trust["Action"]) == ("Allow", "sts:AssumeRole")
    assert trust["Principal"] == {"AWS": setup.outputs["ValohaiMasterRoleARN"]}
    assert granted_actions(policies) == BUCKET_ACTIONS | OBJECT_ACTIONS
    for action in BUCKET_ACTIONS:
        assert allowed(policies, action, f"arn:aws:s3:::{bucket}"), action
        assert not allowed(policies, action, "arn:aws:s3:::another-bucket"), action
    for action in OBJECT_ACTIONS:
        assert allowed(policies, action, f"arn:aws:s3:::{bucket}/big/file.bin"), action
        assert not allowed(policies, action, "arn:aws:s3:::another-bucket/file.bin"), action
    assert resource_tags(role["Tags"]) == {"valohai": "1"}


def test_valohai_master_gets_the_bucket_and_the_multipart_role(
    aws: Aws, setup: Setup, bucket: str
) -> None:
    iam = aws("iam")
    [access] = [
        iam.get_role_policy(RoleName="ValohaiMaster", PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName="ValohaiMaster")["PolicyNames"]
        if name == f"valohai-data-{DEFAULT_SUFFIX}"
    ]

    for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket"):
        resource = f"arn:aws:s3:::{bucket}" + ("" if action == "s3:ListBucket" else "/x")
        assert allowed([access], action, resource), action
        assert not allowed([access], action, "arn:aws:s3:::another-bucket/x"), action
    # Nothing that changes the bucket itself: its policy, its public access block, its
    # encryption, its CORS rules, its existence.
    for action in (
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketCORS",
        "s3:PutBucketAcl",
        "s3:PutLifecycleConfiguration",
        "s3:DeleteBucket",
        "s3:PutBucketOwnershipControls",
    ):
        assert not allowed([access], action, f"arn:aws:s3:::{bucket}"), action
    assert allowed([access], "sts:AssumeRole", setup.outputs["MultipartRoleArn"])
    assert [r for s in access["Statement"] for r in as_list(s["Resource"])] == [
        f"arn:aws:s3:::{bucket}",
        f"arn:aws:s3:::{bucket}/*",
        setup.outputs["MultipartRoleArn"],
    ]


def test_the_multipart_role_trusts_this_accounts_valohai_master_whatever_the_launch_said(
    aws: Aws, setups: dict[str, Setup]
) -> None:
    foreign = setups["foreign_master"]
    iam = aws("iam")
    role_name = foreign.outputs["MultipartRoleArn"].rsplit("/", 1)[-1]
    [trust] = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert foreign.parameters["ValohaiMasterRoleARN"] == FOREIGN_MASTER
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ValohaiMaster"}
    # Its bucket access goes to this account's ValohaiMaster too.
    policies = iam.list_role_policies(RoleName="ValohaiMaster")["PolicyNames"]
    assert foreign.outputs["DataBucketName"] in policies
