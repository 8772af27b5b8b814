"""What the functions' unit tests are built from: moto (decorator mode) for AWS, the Valohai
stand-in for Valohai, an HTTPS inbox standing in for CloudFormation's response bucket (its
host name resolves to the inbox, as the local AWS's Lambda environments resolve it),
CloudFormation's view of the stacks whose requests the Invoker sends, and the sample values
they use. The fixtures are in tests/unit/functions/conftest.py."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

ACCOUNT = "123456789012"


REGION = "eu-west-1"


_STACKS = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack"


STACK_ID = f"{_STACKS}/valohai-setup/1b2c3d4e-0000-4000-8000-000000000001"


OTHER_STACK_ID = f"{_STACKS}/other-setup/1b2c3d4e-0000-4000-8000-000000000002"


#: CloudFormation's response bucket in REGION, as its presigned ResponseURLs name it.
RESPONSE_HOST = "cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com"


TOKEN = "known-setup-token-0123456789abcdefghijklmnopqrstuvwxyz"


OTHER_TOKEN = "another-setup-token-abcdefghijklmnopqrstuvwxyz0123456789"


PLATFORM_KEY = "platform-redelivery-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"


@dataclass
class Response:
    """One PUT to a ResponseURL, with the time (monotonic) it arrived."""

    body: dict[str, Any]
    arrived: float


class Inbox:
    """An HTTPS server on 127.0.0.1 recording the custom-resource responses PUT to it."""

    def __init__(self, context: Any) -> None:
        inbox = self
        self._lock = threading.Lock()
        self._received: dict[str, list[Response]] = {}
        #: Seconds each PUT waits before it is recorded: a slow response bucket.
        self.delay = 0.0

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                time.sleep(inbox.delay)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with inbox._lock:
                    inbox._received.setdefault(self.path, []).append(
                        Response(body, time.monotonic())
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def new_url(self) -> str:
        return f"https://{RESPONSE_HOST}/response/{uuid.uuid4()}?X-Amz-Signature={uuid.uuid4().hex}"

    def responses(self, url: str) -> list[Response]:
        path = url.split(RESPONSE_HOST, 1)[1]
        with self._lock:
            return list(self._received.get(path, []))

    def everything(self) -> list[Response]:
        with self._lock:
            return [response for responses in self._received.values() for response in responses]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class FakeContext:
    """The parts of a Lambda context the functions and Powertools read."""

    seconds: float
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2025/01/01/[$LATEST]0123456789abcdef"
    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class CloudFormationView:
    """What DescribeStackResource and DescribeStacks say about the stacks the Invoker plays
    CloudFormation for: a resource is in progress while its request is out, as in AWS.

    Answers only for those stacks (other calls reach moto), through botocore's before-call
    event of the default session, so the handlers' own clients see it."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.known: set[str] = set()
        #: Stack statuses DescribeStacks reports (others reach moto): set by a test.
        self.stacks: dict[str, str] = {}

    def begin(self, event: Mapping[str, Any]) -> None:
        """CloudFormation sends `event`: its resource is now in progress."""
        key = (event.get("StackId"), event.get("LogicalResourceId"))
        if not all(isinstance(part, str) for part in key):
            return
        self.known.add(key[0])  # type: ignore[arg-type]
        status = f"{str(event.get('RequestType')).upper()}_IN_PROGRESS"
        self.resources[key] = {  # type: ignore[index]
            "ResourceStatus": status,
            "PhysicalResourceId": event.get("PhysicalResourceId"),
            "ResourceType": event.get("ResourceType"),
        }

    def set(self, stack_id: str, logical_id: str, status: str) -> None:
        """What CloudFormation says of a resource, e.g. after its stack rolled back."""
        self.known.add(stack_id)
        self.resources[(stack_id, logical_id)] = {"ResourceStatus": status}

    def end(self, event: Mapping[str, Any], response: Mapping[str, Any] | None) -> None:
        """The answer arrived: the resource is complete (or failed), under the returned id."""
        resource = self.resources.get((event.get("StackId"), event.get("LogicalResourceId")))  # type: ignore[arg-type]
        if resource is None or response is None:
            return
        outcome = "COMPLETE" if response.get("Status") == "SUCCESS" else "FAILED"
        resource["ResourceStatus"] = resource["ResourceStatus"].replace("IN_PROGRESS", outcome)
        resource["PhysicalResourceId"] = response.get("PhysicalResourceId")

    def __call__(self, model: Any, params: Mapping[str, Any], **_: Any) -> Any:
        params = params.get("body") or {}  # the serialized request: a query-protocol form
        stack_id = params.get("StackName")
        if model.name == "DescribeStacks" and stack_id in self.stacks:
            return _FakeHttp(200), {
                "Stacks": [{"StackId": stack_id, "StackStatus": self.stacks[stack_id]}]
            }
        if model.name != "DescribeStackResource" or stack_id not in self.known:
            return None
        resource = self.resources.get((stack_id, params.get("LogicalResourceId")))
        if resource is None:
            message = f"Resource {params.get('LogicalResourceId')} does not exist for stack"
            return _FakeHttp(400), {
                "Error": {"Code": "ValidationError", "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
        detail = {
            "StackName": str(stack_id).split("/")[1],
            "StackId": stack_id,
            "LogicalResourceId": params["LogicalResourceId"],
            "LastUpdatedTimestamp": "2025-06-01T12:00:00Z",
            **{key: value for key, value in resource.items() if value is not None},
        }
        return _FakeHttp(200), {"StackResourceDetail": detail}


CLOUDFORMATION = CloudFormationView()


def create_token_secret(stack_id: str, token: str) -> str:
    name = f"valohai-hybrid/setup-token/{stack_id.split('/')[1]}"
    return boto3.client("secretsmanager").create_secret(
        Name=name,
        SecretString=token,
        Tags=[
            {"Key": "valohai-hybrid:purpose", "Value": "setup-token"},
            {"Key": "valohai-hybrid:stack-id", "Value": stack_id},
        ],
    )["ARN"]


def queued_messages(queue_url: str) -> list[dict[str, Any]]:
    """What the messages on the redelivery queue carry, each checked to be sealed with the
    platform key (received once, so a second call sees nothing new)."""
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            sealed = json.loads(message["Body"])
            mac = hmac.new(PLATFORM_KEY.encode(), sealed["payload"].encode(), hashlib.sha256)
            assert sealed["mac"] == mac.hexdigest()
            messages.append(json.loads(sealed["payload"]))
    return messages


class Logs:
    """What the functions logged (Powertools writes JSON lines to one shared handler)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@dataclass
class _FakeHttp:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


class AwsCalls:
    """Sees every AWS call the functions make; can make chosen operations fail or stall.

    Hooked into botocore's before-call event of the default session, so it applies to the
    clients a handler module creates when it is (re)loaded.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.failing: dict[str, str] = {}
        self.stall: dict[str, float] = {}
        self.recording = False

    def __call__(self, model: Any, **_: Any) -> Any:
        """None lets the call through; a (response, parsed) pair answers it instead."""
        if not self.recording:
            return None
        self.calls.append(model.name)
        time.sleep(self.stall.get(model.name, 0))
        code = self.failing.get(model.name)
        if code is None:
            return None
        status = 400 if code.endswith(("Exception", "Throttling")) else 500
        return _FakeHttp(status), {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }


class Invoker:
    """Sends custom-resource events to a handler and collects the responses."""

    def __init__(self, handler: Callable[..., Any], inbox: Inbox, resource_type: str) -> None:
        self.handler = handler
        self.inbox = inbox
        self.resource_type = resource_type

    def event(
        self,
        request_type: str,
        properties: dict[str, Any],
        *,
        physical_id: str | None = None,
        old_properties: dict[str, Any] | None = None,
        request_id: str | None = None,
        stack_id: str = STACK_ID,
        logical_id: str = "Resource",
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:test-function",
            "ResponseURL": self.inbox.new_url(),
            "StackId": stack_id,
            "RequestId": request_id or str(uuid.uuid4()),
            "LogicalResourceId": logical_id,
            "ResourceType": self.resource_type,
            "ResourceProperties": {"ServiceToken": "token", **properties},
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = {"ServiceToken": "token", **old_properties}
        return event

    def send(
        self, event: dict[str, Any], seconds: float = 20.0, calls: AwsCalls | None = None
    ) -> Response:
        """Invoke once; return the one response, checking it came once and before the deadline.

        With `calls`, the AWS calls of this invocation are recorded (and faults applied)."""
        context = FakeContext(seconds)
        before = len(self.inbox.responses(event["ResponseURL"]))
        CLOUDFORMATION.begin(event)
        if calls is not None:
            calls.recording = True
        try:
            self.handler(event, context)
        finally:
            if calls is not None:
                calls.recording = False
        time.sleep(0.01)  # a second (wrong) response would have arrived by now
        responses = self.inbox.responses(event["ResponseURL"])[before:]
        assert len(responses) == 1, f"expected exactly one response, got {len(responses)}"
        assert responses[0].arrived < context.deadline, "answered after the Lambda deadline"
        CLOUDFORMATION.end(event, responses[0].body)
        return responses[0]

    def __call__(
        self, request_type: str, properties: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any]:
        return self.send(self.event(request_type, properties, **kwargs)).body

    def forge(self, event: Any, seconds: float = 20.0) -> list[Response]:
        """Invoke directly, as anyone allowed to invoke the function could, with CloudFormation
        waiting for nothing; return whatever reached the inbox at the event's ResponseURL."""
        before = len(self.inbox.everything())
        self.handler(event, FakeContext(seconds))
        time.sleep(0.01)  # an answer would have arrived by now
        return self.inbox.everything()[before:]


#: A complete Handoff as cfn/main.yml passes it (values are strings, SubnetIds comma-separated).
HANDOFF = {
    "AccountId": ACCOUNT,
    "Region": REGION,
    "ValohaiMasterRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ValohaiMaster",
    "WorkerRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ValohaiWorkerRole",
    "WorkerInstanceProfileArn": (
        f"arn:aws:iam::{ACCOUNT}:instance-profile/ValohaiWorkerInstanceProfile"
    ),
    "QueueRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ValohaiQueueRole",
    "QueuePublicIp": "203.0.113.10",
    "QueuePrivateIp": "10.0.1.10",
    "QueueAddress": "acme.vqueue.net",
    "RedisSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ValohaiRedisSecret-AbCdEf",
    "RedisSecretName": "ValohaiRedisSecret",
    "DataBucketName": f"valohai-data-{ACCOUNT}",
    "MultipartRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ValohaiS3MultipartRole-{ACCOUNT}",
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "WorkerSecurityGroupId": "sg-0123456789abcdef0",
    "WorkerSecurityGroupName": "valohai-sg-workers",
    "QueueSecurityGroupId": "sg-0fedcba9876543210",
    "KeyPairName": "valohai-queue",
    "ProductVersion": "0.1.0",
}


def sqs_event(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The Lambda event an SQS event source makes of received messages (received with
    AttributeNames=["All"], so that FIFO records carry their MessageGroupId)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:valohai-redelivery.fifo",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


#: A product stack as the forwarder sees it: its ValohaiApiUrl parameter is what it reads.
TEMPLATE = json.dumps(
    {
        "Parameters": {"ValohaiApiUrl": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    }
)


def stack_status(
    stack_id: str, status: str, reason: str = "", event_id: str | None = None
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "CloudFormation Stack Status Change",
        "source": "aws.cloudformation",
        "account": ACCOUNT,
        "time": "2025-06-01T12:00:00Z",
        "region": REGION,
        "resources": [stack_id],
        "detail": {
            "stack-id": stack_id,
            "status-details": {"status": status, "status-reason": reason},
        },
    }
