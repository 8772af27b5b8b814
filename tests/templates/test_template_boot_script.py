"""The queue machine's boot script: what it writes, and how the unit's scripts behave.

The script lives in worker-queue.yml as an Fn::Sub literal. These tests render it, take out the
files it writes, and run the unit's helper scripts against a stand-in `docker` (and the password
reader against a mocked Secrets Manager), because the real machine cannot run here. shellcheck
runs on all of it through the E9004 cfn-lint rule (test_template_lint.py).
"""

from __future__ import annotations

import json
import re
import runpy
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support.cfn import load, sub_text

REGION = "eu-west-1"
PASSWORD = "Q7fJ2kLm9PzX4cVb8NwR1tYh6GdS3aEu"
COMMIT = "c1eed793c37d2d2f486c5233b03933b71f4ba491"
SUBSTITUTIONS = {
    "QueueAddress": "acme.vqueue.net",
    "QueueElasticIp": "203.0.113.10",
    "RedisSecret.Arn": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:ValohaiRedis-AbC123",
    "AWS::Region": REGION,
    "WorkerQueueVersion": COMMIT,
    "RedisPasswordRotationToken": "",
}
WRITTEN_FILE = re.compile(
    r"^cat >\"?([^\"\s]+)\"? <<('?)EOF'?\n(.*?)^EOF$", re.MULTILINE | re.DOTALL
)


def render(text: str, values: dict[str, str]) -> str:
    """What Fn::Sub makes of text: ${Name} gets its value, ${!Name} stays as ${Name}."""

    def substitute(match: re.Match[str]) -> str:
        escaped, name = match.groups()
        return "${" + name + "}" if escaped else values[name]

    return re.sub(r"\$\{(!?)([A-Za-z0-9_:.]+)\}", substitute, text)


def user_data() -> str:
    instance = load("worker-queue.yml")["Resources"]["QueueInstance"]
    return sub_text(instance["Properties"]["UserData"]["Fn::Base64"])


@dataclass
class WrittenFile:
    body: str
    literal: bool  # quoted here-document: written as is, not expanded by the boot script


def written_files() -> dict[str, WrittenFile]:
    script = render(user_data(), SUBSTITUTIONS)
    libdir = re.search(r"^readonly LIBDIR=(\S+)$", script, re.MULTILINE)
    assert libdir
    return {
        path.replace("$LIBDIR", libdir.group(1)): WrittenFile(body + "\n", quote == "'")
        for path, quote, body in WRITTEN_FILE.findall(script)
    }


def top_level_script() -> str:
    """The boot script itself, without the bodies of the files it writes."""
    return WRITTEN_FILE.sub("", render(user_data(), SUBSTITUTIONS))


LIB = "/usr/local/lib/valohai-worker-queue"
UNIT = "/etc/systemd/system/valohai-worker-queue.service"


def test_substitutions_are_only_safe_parameters_and_attributes() -> None:
    """Every substituted value lands in single quotes: none may contain a quote or a space."""
    names = set(re.findall(r"\$\{([A-Za-z0-9_:.]+)\}", user_data()))
    assert names == set(SUBSTITUTIONS)
    parameters = load("worker-queue.yml")["Parameters"]
    for name in ("QueueAddress", "WorkerQueueVersion", "RedisPasswordRotationToken"):
        pattern = parameters[name]["AllowedPattern"]
        assert not re.search(pattern, "acme'.vqueue.net"), name
        assert not re.search(pattern, "acme vqueue.net"), name


def test_the_boot_script_writes_the_unit_its_helpers_and_a_password_free_config() -> None:
    files = written_files()
    assert set(files) == {
        "/etc/valohai/worker-queue.env",
        f"{LIB}/read-redis-password",
        f"{LIB}/prepare",
        f"{LIB}/run",
        UNIT,
    }
    config = dict(
        line.split("=", 1) for line in files["/etc/valohai/worker-queue.env"].body.split()
    )
    assert set(config) == {
        "QUEUE_ADDRESS",
        "REDIS_PORT",
        "REDIS_SECRET_ID",
        "AWS_REGION",
        "WORKER_QUEUE_IMAGE",
        "WORKER_QUEUE_BUILD_SOURCE",
        "REDIS_PASSWORD_ROTATION",
    }
    assert all(files[path].literal for path in files if path != "/etc/valohai/worker-queue.env")


def test_the_password_never_passes_through_the_boot_script_or_the_unit() -> None:
    top = top_level_script()
    assert not re.search(r"REDIS_PASSWORD\b", top)
    assert not re.search(r"get[-_]secret[-_]value", top, re.IGNORECASE)
    assert not re.search(r"^\s*set -\w*x", top, re.MULTILINE)
    unit = written_files()[UNIT].body
    assert "PASSWORD" not in unit
    assert not re.search(r"^Environment=", unit, re.MULTILINE)


