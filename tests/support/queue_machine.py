"""A queue machine on this machine: the boot script and its units run for real under a root
directory, against the local AWS and a local IMDSv2 stand-in, with systemctl, docker and the
package manager replaced by recording stubs (machine_stubs.py) first on PATH.

What it models of EC2 and Ubuntu: cloud-init runs the user data once, at the first boot
(`first_boot`); a stop or reboot stops the units and empties /run, a tmpfs (`power_off`); at
every boot systemd starts the enabled units, the setup before the queue (`boot`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cfn import queue_user_data, render_sub
from tests.support.imds_standin import TOKEN_HEADER, TTL_HEADER, ImdsStandIn

REGION = "eu-west-1"
ELASTIC_IP = "203.0.113.10"
PASSWORD = "Q7fJ2kLm9PzX4cVb8NwR1tYh6GdS3aEu"
COMMIT = "c1eed793c37d2d2f486c5233b03933b71f4ba491"
STUBS = Path(__file__).with_name("machine_stubs.py")
SETUP_UNIT = "valohai-queue-setup.service"
QUEUE_UNIT = "valohai-worker-queue.service"
BOOT_ORDER = ("docker.service", SETUP_UNIT, QUEUE_UNIT)  # After= of the units


def user_data(**values: str) -> bytes:
    """The template's user data as CloudFormation renders it for these Fn::Sub values."""
    return render_sub(queue_user_data(), values).encode()


@dataclass
class Machine:
    root: Path
    state: Path
    env: dict[str, str]
    imds: ImdsStandIn

    @classmethod
    def create(cls, base: Path, imds: ImdsStandIn, aws_env: dict[str, str]) -> Machine:
        root, state, bin_dir = base / "root", base / "stub-state", base / "bin"
        for directory in (root, state, bin_dir):
            directory.mkdir()
        for command in ("systemctl", "docker", "apt-get", "dpkg-query"):
            wrapper = bin_dir / command
            wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {STUBS} {command} "$@"\n')
            wrapper.chmod(0o755)
        # The helpers' `#!/usr/bin/env python3` finds Ubuntu's python3 with python3-boto3
        # there; here the interpreter of this test run, which has boto3.
        python = bin_dir / "python3"
        python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        python.chmod(0o755)
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(root),
            "LANG": "C.UTF-8",
            "VALOHAI_QUEUE_ROOT": str(root),
            "VALOHAI_QUEUE_IMDS": imds.endpoint,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint + "/",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "STUB_STATE": str(state),
            **aws_env,
        }
        return cls(root, state, env, imds)

    def user_data(self) -> bytes:
        """The user data as cloud-init reads it: through IMDSv2."""
        put = urllib.request.Request(
            self.imds.endpoint + "/latest/api/token", method="PUT", headers={TTL_HEADER: "60"}
        )
        with urllib.request.urlopen(put, timeout=5) as answer:
            token = answer.read().decode()
        get = urllib.request.Request(
            self.imds.endpoint + "/latest/user-data", headers={TOKEN_HEADER: token}
        )
        with urllib.request.urlopen(get, timeout=5) as answer:
            return bytes(answer.read())

    def first_boot(self) -> None:
        """cloud-init's scripts-user: the user data saved root-only, then run, once."""
        script = self.root / "var/lib/cloud/instance/scripts/part-001"
        script.parent.mkdir(parents=True)
        script.write_bytes(self.user_data())
        script.chmod(0o700)
        subprocess.run([str(script)], env=self.env, check=True)

    def power_off(self) -> None:
        """systemd stops the units; /run (tmpfs) is gone with the power."""
        for unit in reversed(BOOT_ORDER):
            subprocess.run(["systemctl", "stop", unit], env=self.env, check=True)
        run = self.root / "run"
        if run.exists():
            for entry in sorted(run.rglob("*"), reverse=True):
                entry.rmdir() if entry.is_dir() else entry.unlink()

    def boot_units(self) -> None:
        """What systemd starts at boot: the enabled units, in their After= order. A unit that
        fails does not stop the boot (the queue unit orders after the setup, needs it not)."""
        enabled = self.stub_state("enabled", [])
        for unit in BOOT_ORDER:
            if unit in enabled:
                subprocess.run(["systemctl", "start", unit], env=self.env, check=False)

    def reboot(self, new_user_data: bytes | None = None) -> None:
        """A reboot, or a stop and start of the same instance; CloudFormation's, to apply an
        update, sets new user data while the instance is stopped."""
        self.power_off()
        if new_user_data is not None:
            self.imds.instance.user_data = new_user_data
        self.calls_mark = len(self.calls())
        self.boot_units()

    def stub_state(self, name: str, default: Any) -> Any:
        path = self.state / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else default

    calls_mark: int = 0

    def calls(self, command: str | None = None, since_mark: bool = False) -> list[dict[str, Any]]:
        """Every recorded call (of one command), oldest first; since the last reboot if asked."""
        log = self.state / "calls.jsonl"
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        if since_mark:
            entries = entries[self.calls_mark :]
        return [e for e in entries if command is None or e["command"] == command]

    def argvs(self, command: str, since_mark: bool = False) -> list[list[str]]:
        return [e["argv"] for e in self.calls(command, since_mark)]

    def path(self, absolute: str) -> Path:
        """Where the machine's /absolute is here."""
        return self.root / absolute.lstrip("/")
