"""The queue machine's boot script, run: first boot, reboot, and the updates CloudFormation
applies by changing the user data and stopping and starting the instance (password rotation,
a new worker-queue version, a new queue address).

Each start must use the configuration the stack last set, read the password with the instance
role's credentials from the metadata service, and leave the password nowhere on disk but the
unit's tmpfs file.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from imds_standin import ImdsStandIn
from queue_machine_support import (
    COMMIT,
    ELASTIC_IP,
    PASSWORD,
    QUEUE_UNIT,
    REGION,
    SETUP_UNIT,
    Machine,
    user_data,
)

from valohai_hybrid.localaws.testing import LocalAwsHandle

LIB = "/usr/local/lib/valohai-worker-queue"
CONFIG = "/etc/valohai/worker-queue.env"
UNITS = "/etc/systemd/system"
PASSWORD_FILE = "/run/valohai-worker-queue/redis-password"
PACKAGES = ["ca-certificates", "curl", "git", "docker.io", "docker-buildx", "python3-boto3"]
NEW_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def config(machine: Machine) -> dict[str, str]:
    text = machine.path(CONFIG).read_text()
    return dict(line.split("=", 1) for line in text.splitlines())


def docker_runs(machine: Machine, since_mark: bool = False) -> list[dict[str, Any]]:
    return [c for c in machine.calls("docker", since_mark) if c["argv"][:1] == ["run"]]


def files_holding(machine: Machine, text: str) -> list[str]:
    """Every file of the machine and of the stubs' records that contains text."""
    found = []
    for base in (machine.root, machine.state):
        for path in base.rglob("*"):
            if path.is_file() and text.encode() in path.read_bytes():
                found.append(str(path.relative_to(machine.root.parent)))
    return sorted(found)


def update(machine: Machine, values: dict[str, str], **changes: str) -> None:
    """A stack update that changes the user data: CloudFormation stops the instance, sets the
    new user data, and starts the same instance."""
    values.update(changes)
    machine.power_off()
    machine.imds.instance.user_data = user_data(**values)
    machine.calls_mark = len(machine.calls())
    machine.boot_units()


def test_first_boot_installs_writes_and_starts_the_queue(machine: Machine) -> None:
    machine.first_boot()

    assert machine.argvs("apt-get") == [
        ["-o", "DPkg::Lock::Timeout=600", "update"],
        ["-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", *PACKAGES],
    ]
    assert machine.argvs("systemctl") == [
        ["enable", "--now", "docker.service"],
        ["daemon-reload"],
        ["enable", SETUP_UNIT, QUEUE_UNIT],
        ["restart", "--no-block", QUEUE_UNIT],
    ]
    image = f"valohai-worker-queue:{COMMIT}"
    assert [argv[:2] for argv in machine.argvs("docker")] == [
        ["rm", "--force"],
        ["image", "inspect"],
        ["build", "--tag"],
        ["run", "--rm"],
    ]
    assert machine.argvs("docker")[2] == [
        "build",
        "--tag",
        image,
        f"https://github.com/valohai/worker-queue.git#{COMMIT}:docker",
    ]

    written = {
        str(p.relative_to(machine.root)): mode(p)
        for p in machine.root.rglob("*")
        if p.is_file() and not p.is_relative_to(machine.path("/var/lib/cloud"))
    }
    assert written == {
        CONFIG.lstrip("/"): 0o644,
        f"{LIB}/imds".lstrip("/"): 0o755,
        f"{LIB}/read-redis-password".lstrip("/"): 0o755,
        f"{LIB}/prepare".lstrip("/"): 0o755,
        f"{LIB}/run".lstrip("/"): 0o755,
        f"{LIB}/setup-from-user-data".lstrip("/"): 0o755,
        f"{UNITS}/{QUEUE_UNIT}".lstrip("/"): 0o644,
        f"{UNITS}/{SETUP_UNIT}".lstrip("/"): 0o644,
        PASSWORD_FILE.lstrip("/"): 0o600,
    }
    assert mode(machine.path("/run/valohai-worker-queue")) == 0o700
    assert machine.path(PASSWORD_FILE).read_text() == PASSWORD
    assert files_holding(machine, PASSWORD) == ["root" + PASSWORD_FILE]
    assert config(machine) == {
        "QUEUE_ADDRESS": "acme.vqueue.net",
        "REDIS_PORT": "63790",
        "REDIS_SECRET_ID": machine.imds.instance.user_data.decode().split("REDIS_SECRET_ID='")[1]
        .split("'")[0],
        "AWS_REGION": REGION,
        "WORKER_QUEUE_IMAGE": image,
        "WORKER_QUEUE_BUILD_SOURCE": f"https://github.com/valohai/worker-queue.git#{COMMIT}:docker",
        "REDIS_PASSWORD_ROTATION": "",
    }