def pinned_image(version: str) -> list[str]:
    """The image and build source the boot script derives from WorkerQueueVersion."""
    script = render(user_data(), SUBSTITUTIONS)
    repository = re.search(r"^readonly (WORKER_QUEUE_REPOSITORY=\S+)$", script, re.MULTILINE)
    choice = re.search(r"^if \[\[ \$WORKER_QUEUE_VERSION .*?^fi$", script, re.MULTILINE | re.DOTALL)
    assert repository
    assert choice
    program = f"WORKER_QUEUE_VERSION={version}\n{repository.group(1)}\n{choice.group(0)}\n"
    program += 'printf "%s\\n" "$image" "$build_source"'
    result = subprocess.run(
        ["/bin/bash", "-c", program], capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


def test_nothing_is_downloaded_into_a_shell_and_the_queue_software_is_pinned() -> None:
    script = user_data()
    assert not re.search(r"(curl|wget)[^\n]*\|\s*(sudo\s+)?(ba)?sh", script)
    assert ":latest" not in script
    assert "WORKER_QUEUE_VERSION='${WorkerQueueVersion}'" in script
    config = written_files()["/etc/valohai/worker-queue.env"].body
    assert "WORKER_QUEUE_IMAGE=$image\nWORKER_QUEUE_BUILD_SOURCE=$build_source\n" in config
    assert pinned_image(COMMIT) == [
        f"valohai-worker-queue:{COMMIT}",
        f"https://github.com/valohai/worker-queue.git#{COMMIT}:docker",
    ]
    digest = "sha256:" + "ab" * 32
    assert pinned_image(digest) == [f"docker.io/valohai/worker-queue@{digest}", ""]


def test_the_boot_script_waits_for_the_elastic_ip_before_downloading() -> None:
    top = top_level_script()
    first_download = re.search(r"^retry \d+ apt-get", top, re.MULTILINE)
    assert first_download
    assert top.index("\nwait_for_elastic_ip\n") < first_download.start()
    assert "ELASTIC_IP='203.0.113.10'" in top
    assert "latest/api/token" in top  # IMDSv2: every metadata read carries a session token


def test_the_unit_restarts_forever_and_reads_the_password_at_every_start() -> None:
    unit = written_files()[UNIT].body
    settings = [line for line in unit.splitlines() if "=" in line and not line.startswith("#")]
    for expected in (
        "Wants=network-online.target",
        "After=network-online.target docker.service",
        "Requires=docker.service",
        "StartLimitIntervalSec=0",
        "EnvironmentFile=/etc/valohai/worker-queue.env",
        "RuntimeDirectory=valohai-worker-queue",
        "RuntimeDirectoryMode=0700",
        "UMask=0077",
        f"ExecStartPre={LIB}/prepare",
        f"ExecStart={LIB}/run",
        "Restart=always",
        "RestartSec=5min",
        "WantedBy=multi-user.target",
    ):
        assert expected in settings
    assert "systemctl enable --now --no-block valohai-worker-queue.service" in top_level_script()


FAKE_DOCKER = """#!{python}
import json, os, sys
with open(os.environ["DOCKER_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
if sys.argv[1:3] == ["image", "inspect"]:
    sys.exit(0 if os.environ.get("FAKE_IMAGE_PRESENT") else 1)
"""


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, Any]:
    """The unit's scripts in a directory, a stand-in docker and password reader, the unit's
    environment, and the log of docker calls."""
    lib = tmp_path / "lib"
    bin_dir = tmp_path / "bin"
    runtime = tmp_path / "run"
    for directory in (lib, bin_dir, runtime):
        directory.mkdir()
    files = written_files()
    for name in ("prepare", "run"):
        (lib / name).write_text(files[f"{LIB}/{name}"].body)
    (lib / "read-redis-password").write_text(f"#!/bin/sh\nprintf %s {PASSWORD}\n")
    (bin_dir / "docker").write_text(FAKE_DOCKER.format(python=sys.executable))
    for script in [*lib.iterdir(), bin_dir / "docker"]:
        script.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "DOCKER_LOG": str(tmp_path / "docker.log"),
        "RUNTIME_DIRECTORY": str(runtime),
        "QUEUE_ADDRESS": "acme.vqueue.net",
        "REDIS_PORT": "63790",
        "WORKER_QUEUE_IMAGE": f"valohai-worker-queue:{COMMIT}",
        "WORKER_QUEUE_BUILD_SOURCE": f"https://github.com/valohai/worker-queue.git#{COMMIT}:docker",
    }
    return {"lib": lib, "runtime": runtime, "env": env, "log": tmp_path / "docker.log"}


def docker_calls(machine: dict[str, Any]) -> list[dict[str, Any]]:
    log: Path = machine["log"]
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_script(machine: dict[str, Any], name: str, **env: str) -> None:
    subprocess.run([str(machine["lib"] / name)], env={**machine["env"], **env}, check=True)


