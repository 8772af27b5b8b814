"""Lambda functions act as their execution roles while IAM is enforced (the default).

Lambda Developer Guide, "Defining Lambda function permissions with an execution role": the
function's code gets temporary credentials of its role, from a session Lambda starts as
lambda.amazonaws.com (the role's trust policy must allow it; the session is named after the
function). The Lambda API Reference's InvalidParameterValueException: CreateFunction and
UpdateFunctionConfiguration refuse a role "that AWS Lambda is unable to assume". "Using Lambda
with Amazon SQS": the event source mapping polls with the execution role, which needs
sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import ROLE_POLICY, LocalAwsHandle, policy_document, unique

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
PROBE = Path(__file__).parent / "fixtures" / "lambda" / "probe" / "app.py"
TRUST_LAMBDA = {"Service": "lambda.amazonaws.com"}


def _code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("app.py", (2020, 1, 1, 0, 0, 0)), PROBE.read_bytes())
    return buffer.getvalue()


@pytest.fixture
def aws(enforcing: LocalAwsHandle) -> LocalAwsHandle:
    return enforcing


def _function(aws: LocalAwsHandle, role: str, handler: str) -> str:
    name = unique("fn")
    aws.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler=handler,
        Code={"ZipFile": _code()},
        Timeout=30,
    )
    return name


def _invoke(aws: LocalAwsHandle, name: str, event: Any) -> tuple[str | None, Any]:
    response = aws.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read() or b"null")


def _messages(sqs: Any, url: str) -> tuple[str, str]:
    """The queue's visible and in-flight message counts."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        attributes["ApproximateNumberOfMessages"],
        attributes["ApproximateNumberOfMessagesNotVisible"],
    )


def _parameter(aws: LocalAwsHandle, name: str) -> str | None:
    ssm = aws.client("ssm")
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def test_a_function_can_do_only_what_its_role_allows(aws: LocalAwsHandle) -> None:
    prefix = unique("/exec")
    role = aws.iam_role(
        "exec",
        TRUST_LAMBDA,
        {
            "Effect": "Allow",
            "Action": "ssm:PutParameter",
            "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{prefix}/allowed/*",
        },
    )
    name = _function(aws, role, "app.put_parameter")

    assert _invoke(aws, name, {"name": f"{prefix}/allowed/a", "value": "v"}) == (None, "stored")
    assert _parameter(aws, f"{prefix}/allowed/a") == "v"

    error, payload = _invoke(aws, name, {"name": f"{prefix}/other/b", "value": "v"})
    role_name = role.rsplit("/", 1)[1]
    assert error == "Unhandled"
    assert payload["errorType"] == "AccessDeniedException"
    assert payload["errorMessage"] == (
        "An error occurred (AccessDeniedException) when calling the PutParameter operation: "
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name} is not authorized to "
        f"perform: ssm:PutParameter on resource: arn:aws:ssm:{REGION}:{ACCOUNT}:parameter"
        f"{prefix}/other/b because no identity-based policy allows the ssm:PutParameter action"
    )
    assert _parameter(aws, f"{prefix}/other/b") is None


def test_a_role_lambda_cannot_assume_is_refused(aws: LocalAwsHandle) -> None:
    lambda_ = aws.client("lambda")
    untrusting = aws.iam_role("exec", {"Service": "ec2.amazonaws.com"})
    missing = f"arn:aws:iam::{ACCOUNT}:role/{unique('never-created')}"
    for role in (untrusting, missing):
        with pytest.raises(ClientError) as refused:
            _function(aws, role, "app.echo")
        assert refused.value.response["Error"] == {
            "Code": "InvalidParameterValueException",
            "Message": "The role defined for the function cannot be assumed by Lambda.",
        }

    name = _function(aws, aws.iam_role("exec", TRUST_LAMBDA), "app.echo")
    with pytest.raises(ClientError, match="cannot be assumed by Lambda"):
        lambda_.update_function_configuration(FunctionName=name, Role=untrusting)
    assert _invoke(aws, name, {"still": "runs"})[1]["event"] == {"still": "runs"}


def test_the_event_source_mapping_polls_as_the_execution_role(aws: LocalAwsHandle) -> None:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=unique("polled"), Attributes={"VisibilityTimeout": "2"})[
        "QueueUrl"
    ]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    prefix = unique("/polled")
    store = {
        "Effect": "Allow",
        "Action": "ssm:PutParameter",
        "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{prefix}/*",
    }
    consume = {
        "Effect": "Allow",
        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
        "Resource": queue_arn,
    }
    lambda_ = aws.client("lambda")

    unable = _function(aws, aws.iam_role("exec", TRUST_LAMBDA, store), "app.sqs_batch")
    with pytest.raises(ClientError) as refused:
        lambda_.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=unable)
    assert refused.value.response["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "The provided execution role does not have permissions to call "
        "ReceiveMessage on SQS",
    }

    role = aws.iam_role("exec", TRUST_LAMBDA, store, consume)
    name = _function(aws, role, "app.sqs_batch")
    lambda_.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name)
    sqs.send_message(QueueUrl=url, MessageBody=f"{prefix}/first")
    deadline = time.monotonic() + 60
    while _parameter(aws, f"{prefix}/first") is None:
        assert time.monotonic() < deadline, "the mapping never delivered the first message"
        time.sleep(0.2)
    # ... and deleted it (after the function returned) before the role loses the queue.
    while _messages(sqs, url) != ("0", "0"):
        assert time.monotonic() < deadline, "the mapping never deleted the first message"
        time.sleep(0.2)

    # The role loses the queue: the poller is refused and the message stays in the queue.
    aws.client("iam").put_role_policy(
        RoleName=role.rsplit("/", 1)[1],
        PolicyName=ROLE_POLICY,
        PolicyDocument=policy_document(store),
    )
    sqs.send_message(QueueUrl=url, MessageBody=f"{prefix}/second")
    # A window of several of the poller's one-second intervals: a refusal shows as nothing.
    window = time.monotonic() + 4
    while time.monotonic() < window:
        assert _parameter(aws, f"{prefix}/second") is None
        time.sleep(0.5)
    assert sum(map(int, _messages(sqs, url))) == 1
