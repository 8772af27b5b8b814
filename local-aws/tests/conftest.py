"""Fixtures for the local AWS's own tests: template upload and a test custom-resource provider."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from localaws.harness import LocalAwsHandle, unique

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def enforcing(local_aws: LocalAwsHandle) -> Iterator[LocalAwsHandle]:
    """The session's server with IAM enforced (its default) even in a run that turned it off
    (`LOCALAWS_ENFORCE_IAM=0`), and as it was again after the module."""
    before = local_aws.control("iam-enforcement")["enforce"]
    local_aws.control("iam-enforcement", {"enforce": True})
    try:
        yield local_aws
    finally:
        local_aws.control("iam-enforcement", {"enforce": before})


@pytest.fixture(scope="session")
def template_bucket(local_aws: LocalAwsHandle) -> str:
    name = unique("templates")
    local_aws.client("s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": local_aws.region}
    )
    return name


@pytest.fixture(scope="session")
def upload(local_aws: LocalAwsHandle, template_bucket: str) -> Callable[..., str]:
    """Put a template into the local S3; return its URL (host 127.0.0.1 or localhost)."""
    s3 = local_aws.client("s3")

    def put(body: str, host: str = "127.0.0.1") -> str:
        key = f"{unique('t')}.yml"
        s3.put_object(Bucket=template_bucket, Key=key, Body=body.encode())
        port = local_aws.endpoint_url.rsplit(":", 1)[1]
        return f"http://{host}:{port}/{template_bucket}/{key}"

    return put


@pytest.fixture(scope="session")
def provider_arn(local_aws: LocalAwsHandle) -> str:
    """The test provider (fixtures/provider.py) as a Lambda function on the local AWS."""
    iam = local_aws.client("iam")
    role = iam.create_role(
        RoleName=unique("provider"),
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    # It runs as this role (IAM is enforced): it records its invocations and nothing more.
    iam.put_role_policy(
        RoleName=role.rsplit("/", 1)[1],
        PolicyName="record-invocations",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "ssm:PutParameter",
                        "Resource": "arn:aws:ssm:*:*:parameter/invocations/*",
                    }
                ],
            }
        ),
    )
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.write(FIXTURES / "provider.py", "provider.py")
    function = local_aws.client("lambda").create_function(
        FunctionName=unique("provider"),
        Runtime="python3.13",
        Role=role,
        Handler="provider.handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=30,
    )
    return str(function["FunctionArn"])


@pytest.fixture
def invocations(local_aws: LocalAwsHandle) -> Callable[[str], list[dict[str, Any]]]:
    """The provider's recorded invocations for one Prefix, oldest first."""
    ssm = local_aws.client("ssm")

    def read(prefix: str) -> list[dict[str, Any]]:
        paginator = ssm.get_paginator("get_parameters_by_path")
        records = [
            json.loads(p["Value"]) | {"Version": p["Version"], "Modified": p["LastModifiedDate"]}
            for page in paginator.paginate(Path=f"/invocations/{prefix}", Recursive=True)
            for p in page["Parameters"]
        ]
        return sorted(records, key=lambda r: r["Modified"])

    return read
