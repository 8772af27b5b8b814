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
from localaws.harness import LocalAwsHandle

from tests.support.imds_standin import ImdsStandIn
from tests.support.queue_machine import (
    COMMIT,
    ELASTIC_IP,
    PASSWORD,
    QUEUE_UNIT,
    REGION,
    SETUP_UNIT,
    Machine,
    user_data,
)

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
    machine.reboot(user_data(**values))


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
        "REDIS_SECRET_ID": machine.imds.instance.user_data.decode()
        .split("REDIS_SECRET_ID='")[1]
        .split("'")[0],
        "AWS_REGION": REGION,
        "WORKER_QUEUE_IMAGE": image,
        "WORKER_QUEUE_BUILD_SOURCE": f"https://github.com/valohai/worker-queue.git#{COMMIT}:docker",
        "REDIS_PASSWORD_ROTATION": "",
    }
    # The password came from Secrets Manager with the role's credentials, served by IMDSv2.
    role = machine.imds.instance.role_name
    assert f"/latest/meta-data/iam/security-credentials/{role}" in machine.imds.paths_read()
    assert all(r.with_token for r in machine.imds.requests if r.method == "GET")


def test_a_reboot_reruns_the_setup_and_starts_with_the_same_configuration(
    machine: Machine,
) -> None:
    machine.first_boot()
    before = config(machine)
    machine.reboot()

    assert machine.path(PASSWORD_FILE).read_text() == PASSWORD
    assert files_holding(machine, PASSWORD) == ["root" + PASSWORD_FILE]
    assert config(machine) == before
    assert "/latest/user-data" in machine.imds.paths_read()
    # Installed packages and the built image are kept: nothing is downloaded again.
    assert machine.argvs("apt-get", since_mark=True) == []
    assert [argv[:2] for argv in machine.argvs("docker", since_mark=True)] == [
        ["rm", "--force"],
        ["image", "inspect"],
        ["run", "--rm"],
    ]
    assert machine.argvs("systemctl", since_mark=True) == [
        ["start", "docker.service"],
        ["start", SETUP_UNIT],
        ["enable", "--now", "docker.service"],
        ["daemon-reload"],
        ["enable", SETUP_UNIT, QUEUE_UNIT],
        ["restart", "--no-block", QUEUE_UNIT],
        ["start", QUEUE_UNIT],  # already started by the setup: one run, not two
    ]
    assert len(docker_runs(machine, since_mark=True)) == 1
    # The setup's copy of the user data lived in its own tmpfs directory, gone when it ended.
    assert not machine.path("/run/valohai-queue-setup").exists()


def test_a_rotated_password_is_read_at_the_start_that_the_new_token_causes(
    machine: Machine, stack_values: dict[str, str], local_aws: LocalAwsHandle
) -> None:
    machine.first_boot()
    new_password = "Zx8Cv7Bn6Mq5Wl4Ek3Rj2Th1Yg0UfPaD"
    # Custom::ValohaiRedisSecret puts the new value before the instance is updated.
    local_aws.client("secretsmanager", REGION).put_secret_value(
        SecretId=stack_values["RedisSecret.Arn"], SecretString=new_password
    )
    update(machine, stack_values, RedisPasswordRotationToken="2026-12")

    assert machine.path(PASSWORD_FILE).read_text() == new_password
    assert files_holding(machine, new_password) == ["root" + PASSWORD_FILE]
    assert files_holding(machine, PASSWORD) == []
    assert config(machine)["REDIS_PASSWORD_ROTATION"] == "2026-12"
    (run,) = docker_runs(machine, since_mark=True)
    assert new_password not in str(run)


