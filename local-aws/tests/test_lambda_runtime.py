"""Lambda functions run from their uploaded code, through boto3 against a moto server.

Each behaviour has a canary next to it: the same call against stock moto (in `mock_aws`, without
the extension), asserting what moto 5.2.5 does without Docker. When a canary fails, moto has
changed: check whether the extension can go.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from localaws import devtls, lambda_runtime
from localaws.config import LocalAwsConfig, get_config, set_config
from moto import mock_aws
from moto.awslambda.utils import get_backend
from moto.server import ThreadedMotoServer

#: Functions run against a moto server in this process, with the local Lambda runtime.
pytestmark = pytest.mark.localaws

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
CREDENTIALS = {
    "region_name": REGION,
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}
FIXTURES = Path(__file__).parent / "fixtures" / "lambda"
CURRENT_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

Clients = Callable[[str], Any]


def _zip(directory: Path) -> bytes:
    """The directory as a zip, byte-identical every time (fixed timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(directory.rglob("*.py")):
            info = zipfile.ZipInfo(str(path.relative_to(directory)), (2020, 1, 1, 0, 0, 0))
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


PROBE = _zip(FIXTURES / "probe")
BROKEN = _zip(FIXTURES / "broken")


def _deploy(client: Clients, handler: str, code: bytes = PROBE, **settings: Any) -> str:
    """Create a function (and its role) with a fresh name; return the name."""
    name = f"fn-{uuid.uuid4().hex[:12]}"
    role = client("iam").create_role(
        RoleName=f"role-{name}",
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
    client("lambda").create_function(
        FunctionName=name,
        Runtime=settings.pop("Runtime", "python3.13"),
        Role=role,
        Handler=handler,
        Code={"ZipFile": code},
        **settings,
    )
    return name


def _invoke(client: Clients, name: str, event: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = client("lambda").invoke(
        FunctionName=name, Payload=json.dumps(event).encode(), **kwargs
    )
    return response, json.loads(response["Payload"].read() or b"null")


def _eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """The first truthy result of `check`, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while (result := check()) is None or result is False:
        if time.monotonic() > deadline:
            pytest.fail(f"nothing happened within {timeout} s")
        time.sleep(0.1)
    return result


def _parameter(client: Clients, name: str) -> str | None:
    try:
        return str(client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
    except client("ssm").exceptions.ParameterNotFound:
        return None


def _log_messages(client: Clients, group: str) -> list[str]:
    logs = client("logs")
    try:
        events = logs.filter_log_events(logGroupName=group)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [event["message"] for event in events]


def _queue(client: Clients, name: str, **attributes: str) -> tuple[str, str]:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn["Attributes"]["QueueArn"]


def _python_available(version: str) -> bool:
    """Whether this machine has a working python<version> (PATH or pyenv)."""
    candidates = [shutil.which(f"python{version}")]
    candidates += [str(p) for p in Path.home().glob(f".pyenv/versions/{version}*/bin/python*")]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('{}.{}'.format(*sys.version_info[:2]))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return True
    return False


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server in this process on 127.0.0.1, with the Lambda executor: its endpoint."""
    state = tmp_path_factory.mktemp("localaws")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        previous: LocalAwsConfig | None = get_config()
    except RuntimeError:
        previous = None
    set_config(
        LocalAwsConfig(
            endpoint_url=endpoint,
            state_dir=state,
            ca_bundle=devtls.load_or_create(state / "ca").bundle,
        )
    )
    was_installed = lambda_runtime.is_installed()
    lambda_runtime.install()
    yield endpoint
    if not was_installed:
        lambda_runtime.uninstall()
    if previous is not None:
        set_config(previous)
    server.stop()


@pytest.fixture
def aws(moto_server: str) -> Clients:
    """boto3 clients of the local AWS, by service name."""
    return lambda service: boto3.client(service, endpoint_url=moto_server, **CREDENTIALS)


@pytest.fixture
def stock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    """boto3 clients of stock moto (`mock_aws`, the extension removed for the test)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    was_installed = lambda_runtime.is_installed()
    lambda_runtime.uninstall()
    with mock_aws():
        yield lambda service: boto3.client(service, **CREDENTIALS)
    if was_installed:
        lambda_runtime.install()


# --- running the code -------------------------------------------------------------------------


def test_request_response_returns_the_handlers_result(aws: Clients) -> None:
    name = _deploy(aws, "app.echo")

    response, payload = _invoke(aws, name, {"hello": "world"}, LogType="Tail")

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert payload["event"] == {"hello": "world"}
    tail = base64.b64decode(response["LogResult"]).decode()
    assert 'echo {"hello": "world"}' in tail
    assert re.search(r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms", tail, re.MULTILINE)


def test_stock_moto_does_not_run_the_code(stock: Clients) -> None:
    name = _deploy(stock, "app.echo")

    response = stock("lambda").invoke(FunctionName=name, Payload=b'{"hello": "world"}')

    assert response["FunctionError"] == "Handled"
    assert response["Payload"].read().startswith(b"error running docker")


def test_an_unhandled_exception_gives_lambdas_error_payload(aws: Clients) -> None:
    name = _deploy(aws, "app.fail")

    response, payload = _invoke(aws, name, {"what": "this"})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "cannot handle this"
    assert any("app.py" in frame and "in fail" in frame for frame in payload["stackTrace"])


def test_a_missing_dependency_is_an_import_module_error(aws: Clients) -> None:
    name = _deploy(aws, "app.handler", code=BROKEN)

    response, payload = _invoke(aws, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"] == (
        "Unable to import module 'app': No module named 'not_a_packaged_dependency'"
    )


def test_the_server_environment_does_not_leak_into_the_function(aws: Clients) -> None:
    """boto3 comes from the runtime directory; moto (installed on the server) is not there."""
    name = _deploy(aws, "app.describe")

    _, payload = _invoke(aws, name, {"variables": ["LAMBDA_RUNTIME_DIR"]})

    assert payload["moto_importable"] is False
    assert payload["boto3"].startswith(payload["environ"]["LAMBDA_RUNTIME_DIR"])


def test_a_handler_past_its_timeout_is_killed(aws: Clients) -> None:
    name = _deploy(aws, "app.sleep", Timeout=1)

    started = time.monotonic()
    response, payload = _invoke(aws, name, {"seconds": 60}, LogType="Tail")
    elapsed = time.monotonic() - started

    assert elapsed < 30  # killed at its 1 s timeout, not left to sleep its 60 s (slack for load)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Task timed out after 1.00 seconds")
    tail = base64.b64decode(response["LogResult"]).decode()
    pid = int(re.search(r"^pid (\d+)$", tail, re.MULTILINE).group(1))  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_handler_sees_lambdas_variables_and_context(aws: Clients, moto_server: str) -> None:
    name = _deploy(
        aws,
        "app.describe",
        MemorySize=256,
        Timeout=5,
        Environment={"Variables": {"GREETING": "hi", "AWS_REGION": "us-east-1"}},
    )
    variables = [
        "GREETING",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
        "AWS_EXECUTION_ENV",
        "TZ",
        "AWS_ENDPOINT_URL",
        "SSL_CERT_FILE",
        "AWS_ACCESS_KEY_ID",
    ]

    _, payload = _invoke(aws, name, {"variables": variables})

    environ, context = payload["environ"], payload["context"]
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    assert environ["GREETING"] == "hi"
    assert environ["AWS_REGION"] == environ["AWS_DEFAULT_REGION"] == REGION  # reserved
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == context["function_name"] == name
    assert environ["AWS_LAMBDA_FUNCTION_VERSION"] == context["function_version"] == "$LATEST"
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == context["memory_limit_in_mb"] == "256"
    assert environ["AWS_LAMBDA_LOG_GROUP_NAME"] == context["log_group_name"]
    assert context["log_group_name"] == f"/aws/lambda/{name}"
    assert environ["AWS_LAMBDA_LOG_STREAM_NAME"] == context["log_stream_name"]
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", context["log_stream_name"])
    assert environ["_HANDLER"] == "app.describe"
    assert environ["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert environ["TZ"] == ":UTC"
    assert environ["AWS_ENDPOINT_URL"] == moto_server
    assert Path(environ["SSL_CERT_FILE"]).is_file()
    assert environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert Path(environ["LAMBDA_TASK_ROOT"], "app.py").is_file()
    assert context["invoked_function_arn"] == arn
    assert uuid.UUID(context["aws_request_id"])
    first, second = payload["remaining"]
    assert 4000 < first <= 5000
    assert first - second >= 200


def test_the_functions_layers_are_importable(aws: Clients) -> None:
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as archive:
        archive.writestr("python/layered.py", "VALUE = 'from a layer'\n")
    published = aws("lambda").publish_layer_version(
        LayerName="shared", Content={"ZipFile": layer.getvalue()}
    )
    name = _deploy(aws, "app.from_layer", Layers=[published["LayerVersionArn"]])

    _, payload = _invoke(aws, name, {})

    assert payload == "from a layer"


def test_the_handler_calls_back_into_the_local_aws(aws: Clients) -> None:
    name = _deploy(aws, "app.put_parameter")

    _, payload = _invoke(aws, name, {"name": f"/{name}/stored", "value": "by the function"})

    assert payload == "stored"
    assert _parameter(aws, f"/{name}/stored") == "by the function"


def test_the_python_api_returns_lambdas_answer_and_the_logs(aws: Clients) -> None:
    """What the local CloudFormation engine calls, with a moto function object."""
    name = _deploy(aws, "app.echo")
    fn = get_backend(ACCOUNT, REGION).get_function(name)

    result = lambda_runtime.invoke(fn, {"direct": True})
    dry_run = lambda_runtime.invoke(fn, {"direct": "dry"}, invocation_type="DryRun")

    assert result.status_code == 200
    assert json.loads(result.payload)["event"] == {"direct": True}
    assert result.function_error is None
    assert f"START RequestId: {result.request_id} Version: $LATEST" in result.logs
    assert 'echo {"direct": true}' in result.logs
    assert result.duration_ms > 0
    assert dry_run.status_code == 204
    assert 'echo {"direct": "dry"}' not in "".join(_log_messages(aws, f"/aws/lambda/{name}"))


# --- logs -------------------------------------------------------------------------------------


def test_logs_land_in_cloudwatch_logs(aws: Clients) -> None:
    name = _deploy(aws, "app.echo")
    custom = _deploy(aws, "app.echo", LoggingConfig={"LogGroup": "/custom/group"})

    _invoke(aws, name, {"n": 1})
    _invoke(aws, custom, {"n": 2})

    messages = _log_messages(aws, f"/aws/lambda/{name}")
    assert any(m.startswith("START RequestId: ") for m in messages)
    assert 'echo {"n": 1}' in messages
    assert any(m.startswith("END RequestId: ") for m in messages)
    assert any(m.startswith("REPORT RequestId: ") for m in messages)
    assert 'echo {"n": 2}' in _log_messages(aws, "/custom/group")
    config = aws("lambda").get_function_configuration(FunctionName=custom)
    assert config["LoggingConfig"]["LogGroup"] == "/custom/group"


def test_stock_moto_logs_only_the_docker_error_and_drops_the_log_group(stock: Clients) -> None:
    name = _deploy(stock, "app.echo", LoggingConfig={"LogGroup": "/custom/group"})

    stock("lambda").invoke(FunctionName=name, Payload=b"{}")

    messages = _log_messages(stock, f"/aws/lambda/{name}")
    assert messages
    assert all(m.startswith("error running docker") for m in messages)
    assert _log_messages(stock, "/custom/group") == []
    assert "LoggingConfig" not in stock("lambda").get_function_configuration(FunctionName=name)


# --- asynchronous invocations -----------------------------------------------------------------


def test_an_event_invocation_returns_at_once_and_runs(aws: Clients) -> None:
    name = _deploy(aws, "app.put_parameter", Timeout=15)

    started = time.monotonic()
    response, _ = _invoke(
        aws,
        name,
        {"name": f"/{name}/async", "value": "later", "delay": 5},
        InvocationType="Event",
    )

    assert response["StatusCode"] == 202
    assert time.monotonic() - started < 5  # did not wait for the function's 5 s
    assert _parameter(aws, f"/{name}/async") is None
    assert _eventually(lambda: _parameter(aws, f"/{name}/async")) == "later"


def test_stock_moto_answers_an_event_invocation_without_running_it(stock: Clients) -> None:
    name = _deploy(stock, "app.put_parameter")

    response = stock("lambda").invoke(
        FunctionName=name, Payload=b'{"name": "/x", "value": "y"}', InvocationType="Event"
    )

    assert response["StatusCode"] == 202
    assert _parameter(stock, "/x") is None


def test_a_failed_event_is_retried_then_sent_to_the_dead_letter_queue(aws: Clients) -> None:
    dlq_url, dlq_arn = _queue(aws, f"dlq-{uuid.uuid4().hex[:8]}")
    name = _deploy(aws, "app.fail", DeadLetterConfig={"TargetArn": dlq_arn})
    aws("lambda").put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)

    _invoke(aws, name, {"what": "that"}, InvocationType="Event")

    def dead_letter() -> Any:
        received = aws("sqs").receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])
        return received.get("Messages", [None])[0]

    message = _eventually(dead_letter)
    assert json.loads(message["Body"]) == {"what": "that"}
    assert message["MessageAttributes"]["ErrorMessage"]["StringValue"] == "cannot handle that"
    starts = [m for m in _log_messages(aws, f"/aws/lambda/{name}") if m.startswith("START")]
    assert len(starts) == 2  # the attempt and one retry, with the same request id
    assert len(set(starts)) == 1


def test_reserved_concurrency_throttles_calls_and_queues_events(aws: Clients) -> None:
    """Over its reserved concurrency a function refuses a call (429) and keeps the events it is
    sent until an environment is free: all of them run, in the one environment it may have."""
    name = _deploy(aws, "app.sleep")
    aws("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)

    for _ in range(3):
        _invoke(aws, name, {"seconds": 1}, InvocationType="Event")
    time.sleep(0.3)  # the first event is running
    with pytest.raises(aws("lambda").exceptions.TooManyRequestsException, match="Rate Exceeded"):
        _invoke(aws, name, {"seconds": 0})

    def pids() -> list[str] | None:
        logged = [m for m in _log_messages(aws, f"/aws/lambda/{name}") if m.startswith("pid ")]
        return logged if len(logged) == 3 else None

    assert len(set(_eventually(pids, timeout=30))) == 1


def test_stock_moto_drops_the_dead_letter_config(stock: Clients) -> None:
    _, dlq_arn = _queue(stock, "dlq")
    name = _deploy(stock, "app.fail", DeadLetterConfig={"TargetArn": dlq_arn})

    config = stock("lambda").get_function_configuration(FunctionName=name)

    assert "DeadLetterConfig" not in config


# --- event sources ----------------------------------------------------------------------------


def test_an_sqs_event_source_mapping_invokes_the_function(aws: Clients) -> None:
    """Processed messages are deleted; reported failures go to the queue's DLQ by its redrive."""
    suffix = uuid.uuid4().hex[:8]
    dlq_url, dlq_arn = _queue(aws, f"dead-{suffix}")
    url, arn = _queue(
        aws,
        f"work-{suffix}",
        VisibilityTimeout="1",
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}),
    )
    name = _deploy(aws, "app.sqs_batch")
    aws("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, FunctionResponseTypes=["ReportBatchItemFailures"]
    )

    aws("sqs").send_message(QueueUrl=url, MessageBody=f"/good/{suffix}")
    aws("sqs").send_message(QueueUrl=url, MessageBody=f"/bad/{suffix}")

    assert _eventually(lambda: _parameter(aws, f"/good/{suffix}"))

    def dead_letters() -> Any:
        return aws("sqs").receive_message(QueueUrl=dlq_url).get("Messages")

    assert [m["Body"] for m in _eventually(dead_letters)] == [f"/bad/{suffix}"]
    remaining = aws("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert remaining == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }


def test_stock_moto_event_source_mapping_leaves_the_message(stock: Clients) -> None:
    url, arn = _queue(stock, "work")
    name = _deploy(stock, "app.sqs_batch")
    stock("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName=name)

    stock("sqs").send_message(QueueUrl=url, MessageBody="/good/stock")

    assert _parameter(stock, "/good/stock") is None
    assert stock("sqs").receive_message(QueueUrl=url)["Messages"][0]["Body"] == "/good/stock"


def test_a_fifo_event_source_mapping_keeps_each_groups_order(aws: Clients) -> None:
    """A failed message and the later ones of its group come back in order; others go on."""
    suffix = uuid.uuid4().hex[:8]
    url, arn = _queue(aws, f"ordered-{suffix}.fifo", FifoQueue="true", VisibilityTimeout="1")
    name = _deploy(aws, "app.sqs_fifo")
    aws("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, FunctionResponseTypes=["ReportBatchItemFailures"]
    )

    sent = [("a", "bad-a1"), ("b", "b1"), ("a", "a2"), ("a", "a3")]
    for group, body in sent:
        aws("sqs").send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageGroupId=f"{group}-{suffix}",
            MessageDeduplicationId=f"{body}-{suffix}",
        )

    def processed(group: str, count: int) -> Any:
        seen = _parameter(aws, f"/fifo/{group}-{suffix}")
        return seen is not None and len(json.loads(seen)) == count and json.loads(seen)

    assert _eventually(lambda: processed("a", 3)) == [
        [body, f"{body}-{suffix}", True] for body in ("bad-a1", "a2", "a3")
    ]
    assert processed("b", 1) == [["b1", f"b1-{suffix}", True]]


def test_stock_moto_receives_a_timed_out_fifo_group_out_of_order() -> None:
    """Why the poller releases timed-out messages first: moto alone gives the group's last one."""
    with mock_aws():
        sqs = boto3.client("sqs", **CREDENTIALS)
        url = sqs.create_queue(
            QueueName="ordered.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "1"}
        )["QueueUrl"]
        for body in ("first", "second"):
            sqs.send_message(
                QueueUrl=url, MessageBody=body, MessageGroupId="g", MessageDeduplicationId=body
            )
        assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 2
        time.sleep(1.1)

        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    assert [m["Body"] for m in again] == ["second"]


def _rule_to(client: Clients, name: str, **target: Any) -> str:
    """An EventBridge rule sending events of source `test.<name>` to function `name`."""
    arn = client("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    client("events").put_rule(
        Name=f"rule-{name}", EventPattern=json.dumps({"source": [f"test.{name}"]})
    )
    client("events").put_targets(Rule=f"rule-{name}", Targets=[{"Id": "fn", "Arn": arn, **target}])
    return arn


@pytest.mark.parametrize(
    ("target", "stored"),
    [
        ({}, "Something Happened"),
        (
            {"Input": json.dumps({"detail-type": "constant", "detail": {"name": "{name}"}})},
            "constant",
        ),
        (
            {
                "InputTransformer": {
                    "InputPathsMap": {"type": "$.detail-type", "name": "$.detail.name"},
                    "InputTemplate": (
                        '{"detail-type": "<type> (transformed)", "detail": {"name": "<name>"}}'
                    ),
                }
            },
            "Something Happened (transformed)",
        ),
    ],
    ids=["event", "Input", "InputTransformer"],
)
def test_an_eventbridge_rule_invokes_its_lambda_target(
    aws: Clients, target: dict[str, Any], stored: str
) -> None:
    name = _deploy(aws, "app.store_detail")
    _rule_to(aws, name, **json.loads(json.dumps(target).replace("{name}", f"/{name}/event")))

    aws("events").put_events(
        Entries=[
            {
                "Source": f"test.{name}",
                "DetailType": "Something Happened",
                "Detail": json.dumps({"name": f"/{name}/event"}),
            }
        ]
    )

    assert _eventually(lambda: _parameter(aws, f"/{name}/event")) == stored


def test_stock_moto_cannot_send_to_a_lambda_target(stock: Clients) -> None:
    name = _deploy(stock, "app.store_detail")
    _rule_to(stock, name)

    with pytest.raises(NotImplementedError):
        stock("events").put_events(
            Entries=[{"Source": f"test.{name}", "DetailType": "x", "Detail": "{}"}]
        )


def test_an_sns_subscription_invokes_the_function(aws: Clients) -> None:
    name = _deploy(aws, "app.store_sns")
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    topic = aws("sns").create_topic(Name=f"topic-{name}")["TopicArn"]
    aws("sns").subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn)

    aws("sns").publish(TopicArn=topic, Message=f"/{name}/sns")

    assert _eventually(lambda: _parameter(aws, f"/{name}/sns")) == "sns"


def test_an_s3_notification_invokes_the_function(aws: Clients) -> None:
    name = _deploy(aws, "app.store_s3")
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    aws("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    aws("s3").put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )

    aws("s3").put_object(Bucket=name, Key=f"{name}-object", Body=b"data")

    assert _eventually(lambda: _parameter(aws, f"/{name}-object")) == "s3"


def test_a_log_subscription_invokes_the_function(aws: Clients) -> None:
    name = _deploy(aws, "app.store_logs")
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    logs = aws("logs")
    logs.create_log_group(logGroupName=f"/app/{name}")
    logs.create_log_stream(logGroupName=f"/app/{name}", logStreamName="s")
    logs.put_subscription_filter(
        logGroupName=f"/app/{name}", filterName="all", filterPattern="", destinationArn=arn
    )

    logs.put_log_events(
        logGroupName=f"/app/{name}",
        logStreamName="s",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": f"/{name}/logged"}],
    )

    assert _eventually(lambda: _parameter(aws, f"/{name}/logged")) == "logs"


def test_invoke_async_runs_the_function_in_the_background(aws: Clients) -> None:
    name = _deploy(aws, "app.put_parameter")

    response = aws("lambda").invoke_async(
        FunctionName=name, InvokeArgs=json.dumps({"name": f"/{name}/legacy", "value": "async"})
    )

    assert response["Status"] == 202
    assert _eventually(lambda: _parameter(aws, f"/{name}/legacy")) == "async"


# --- interpreters and execution environments -----------------------------------------------


@pytest.mark.parametrize("runtime", ["python3.13", "python3.12"])
def test_the_runtimes_python_runs_the_function_when_the_machine_has_it(
    aws: Clients, runtime: str
) -> None:
    version = runtime.removeprefix("python")
    name = _deploy(aws, "app.echo", Runtime=runtime)

    _, payload = _invoke(aws, name, {})

    assert payload["python"] == (version if _python_available(version) else CURRENT_PYTHON)


@pytest.mark.parametrize("runtime", ["python3.99", "python3.8"], ids=["missing", "too-old"])
def test_a_runtime_the_machine_cannot_give_runs_on_the_servers_python(
    aws: Clients, runtime: str
) -> None:
    """python3.8 may be installed, but the runtime's boto3 no longer supports it."""
    name = _deploy(aws, "app.echo", Runtime=runtime)

    _, payload = _invoke(aws, name, {})

    assert payload["python"] == CURRENT_PYTHON


def test_a_warm_environment_serves_until_the_configuration_changes(aws: Clients) -> None:
    name = _deploy(aws, "app.echo")

    _, first = _invoke(aws, name, {})
    _, second = _invoke(aws, name, {})
    aws("lambda").update_function_configuration(
        FunctionName=name, Environment={"Variables": {"CHANGED": "1"}}
    )
    _, third = _invoke(aws, name, {})

    assert first["pid"] == second["pid"] != third["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(first["pid"], 0)


def test_uninstall_leaves_no_process_behind(aws: Clients) -> None:
    name = _deploy(aws, "app.echo")
    _, payload = _invoke(aws, name, {})

    lambda_runtime.uninstall()
    try:
        with pytest.raises(ProcessLookupError):
            os.kill(payload["pid"], 0)
    finally:
        lambda_runtime.install()


def test_a_function_that_is_not_python_is_refused_with_the_fix(aws: Clients) -> None:
    name = _deploy(aws, "index.handler", Runtime="nodejs20.x")

    with pytest.raises(aws("lambda").exceptions.InvalidRuntimeException) as raised:
        _invoke(aws, name, {})

    assert "runs Python zip functions only" in str(raised.value)
