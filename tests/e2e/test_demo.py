"""`make demo` as a newcomer runs it: `valohai-hybrid demo` in a terminal session of its own.

It must show the whole way (publish, both launches with their stack events, the signed
hand-off, the new release, the update, the termination and what remains), write its timings
(how long it takes is measured in `make bench`, not here), and leave no process or temporary
file behind, whether it succeeds, is interrupted with Ctrl-C, or fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from tests.support.cli import Commands

#: The demo starts a local AWS of its own.
pytestmark = pytest.mark.localaws

PHASES = {
    "start",
    "publish",
    "launch_iam",
    "launch_workers",
    "handoff",
    "release",
    "update",
    "terminate",
    "remains",
    "stop",
}


@pytest.fixture
def temporary() -> Iterator[Path]:
    """The demo's TMPDIR, as short as a user's: pytest's tmp_path is so deep that sockets of
    the function build (multiprocessing's, under TMPDIR) pass AF_UNIX's 108-byte limit."""
    path = Path(tempfile.mkdtemp(prefix="demo-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _environment(temporary: Path) -> dict[str, str]:
    """A user's shell: whatever AWS settings they have must not matter (the demo uses fake
    ones), and its temporary files go where the test can see them."""
    return {
        **os.environ,
        "TMPDIR": str(temporary),
        "AWS_PROFILE": "someones-real-profile",
        "AWS_ACCESS_KEY_ID": "AKIAREALLOOKINGKEY00",
        "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
    }


def _section(output: str, number: int) -> str:
    start = output.index(f"[{number}/9]")
    end = output.find(f"[{number + 1}/9]", start)
    return output[start : end if end > 0 else None]


def test_the_demo_shows_the_whole_product_and_leaves_nothing_behind(
    commands: Commands, tmp_path: Path, temporary: Path
) -> None:
    env = _environment(temporary)
    timings = tmp_path / "timings.json"
    demo = commands.start(["demo", "--timings", str(timings)], env)
    assert demo.finish(timeout=180) == 0, demo.output
    output = demo.output

    # Stack events with elapsed time, nested stacks' resources by path, as they happen.
    launch = _section(output, 4)
    instance = r"\d+\.\d s\s+CREATE_COMPLETE\s+AWS::EC2::Instance\s+WorkerQueue/QueueInstance"
    assert re.search(instance, launch)
    assert re.search(r"CREATE_COMPLETE\s+AWS::EC2::Subnet\s+Network/Subnet2/Subnet", launch)
    assert "SUCCEEDED" in launch
    assert re.search(r"CREATE_COMPLETE\s+AWS::Lambda::Function\s+NotificationFunction", output)
    # The outputs and the signed hand-off Valohai received, which says what the outputs say.
    assert re.search(r"QueueAddress\s+acme-demo\.vqueue\.net", launch)
    handoff = _section(output, 5)
    assert "HTTP 202 accepted" in handoff
    body = json.loads(handoff[handoff.index("{") : handoff.rindex("}") + 1])
    assert body["type"] == "setup.created"
    assert body["data"]["handoff"]["data_bucket_name"] == "valohai-data-acme-demo"
    ip = re.search(r"QueuePublicIp\s+(\S+)", launch)
    assert ip
    assert body["data"]["handoff"]["queue_public_ip"] == ip.group(1)
    assert "What next" in handoff
    assert "You send Valohai nothing" in handoff
    # The token the admin typed never shows.
    assert "SetupToken            ****" in output
    # The new release, the update to it, the termination.
    assert "published release 0.1.1" in _section(output, 6)
    assert "ProductVersion 0.1.0 -> 0.1.1" in _section(output, 7)
    assert re.search(r"DELETE_COMPLETE\s+AWS::EC2::VPC\s+Network/Vpc", _section(output, 8))
    # What remains, checked through the APIs: the data bucket and nothing else.
    remains = _section(output, 9)
    listed = remains.split("compared with before the launch):\n", 1)[1].split("\n  The data")[0]
    assert listed.split() == ["S3", "buckets", "valohai-data-acme-demo"]

    summary = json.loads(timings.read_text())
    assert summary["outcome"] == "succeeded"
    assert set(summary["phases"]) == PHASES
    assert demo.seen, "no process was observed"
    assert demo.survivors() == []
    assert list(temporary.iterdir()) == []


def test_ctrl_c_stops_everything_the_demo_started(
    commands: Commands, tmp_path: Path, temporary: Path
) -> None:
    env = _environment(temporary)
    timings = tmp_path / "timings.json"
    demo = commands.start(["demo", "--timings", str(timings)], env)
    # In the middle: the local AWS, its Lambda workers and the stand-in are all running.
    demo.wait_for("[4/9]")
    demo.interrupt()
    assert demo.finish(timeout=60) == 130, demo.output
    assert "Interrupted: stopped everything the demo started." in demo.output
    assert "Traceback" not in demo.output
    assert len(demo.seen) > 1
    assert demo.survivors() == []
    assert list(temporary.iterdir()) == []
    assert json.loads(timings.read_text())["outcome"] == "interrupted"


def test_a_failure_stops_everything_and_says_what_failed(
    commands: Commands, tmp_path: Path, temporary: Path
) -> None:
    env = _environment(temporary)
    timings = tmp_path / "timings.json"
    demo = commands.start(["demo", "--timings", str(timings)], env)
    demo.wait_for("a stand-in that checks signatures")
    endpoint = re.search(r"local AWS\s+(http://127\.0\.0\.1:\d+)", demo.output)
    assert endpoint
    # AWS refuses the admin's launch of the Workers product.
    fault = {
        "service": "servicecatalog",
        "action": "ProvisionProduct",
        "count": 2,
        "code": "InvalidParametersException",
        "message": "refused by the test",
        "status": 400,
    }
    armed = urllib3.request("POST", f"{endpoint.group(1)}/_localaws/faults", json=fault)
    assert armed.status == 200
    assert demo.finish(timeout=120) == 1, demo.output
    assert re.search(
        r"The demo failed while customer admin: launching valohai hybrid iam .*refused by the test",
        demo.output,
    )
    assert "Traceback" not in demo.output
    assert demo.survivors() == []
    kept = re.search(r"The local AWS's log and state are kept in (\S+)", demo.output)
    assert kept
    assert Path(kept.group(1)).parent == temporary
    assert (Path(kept.group(1)) / "server.log").is_file()
    summary = json.loads(timings.read_text())
    assert (summary["outcome"], summary["failed_phase"]) == ("failed", "launch_iam")
