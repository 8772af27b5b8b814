"""With enforcement on, requests signed by IAM users and assumed roles are authorized by their
policies, with the resource ARN AWS uses and each service's AccessDenied error.

The session's server runs without enforcement unless LOCALAWS_ENFORCE_IAM=1; this module turns
it on through the control API (`--enforce-iam` at start does the same) and restores it when it
ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"


def switched(aws: LocalAwsHandle, enforce: bool) -> Iterator[LocalAwsHandle]:
    """The server with enforcement on or off, as it was again afterwards (a whole run may have
    it on: LOCALAWS_ENFORCE_IAM=1)."""
    before = aws.control("iam-enforcement")["enforce"]
    assert aws.control("iam-enforcement", {"enforce": enforce}) == {"enforce": enforce}
    try:
        yield aws
    finally:
        aws.control("iam-enforcement", {"enforce": before})


@pytest.fixture(scope="module")
def enforcing(local_aws: LocalAwsHandle) -> Iterator[LocalAwsHandle]:
    yield from switched(local_aws, enforce=True)


@pytest.fixture
def not_enforcing(local_aws: LocalAwsHandle) -> Iterator[LocalAwsHandle]:
    yield from switched(local_aws, enforce=False)


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def user_with(aws: LocalAwsHandle, *statements: dict[str, Any]) -> tuple[str, boto3.Session]:
    arn, session = aws.iam_user("reader")
    if statements:
        aws.client("iam").put_user_policy(
            UserName=arn.rsplit("/", 1)[1],
            PolicyName="access",
            PolicyDocument=document(*statements),
        )
    return arn, session


def client(aws: LocalAwsHandle, session: boto3.Session, service: str) -> Any:
    return session.client(service, endpoint_url=aws.endpoint_url)  # type: ignore[call-overload]


def denied(error: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = error.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


# First: the module's fixture turns enforcement on for the tests after it.
def test_without_the_switch_nothing_is_checked(not_enforcing: LocalAwsHandle) -> None:
    name = unique("unchecked")
    not_enforcing.client("ssm").put_parameter(Name=name, Value="v", Type="String")
    _, session = user_with(not_enforcing)  # no policy at all
    ssm = client(not_enforcing, session, "ssm")
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "v"


def test_s3_objects_follow_the_users_policy(enforcing: LocalAwsHandle) -> None:
    admin = enforcing.client("s3")
    bucket = unique("enforced")
    admin.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    for key in ("shared/a.txt", "private/b.txt"):
        admin.put_object(Bucket=bucket, Key=key, Body=b"x")
    arn, session = user_with(
        enforcing,
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/shared/*",
        },
    )
    s3 = client(enforcing, session, "s3")

    assert s3.get_object(Bucket=bucket, Key="shared/a.txt")["Body"].read() == b"x"
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=bucket, Key="private/b.txt")
    assert denied(error) == (
        403,
        "AccessDenied",
        f"User: {arn} is not authorized to perform: s3:GetObject on resource: "
        f"arn:aws:s3:::{bucket}/private/b.txt because no identity-based policy allows the "
        "s3:GetObject action",
    )
    with pytest.raises(ClientError, match="s3:ListBucket"):
        s3.list_objects_v2(Bucket=bucket)
    v4 = session.client(
        "s3", endpoint_url=enforcing.endpoint_url, config=Config(signature_version="s3v4")
    )
    for signer in (s3, v4):  # presigned URLs: boto3's default (SigV2) and SigV4
        for key, status in (("shared/a.txt", 200), ("private/b.txt", 403)):
            url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
            assert urllib3.request("GET", url).status == status, (key, url)


def test_secrets_follow_an_assumed_roles_policy(enforcing: LocalAwsHandle) -> None:
    iam, sts = enforcing.client("iam"), enforcing.client("sts")
    secrets = enforcing.client("secretsmanager")
    allowed = secrets.create_secret(Name=unique("app/token"), SecretString="s1")["ARN"]
    other = secrets.create_secret(Name=unique("ops/token"), SecretString="s2")["ARN"]
    role = iam.create_role(
        RoleName=unique("reader"),
        AssumeRolePolicyDocument=document(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ),
    )["Role"]
    iam.put_role_policy(
        RoleName=role["RoleName"],
        PolicyName="read-app-secrets",
        PolicyDocument=document(
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/*",
            }
        ),
    )
    credentials = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="job")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )
    reader = client(enforcing, session, "secretsmanager")

    assert reader.get_secret_value(SecretId=allowed)["SecretString"] == "s1"
    with pytest.raises(ClientError) as error:
        reader.get_secret_value(SecretId=other)
    assert denied(error) == (
        400,
        "AccessDeniedException",
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/job is not authorized "
        f"to perform: secretsmanager:GetSecretValue on resource: {other} because no "
        "identity-based policy allows the secretsmanager:GetSecretValue action",
    )


def test_sqs_queues_follow_the_users_policy(enforcing: LocalAwsHandle) -> None:
    admin = enforcing.client("sqs")
    mine = admin.create_queue(QueueName=unique("jobs"))["QueueUrl"]
    theirs = admin.create_queue(QueueName=unique("other"))["QueueUrl"]
    mine_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{mine.rsplit('/', 1)[1]}"
    _, session = user_with(
        enforcing, {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": mine_arn}
    )
    sqs = client(enforcing, session, "sqs")

    sqs.send_message(QueueUrl=mine, MessageBody="hello")
    with pytest.raises(ClientError) as error:
        sqs.send_message(QueueUrl=theirs, MessageBody="hello")
    status, code, message = denied(error)
    assert (status, code) == (403, "AccessDenied")
    assert message.endswith(  # SQS writes the action in lower case
        f"perform: sqs:sendmessage on resource: {mine_arn.rsplit(':', 1)[0]}:"
        f"{theirs.rsplit('/', 1)[1]} because no identity-based policy allows the sqs:sendmessage "
        "action"
    )


def test_ssm_parameters_follow_an_explicit_deny(enforcing: LocalAwsHandle) -> None:
    admin = enforcing.client("ssm")
    prefix = f"/{unique('app')}"
    for name in ("public", "secret"):
        admin.put_parameter(Name=f"{prefix}/{name}", Value=name, Type="String")
    parameters = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{prefix}"
    arn, session = user_with(
        enforcing,
        {"Effect": "Allow", "Action": "ssm:GetParameter*", "Resource": f"{parameters}/*"},
        {"Effect": "Deny", "Action": "ssm:*", "Resource": f"{parameters}/secret"},
    )
    ssm = client(enforcing, session, "ssm")

    assert ssm.get_parameter(Name=f"{prefix}/public")["Parameter"]["Value"] == "public"
    with pytest.raises(ClientError) as error:
        ssm.get_parameter(Name=f"{prefix}/secret")
    assert denied(error)[1:] == (
        "AccessDeniedException",
        f"User: {arn} is not authorized to perform: ssm:GetParameter on resource: "
        f"{parameters}/secret with an explicit deny in an identity-based policy",
    )
    with pytest.raises(ClientError, match="explicit deny"):
        ssm.get_parameters(Names=[f"{prefix}/public", f"{prefix}/secret"])


def test_the_administrator_credentials_are_not_checked(enforcing: LocalAwsHandle) -> None:
    bucket = unique("admin")
    s3 = enforcing.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def test_sqs_batches_need_the_single_message_action(enforcing: LocalAwsHandle) -> None:
    queue = enforcing.client("sqs").create_queue(QueueName=unique("batch"))["QueueUrl"]
    _, session = user_with(
        enforcing, {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}
    )
    sqs = client(enforcing, session, "sqs")

    sent = sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "MessageBody": "a"}])
    assert [m["Id"] for m in sent["Successful"]] == ["1"]
    with pytest.raises(ClientError, match="sqs:receivemessage"):
        sqs.receive_message(QueueUrl=queue)


UBUNTU = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"


def test_public_parameters_have_no_owner_account(enforcing: LocalAwsHandle) -> None:
    """Public parameters' ARNs have no account: a policy naming them so lets users read them,
    one naming the caller's account does not."""
    public = f"arn:aws:ssm:{REGION}::parameter{UBUNTU}"
    _, reader = user_with(
        enforcing,
        {
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": "arn:aws:ssm:*::parameter/aws/service/*",
        },
    )
    _, mistaken = user_with(
        enforcing,
        {
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": f"arn:aws:ssm:*:{ACCOUNT}:parameter/aws/service/*",
        },
    )

    assert client(enforcing, reader, "ssm").get_parameter(Name=UBUNTU)["Parameter"]["Value"]
    with pytest.raises(ClientError) as error:
        client(enforcing, mistaken, "ssm").get_parameter(Name=UBUNTU)
    assert f"on resource: {public} because no identity-based policy" in denied(error)[2]


def test_assume_role_needs_the_trust_policys_external_id(enforcing: LocalAwsHandle) -> None:
    iam = enforcing.client("iam")
    role = iam.create_role(
        RoleName=unique("vendor"),
        AssumeRolePolicyDocument=document(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "Unique-ID-1234"}},
            }
        ),
    )["Role"]["Arn"]
    arn, session = user_with(
        enforcing, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role}
    )
    sts = client(enforcing, session, "sts")

    with pytest.raises(ClientError) as error:
        sts.assume_role(RoleArn=role, RoleSessionName="job")
    assert denied(error) == (
        403,
        "AccessDenied",
        f"User: {arn} is not authorized to perform: sts:AssumeRole on resource: {role} "
        "because no resource-based policy allows the sts:AssumeRole action",
    )
    assumed = sts.assume_role(RoleArn=role, RoleSessionName="job", ExternalId="Unique-ID-1234")
    assert assumed["AssumedRoleUser"]["Arn"].endswith("/job")
