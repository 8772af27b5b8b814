"""The deployment packages as functions/Makefile builds them for `sam build`: small enough, and
the handlers work from the pruned tree alone (no module pruned that any code path imports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from localaws import devtls

from bench.package_size import BUDGET_BYTES, FUNCTIONS, build, zipped_size
from tests.support.functions import RESPONSE_HOST, STACK_ID, Inbox
from valohai_hybrid.checkout import ROOT

#: Runs in a fresh interpreter that sees the package first, then this environment (for boto3
#: and moto, as the Lambda runtime provides boto3): prints where the libraries came from and
#: what each handler answered. CloudFormation's response host leads to the inbox, and
#: CloudFormation reports each event's resource in progress while the handler runs.
INVOKE = """
import importlib, json, socket, sys, time
package, module, events = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
host, port = sys.argv[4], int(sys.argv[5])
sys.path.insert(0, package)
import boto3
from moto import mock_aws

resolve = socket.getaddrinfo
socket.getaddrinfo = lambda name, *rest: resolve(
    *(("127.0.0.1", port) if name == host else (name, rest[0])), *rest[1:]
)
current = {}

def in_progress(params, **_):
    class Http:
        status_code = 200
        headers = {}
    detail = {
        "StackId": current["StackId"],
        "StackName": current["StackId"].split("/")[1],
        "LogicalResourceId": current["LogicalResourceId"],
        "ResourceStatus": current["RequestType"].upper() + "_IN_PROGRESS",
        "LastUpdatedTimestamp": "2025-06-01T12:00:00Z",
    }
    if "PhysicalResourceId" in current:
        detail["PhysicalResourceId"] = current["PhysicalResourceId"]
    return Http(), {"StackResourceDetail": detail}

class Context:
    function_name = "f"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:f"
    aws_request_id = "r"
    log_stream_name = "s"
    def __init__(self):
        self.deadline = time.monotonic() + 20
    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)

with mock_aws():
    boto3._get_default_session().events.register(
        "before-call.cloudformation.DescribeStackResource", in_progress
    )
    handler = importlib.import_module(f"valohai_cr.handlers.{module}").handler
    results = []
    for event in events:
        current.update(event)
        results.append(handler(event, Context()))
print(json.dumps({
    "libraries": {
        name: sys.modules[name].__file__
        for name in ("aws_lambda_powertools", "valohai_cr")
        if name in sys.modules
    },
    "results": results,
}))
"""


def recipe(function: str) -> str:
    """The commands `make build-<function>` would run (make's dry run), the build directory
    left as a placeholder."""
    return subprocess.run(
        [
            *("make", "--dry-run", "--silent", "-C", str(ROOT / "functions")),
            *(f"build-{function}", "ARTIFACTS_DIR=/artifacts", f"PYTHON={sys.executable}"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each function's package. Functions whose targets run the same commands (today all five:
    one package for every function) get one build between them, each a pip run of its own."""
    by_recipe: dict[str, list[str]] = {}
    for function in FUNCTIONS:
        by_recipe.setdefault(recipe(function), []).append(function)
    root = tmp_path_factory.mktemp("packages")
    packages = {}
    for functions in by_recipe.values():
        package = build(functions[0], root / functions[0])
        packages.update(dict.fromkeys(functions, package))
    return packages


def test_each_package_is_at_most_1_mb_zipped(packages: dict[str, Path]) -> None:
    sizes = {name: zipped_size(directory) for name, directory in packages.items()}

    assert set(sizes) == set(FUNCTIONS)
    assert all(size <= BUDGET_BYTES for size in sizes.values()), sizes


def custom_resource_events(
    inbox: Inbox, resource_type: str, properties: dict[str, Any]
) -> list[dict[str, Any]]:
    """A rollback Delete of something never created, and a Create with a bad property."""
    base = {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:f",
        "StackId": STACK_ID,
        "RequestId": "1",
        "LogicalResourceId": "Resource",
        "ResourceType": resource_type,
    }
    return [
        {
            **base,
            "RequestType": "Delete",
            "ResponseURL": inbox.new_url(),
            "PhysicalResourceId": "never_created_X",
            "ResourceProperties": {},
        },
        {
            **base,
            "RequestType": "Create",
            "ResponseURL": inbox.new_url(),
            "ResourceProperties": properties,
        },
    ]


def invoke(
    package: Path,
    module: str,
    events: list[dict[str, Any]],
    local_ca: devtls.LocalCa,
    inbox: Inbox,
) -> dict[str, Any]:
    env = {
        **os.environ,
        "SSL_CERT_FILE": str(local_ca.directory / "ca.pem"),
        "REDELIVERY_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
        "REDELIVERY_DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/d",
        "REDELIVERY_MAX_RECEIVE_COUNT": "120",
        "REDELIVERY_INTERVAL_SECONDS": "720",
        "REDELIVERY_KEY_SECRET_ARN": (
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redelivery-key-AbCdEf"
        ),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            INVOKE,
            str(package),
            module,
            json.dumps(events),
            RESPONSE_HOST,
            str(inbox.port),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"aws_lambda_powertools", "valohai_cr"} <= set(result["libraries"])
    assert all(path.startswith(str(package)) for path in result["libraries"].values())
    return result


@pytest.mark.parametrize(
    ("function", "resource_type", "bad"),
    [
        ("RedisSecretFunction", "Custom::ValohaiRedisSecret", {"RecoveryWindowInDays": "3"}),
        ("QueueAddressFunction", "Custom::ValohaiQueueAddress", {"QueueAddress": "https://x.y"}),
        ("NotificationFunction", "Custom::ValohaiNotification", {"Handoff": "none"}),
    ],
)
def test_custom_resource_handlers_answer_from_their_package(
    packages: dict[str, Path],
    inbox: Inbox,
    local_ca: devtls.LocalCa,
    function: str,
    resource_type: str,
    bad: dict[str, str],
) -> None:
    events = custom_resource_events(inbox, resource_type, bad)

    invoke(packages[function], FUNCTIONS[function], events, local_ca, inbox)

    [deleted] = [r.body for r in inbox.responses(events[0]["ResponseURL"])]
    [refused] = [r.body for r in inbox.responses(events[1]["ResponseURL"])]
    assert deleted["Status"] == "SUCCESS"
    assert refused["Status"] == "FAILED"
    assert refused["Reason"]


def test_the_forwarder_and_the_consumer_work_from_their_packages(
    packages: dict[str, Path], local_ca: devtls.LocalCa, inbox: Inbox
) -> None:
    status_change = {
        "id": "e1",
        "detail-type": "CloudFormation Stack Status Change",
        "time": "2025-06-01T12:00:00Z",
        "detail": {"stack-id": STACK_ID, "status-details": {"status": "DELETE_COMPLETE"}},
    }
    forwarded = invoke(
        packages["StackStatusFunction"], "stack_status", [status_change], local_ca, inbox
    )
    consumed = invoke(
        packages["RedeliveryFunction"],
        "redelivery",
        [{"Records": [{"messageId": "m1", "body": "{"}]}],
        local_ca,
        inbox,
    )

    assert forwarded["results"] == [{"outcome": "ignored: not a Valohai Hybrid setup stack"}]
    assert consumed["results"] == [{"batchItemFailures": [{"itemIdentifier": "m1"}]}]