def test_a_new_worker_queue_version_is_built_and_run_at_the_next_start(
    machine: Machine, stack_values: dict[str, str]
) -> None:
    machine.first_boot()
    update(machine, stack_values, WorkerQueueVersion=NEW_COMMIT)

    image = f"valohai-worker-queue:{NEW_COMMIT}"
    assert config(machine)["WORKER_QUEUE_IMAGE"] == image
    assert [
        "build",
        "--tag",
        image,
        f"https://github.com/valohai/worker-queue.git#{NEW_COMMIT}:docker",
    ] in machine.argvs("docker", since_mark=True)
    (run,) = docker_runs(machine, since_mark=True)
    assert run["env"]["WORKER_QUEUE_IMAGE"] == image
    assert image in run["argv"]
    # The queue's data and certificate live in named volumes on the kept disk.
    assert "type=volume,source=acme,target=/var/lib/acme" in run["argv"]
    assert "type=volume,source=redis,target=/var/lib/redis" in run["argv"]

    digest = "sha256:" + "ab" * 32
    update(machine, stack_values, WorkerQueueVersion=digest)
    pinned = f"docker.io/valohai/worker-queue@{digest}"
    assert ["pull", pinned] in machine.argvs("docker", since_mark=True)
    (run,) = docker_runs(machine, since_mark=True)
    assert pinned in run["argv"]


def test_a_new_queue_address_reaches_worker_queue_at_the_next_start(
    machine: Machine, stack_values: dict[str, str]
) -> None:
    machine.first_boot()
    assert docker_runs(machine)[0]["env"]["QUEUE_ADDRESS"] == "acme.vqueue.net"
    update(machine, stack_values, QueueAddress="queue.acme.example.com")

    assert config(machine)["QUEUE_ADDRESS"] == "queue.acme.example.com"
    (run,) = docker_runs(machine, since_mark=True)
    assert run["env"]["QUEUE_ADDRESS"] == "queue.acme.example.com"
    assert run["argv"][run["argv"].index("--env") + 1] == "QUEUE_ADDRESS"
    assert machine.argvs("apt-get", since_mark=True) == []


def test_the_container_is_on_the_bridge_network_with_only_its_two_ports(
    machine: Machine,
) -> None:
    """With hop limit 1 only a process in the host's own network namespace gets an answer from
    the metadata service; the container must not share it."""
    machine.first_boot()
    (run,) = docker_runs(machine)
    argv = run["argv"]
    assert "host" not in argv
    assert not any(a.startswith("--network=") or a == "--net" for a in argv)
    assert argv[argv.index("--network") + 1] == "bridge"
    published = [argv[i + 1] for i, a in enumerate(argv) if a == "--publish"]
    assert published == ["63790:63790", "80:80"]
    assert not any(a in ("--privileged", "--pid", "--cap-add") for a in argv)


def test_when_the_user_data_cannot_be_used_the_queue_starts_with_the_previous_configuration(
    machine: Machine, stack_values: dict[str, str]
) -> None:
    machine.first_boot()
    before = config(machine)
    # The setup refuses what is not the queue's setup, and fails.
    machine.reboot(b"#!/bin/bash\necho something else\n")

    assert config(machine) == before
    (run,) = docker_runs(machine, since_mark=True)
    assert run["env"]["QUEUE_ADDRESS"] == before["QUEUE_ADDRESS"]
    assert machine.path(PASSWORD_FILE).read_text() == PASSWORD


def run_imds_helper(machine: Machine, endpoint: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(machine.path(f"{LIB}/imds")), "meta-data/public-ipv4"],
        env={**machine.env, "VALOHAI_QUEUE_IMDS": endpoint},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_metadata_endpoint_moves_only_to_loopback_and_needs_a_token(
    machine: Machine, imds: ImdsStandIn
) -> None:
    machine.first_boot()
    assert run_imds_helper(machine, imds.endpoint).stdout == ELASTIC_IP
    for elsewhere in ("http://203.0.113.9:80", "http://127.0.0.1.example.com:80", "file:///etc"):
        refused = run_imds_helper(machine, elsewhere)
        assert refused.returncode == 2
        assert "must be http://127.0.0.1:<port>" in refused.stderr
    # No token, no answer: what a token-less (IMDSv1) read gets.
    bare = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"{imds.endpoint}/latest/user-data",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert bare.stdout == "401"


@pytest.mark.parametrize("root", ["relative/dir", "/", "/no/such/directory"])
def test_the_root_directory_override_must_be_an_existing_absolute_directory(
    machine: Machine, root: str
) -> None:
    script = machine.path("/user-data")
    script.write_bytes(machine.user_data())
    result = subprocess.run(
        ["/bin/bash", str(script)],
        env={**machine.env, "VALOHAI_QUEUE_ROOT": root},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "VALOHAI_QUEUE_ROOT must be an existing absolute directory" in result.stdout
    assert not machine.state.joinpath("calls.jsonl").exists()
