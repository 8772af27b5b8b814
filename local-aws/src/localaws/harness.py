"""Run the local AWS for tests and tools: a server process and boto3 clients pointed at it.

No pytest here: tools (a demo, benchmarks) use `running_local_aws()` as they are; the pytest
plugin (`localaws.pytest_plugin`) wraps it in a session fixture.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import urllib3

from .config import DEFAULT_REGION, FAKE_CREDENTIALS
from .control import start, stop

#: What an AWS SDK would otherwise pick up from the machine (a profile, a real endpoint).
_MACHINE_SETTINGS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")
STARTUP_TIMEOUT = 60.0


@dataclass
class LocalAwsHandle:
    """A running local AWS: where it is, and clients for it."""

    endpoint_url: str
    ca_bundle: Path
    state_dir: Path
    pid: int
    region: str = DEFAULT_REGION

    def client(self, service: str, region: str | None = None, **kwargs: Any) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=region or self.region,
            aws_access_key_id=kwargs.pop(
                "aws_access_key_id", FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]
            ),
            aws_secret_access_key=kwargs.pop(
                "aws_secret_access_key", FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
            ),
            **kwargs,
        )

    def iam_user(
        self, prefix: str, region: str | None = None, policies: tuple[str, ...] = ()
    ) -> tuple[str, boto3.Session]:
        """A new IAM user with an access key of its own: its ARN, and a session signing as it
        (the local AWS tells callers apart by access key, as Service Catalog's checks need).
        `policies`: ARNs of managed policies attached to it (AWS's own ones included)."""
        iam = self.client("iam")
        name = unique(prefix)
        arn = str(iam.create_user(UserName=name)["User"]["Arn"])
        for policy in policies:
            iam.attach_user_policy(UserName=name, PolicyArn=policy)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        session = boto3.Session(
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            region_name=region or self.region,
        )
        return arn, session

    def iam_role(
        self, prefix: str, trusted: Mapping[str, str], *statements: Mapping[str, Any]
    ) -> str:
        """A new role that `trusted` may assume (a trust policy's Principal, such as
        `{"Service": "lambda.amazonaws.com"}`), allowed `statements` by the inline policy
        `ROLE_POLICY`: its ARN."""
        iam = self.client("iam")
        name = unique(prefix)
        trust = policy_document(
            {"Effect": "Allow", "Principal": trusted, "Action": "sts:AssumeRole"}
        )
        arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"])
        if statements:
            iam.put_role_policy(
                RoleName=name, PolicyName=ROLE_POLICY, PolicyDocument=policy_document(*statements)
            )
        return arn

    def first_failure(self, stack: str) -> str:
        """Why the stack's first resource failed (its own FAILED events aside)."""
        events = self.client("cloudformation").describe_stack_events(StackName=stack)
        return str(
            next(
                e["ResourceStatusReason"]
                for e in reversed(events["StackEvents"])
                if e["ResourceStatus"].endswith("_FAILED") and e["LogicalResourceId"] != stack
            )
        )

    def control(self, path: str, payload: Any = None) -> Any:
        """Call a route of the local AWS's own control API (`/_localaws/...`)."""
        response = urllib3.request(
            "GET" if payload is None else "POST",
            f"{self.endpoint_url}/_localaws/{path}",
            json=payload,
            timeout=30,
        )
        if response.status >= 400:
            raise RuntimeError(f"/_localaws/{path}: HTTP {response.status} {response.data!r}")
        return json.loads(response.data or b"null")

    def control_delete(self, path: str) -> Any:
        """DELETE a control route (e.g. disarm every fault)."""
        response = urllib3.request("DELETE", f"{self.endpoint_url}/_localaws/{path}", timeout=30)
        return json.loads(response.data or b"null")

    def wait_for_stack(self, stack: str, timeout: float = 120.0, region: str | None = None) -> Any:
        """Poll until the stack leaves *_IN_PROGRESS; return its description."""
        cloudformation = self.client("cloudformation", region)
        deadline = time.monotonic() + timeout
        while True:
            description = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
            status = description["StackStatus"]
            if not status.endswith("_IN_PROGRESS") or status == "REVIEW_IN_PROGRESS":
                return description
            if time.monotonic() > deadline:
                raise TimeoutError(f"stack {stack} still {status} after {timeout} s")
            time.sleep(0.05)


def isolate_environment(region: str = DEFAULT_REGION) -> None:
    """Fake credentials and a fixed region in this process and its children, and no profile,
    config file or endpoint from the machine: nothing run against the local AWS can reach a
    real account by accident."""
    for name in _MACHINE_SETTINGS:
        os.environ.pop(name, None)
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["AWS_REGION"] = region
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


#: The inline policy `LocalAwsHandle.iam_role` gives a role: put it again to change the role.
ROLE_POLICY = "allowed"


def policy_document(*statements: Mapping[str, Any]) -> str:
    """An IAM policy document of `statements`, as IAM's API takes it."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def unique(prefix: str) -> str:
    """A name no other test uses, so tests can share one server."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextmanager
def running_local_aws(
    state_dir: Path, port: int = 0, stabilize: Mapping[str, float] | None = None
) -> Iterator[LocalAwsHandle]:
    """Start the server the way `local-aws start` does (its log in `state_dir`); stop it, and
    everything it started, on exit. `stabilize`: seconds CloudFormation waits per resource type
    (the server's `--stabilize`)."""
    info = start(state_dir, port, STARTUP_TIMEOUT, stabilize)
    try:
        yield LocalAwsHandle(
            endpoint_url=info["endpoint_url"],
            ca_bundle=Path(info["ca_bundle"]),
            state_dir=state_dir,
            pid=int(info["pid"]),
        )
    finally:
        stop(state_dir)
