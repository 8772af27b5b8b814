"""Start and stop the local AWS in the background, for people and scripts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import DEFAULT_REGION, FAKE_CREDENTIALS, check_stabilize

STATUS_FILE = "server.json"
LOG_FILE = "server.log"


class ControlError(Exception):
    """Something the user can fix; the message says how."""


def status(state_dir: Path) -> dict[str, Any] | None:
    """The running server's details, or None (a stale status file is removed)."""
    path = state_dir / STATUS_FILE
    if not path.exists():
        return None
    info: dict[str, Any] = json.loads(path.read_text())
    if not _alive(int(info["pid"])):
        path.unlink(missing_ok=True)
        return None
    return info


def spawn(
    state_dir: Path,
    port: int,
    *,
    stdout: Any,
    stderr: Any = None,
    stabilize: Mapping[str, float] | None = None,
) -> subprocess.Popen[Any]:
    """The server as a child process in a session of its own (so stopping it stops its
    Lambda workers too), with fake credentials: it must never reach a real account.

    `stabilize`: seconds CloudFormation waits per resource type created or deleted (the
    server's `--stabilize`); ValueError names the fix for a bad one before anything starts.
    """
    waits = check_stabilize(stabilize or {})
    env = {
        **os.environ,
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION),
    }
    command = [sys.executable, "-m", "localaws.server"]
    for resource_type, seconds in waits.items():
        command += ["--stabilize", f"{resource_type}={seconds!r}"]
    return subprocess.Popen(
        [*command, "--port", str(port), "--state-dir", str(state_dir)],
        stdout=stdout,
        stderr=stderr,
        env=env,
        text=True,
        start_new_session=True,
    )


def start(
    state_dir: Path,
    port: int = 0,
    timeout: float = 60.0,
    stabilize: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    running = status(state_dir)
    if running:
        raise ControlError(
            f"the local AWS already runs at {running['endpoint_url']} (pid {running['pid']}); "
            f"stop it first (its state directory is {state_dir})"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / LOG_FILE).open("ab") as log:
        try:
            process = spawn(
                state_dir, port, stdout=subprocess.DEVNULL, stderr=log, stabilize=stabilize
            )
        except ValueError as exc:
            raise ControlError(str(exc)) from exc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = status(state_dir)
        if info and int(info["pid"]) == process.pid:
            return info
        if process.poll() is not None:
            raise ControlError(
                f"the local AWS exited during start-up (code {process.returncode}): "
                f"{_last_line(state_dir / LOG_FILE)}; see {state_dir / LOG_FILE}"
            )
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise ControlError(
        f"the local AWS did not start within {timeout:.0f} s; see {state_dir / LOG_FILE}"
    )


def _last_line(log: Path) -> str:
    """What the server said last (its refusal of an option, say)."""
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "it wrote nothing"


def stop(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the server and every process it started; False if none was running."""
    info = status(state_dir)
    if info is None:
        return False
    pid = int(info["pid"])
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    (state_dir / STATUS_FILE).unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return True