def test_prepare_builds_the_pinned_commit_once_and_stores_the_password_root_only(
    machine: dict[str, Any],
) -> None:
    run_script(machine, "prepare")
    assert [call["argv"] for call in docker_calls(machine)] == [
        ["image", "inspect", f"valohai-worker-queue:{COMMIT}"],
        [
            "build",
            "--tag",
            f"valohai-worker-queue:{COMMIT}",
            f"https://github.com/valohai/worker-queue.git#{COMMIT}:docker",
        ],
    ]
    password_file = machine["runtime"] / "redis-password"
    assert password_file.read_text() == PASSWORD
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600


def test_prepare_pulls_a_pinned_digest_and_reuses_an_image_it_has(
    machine: dict[str, Any],
) -> None:
    digest_image = "docker.io/valohai/worker-queue@sha256:" + "0" * 64
    run_script(machine, "prepare", WORKER_QUEUE_IMAGE=digest_image, WORKER_QUEUE_BUILD_SOURCE="")
    run_script(machine, "prepare", FAKE_IMAGE_PRESENT="1")
    assert [call["argv"][:2] for call in docker_calls(machine)] == [
        ["image", "inspect"],
        ["pull", digest_image],
        ["image", "inspect"],
    ]


def test_run_hands_the_password_to_the_container_only_as_a_read_only_file(
    machine: dict[str, Any],
) -> None:
    run_script(machine, "run")
    (call,) = docker_calls(machine)
    argv = call["argv"]
    assert PASSWORD not in json.dumps(call)
    assert argv[:6] == ["run", "--rm", "--name", "valohai-worker-queue", "--network", "host"]
    runtime = machine["runtime"]
    assert (
        f"type=bind,source={runtime}/redis-password,target=/run/secrets/redis-password,readonly"
        in argv
    )
    assert "type=volume,source=acme,target=/var/lib/acme" in argv
    assert "type=volume,source=redis,target=/var/lib/redis" in argv
    assert argv[argv.index("--entrypoint") + 1 : argv.index("-c")] == [
        "/bin/bash",
        f"valohai-worker-queue:{COMMIT}",
    ]
    assert {"QUEUE_ADDRESS", "REDIS_PORT"} == {
        argv[i + 1] for i, arg in enumerate(argv) if arg == "--env"
    }


def test_the_container_command_exports_the_password_for_worker_queue(
    machine: dict[str, Any], tmp_path: Path
) -> None:
    """Run the container's command here: it must give run_worker_queue.sh the password."""
    run_script(machine, "run")
    argv = docker_calls(machine)[0]["argv"]
    secret = tmp_path / "secret"
    secret.write_text(PASSWORD)
    command = argv[argv.index("-c") + 1].replace("/run/secrets/redis-password", str(secret))
    entrypoint = tmp_path / "bin" / "run_worker_queue.sh"
    entrypoint.write_text('#!/bin/sh\nprintf %s "$REDIS_PASSWORD" >"$SEEN"\n')
    entrypoint.chmod(0o755)
    seen = tmp_path / "seen"
    subprocess.run(
        ["/bin/bash", "-c", command], env={**machine["env"], "SEEN": str(seen)}, check=True
    )
    assert seen.read_text() == PASSWORD


@pytest.fixture
def password_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "read-redis-password"
    path.write_text(written_files()[f"{LIB}/read-redis-password"].body)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("REDIS_SECRET_ID", "ValohaiRedisSecret")
    return path


@mock_aws
def test_password_reader_prints_the_secret_and_nothing_else(
    password_reader: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="ValohaiRedisSecret", SecretString=PASSWORD
    )
    runpy.run_path(str(password_reader), run_name="__main__")
    assert capsys.readouterr() == (PASSWORD, "")


@mock_aws
def test_password_reader_names_a_missing_secret(password_reader: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(password_reader), run_name="__main__")
    assert str(exited.value.code).startswith(
        "cannot read the Redis password from ValohaiRedisSecret:"
    )


@mock_aws
def test_password_reader_refuses_a_value_redis_cannot_take_without_showing_it(
    password_reader: Path,
) -> None:
    value = "not|a$password with spaces"
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="ValohaiRedisSecret", SecretString=value
    )
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(password_reader), run_name="__main__")
    message = str(exited.value.code)
    assert "does not hold a Redis password" in message
    assert "RedisPasswordRotationToken" in message
    assert value not in message


def test_helpers_are_executable_scripts_with_an_interpreter() -> None:
    files = written_files()
    assert files[f"{LIB}/read-redis-password"].body.startswith("#!/usr/bin/python3\n")
    for name in ("prepare", "run"):
        assert files[f"{LIB}/{name}"].body.startswith("#!/bin/bash\n")
    assert re.search(
        r'^chmod 0755 "\$LIBDIR/read-redis-password" "\$LIBDIR/prepare" "\$LIBDIR/run"$',
        user_data(),
        re.MULTILINE,
    )
