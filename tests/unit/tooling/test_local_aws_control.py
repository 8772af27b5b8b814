"""`valohai-hybrid local-aws start/stop`: one command each, and nothing left running after stop."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
import pytest

#: These start and stop a local AWS through the console command.
pytestmark = pytest.mark.localaws

CLI = [sys.executable, "-m", "valohai_hybrid.cli"]

#: A role Lambda may assume: the local AWS, like AWS, refuses a function any other role.
LAMBDA_TRUST = json.dumps(
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
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, check=False)


def _descendants(pid: int) -> set[int]:
    """Every live process whose ancestry includes `pid` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_start_serves_and_stop_leaves_no_process_behind(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    state = tmp_path / "state"
    started = _run("local-aws", "start", "--state-dir", str(state))
    # A failed assertion below must not leave the server running (a second stop says "was not
    # running" and changes nothing).
    request.addfinalizer(lambda: _run("local-aws", "stop", "--state-dir", str(state)))
    assert started.returncode == 0, started.stderr
    endpoint = started.stdout.split("running at ", 1)[1].split()[0]
    pid = int(started.stdout.split("(pid ", 1)[1].split(")")[0])

    # A function invocation leaves a warm Lambda worker process under the server.
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 'ok'\n")
    client = boto3.client("lambda", endpoint_url=endpoint)
    role = boto3.client("iam", endpoint_url=endpoint).create_role(
        RoleName="control-test", AssumeRolePolicyDocument=LAMBDA_TRUST
    )["Role"]["Arn"]
    client.create_function(
        FunctionName="control-test",
        Runtime="python3.13",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )
    assert client.invoke(FunctionName="control-test")["Payload"].read() == b'"ok"'
    processes = _descendants(pid) | {pid}
    assert len(processes) > 1

    again = _run("local-aws", "start", "--state-dir", str(state))
    assert again.returncode == 1
    assert "already runs" in again.stderr

    stopped = _run("local-aws", "stop", "--state-dir", str(state))
    assert stopped.returncode == 0
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [p for p in processes if Path(f"/proc/{p}").exists() and _state(p) != "Z"]
    assert alive == []
    assert _run("local-aws", "status", "--state-dir", str(state)).returncode == 1


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_stop_when_nothing_runs_says_so(tmp_path: Path) -> None:
    result = _run("local-aws", "stop", "--state-dir", str(tmp_path))
    assert result.returncode == 0
    assert "was not running" in result.stdout
    assert os.listdir(tmp_path) == []


def test_start_with_a_malformed_wait_is_a_usage_error_and_starts_nothing(tmp_path: Path) -> None:
    result = _run("local-aws", "start", "--state-dir", str(tmp_path), "--stabilize", "10")
    assert result.returncode == 2
    assert "expected TYPE=SECONDS, e.g. AWS::EC2::Instance=10" in result.stderr
    assert os.listdir(tmp_path) == []


def test_start_with_a_wait_reports_it_in_status(tmp_path: Path) -> None:
    wait = ["--stabilize", "AWS::EC2::Instance=2"]
    started = _run("local-aws", "start", "--state-dir", str(tmp_path), *wait)
    try:
        assert started.returncode == 0, started.stderr
        status = _run("local-aws", "status", "--state-dir", str(tmp_path))
        assert '"AWS::EC2::Instance": 2' in status.stdout
    finally:
        _run("local-aws", "stop", "--state-dir", str(tmp_path))
