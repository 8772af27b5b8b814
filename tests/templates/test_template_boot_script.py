"""The queue machine's boot script as the template holds it: what it may contain, and the
password reader it writes.

tests/integration/queue_machine/ runs the script itself (first boot, reboot, updates) against
the local AWS and an IMDSv2 stand-in; these are the static checks and the password reader
against a mocked Secrets Manager. shellcheck runs on all of it through the E9004 cfn-lint rule
(test_template_lint.py).
"""

from __future__ import annotations

import re
import runpy
import subprocess
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.support.cfn import load, queue_user_data, render_sub

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
#: Where the script's path variables point on the queue machine (VALOHAI_QUEUE_ROOT unset).
PATHS = {
    "$LIBDIR": "/usr/local/lib/valohai-worker-queue",
    "$CONFIG": "/etc/valohai/worker-queue.env",
    "$UNITS": "/etc/systemd/system",
}
LIB = PATHS["$LIBDIR"]
QUEUE_UNIT = "/etc/systemd/system/valohai-worker-queue.service"
SETUP_UNIT = "/etc/systemd/system/valohai-queue-setup.service"


@dataclass
class WrittenFile:
    body: str
    literal: bool  # quoted here-document: written as is, not expanded by the boot script


def on_the_machine(text: str) -> str:
    for variable, path in PATHS.items():
        text = text.replace(variable, path)
    return text


def written_files() -> dict[str, WrittenFile]:
    script = render_sub(queue_user_data(), SUBSTITUTIONS)
    return {
        on_the_machine(path): WrittenFile(
            body + "\n" if quote else on_the_machine(body + "\n"), quote == "'"
        )
        for path, quote, body in WRITTEN_FILE.findall(script)
    }


def top_level_script() -> str:
    """The boot script itself, without the bodies of the files it writes."""
    return WRITTEN_FILE.sub("", render_sub(queue_user_data(), SUBSTITUTIONS))


def test_substitutions_are_only_safe_parameters_and_attributes() -> None:
    """Every substituted value lands in single quotes: none may contain a quote or a space."""
    names = set(re.findall(r"\$\{([A-Za-z0-9_:.]+)\}", queue_user_data()))
    assert names == set(SUBSTITUTIONS)
    parameters = load("worker-queue.yml")["Parameters"]
    for name in ("QueueAddress", "WorkerQueueVersion", "RedisPasswordRotationToken"):
        pattern = parameters[name]["AllowedPattern"]
        assert not re.search(pattern, "acme'.vqueue.net"), name
        assert not re.search(pattern, "acme vqueue.net"), name


def test_the_user_data_fits_ec2s_limit_with_the_longest_values() -> None:
    """EC2 takes at most 16 KB of user data before base64; a longer script fails the launch."""
    longest = {
        **SUBSTITUTIONS,
        "QueueAddress": ("a" * 63 + ".") * 3 + "a" * 61,
        "RedisSecret.Arn": "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:"
        + "s" * 512
        + "-AbC123",
        "WorkerQueueVersion": "sha256:" + "0" * 64,
        "RedisPasswordRotationToken": "t" * 64,
    }
    assert len(render_sub(queue_user_data(), longest).encode()) <= 16 * 1024


def test_the_boot_script_writes_the_units_their_helpers_and_a_password_free_config() -> None:
    files = written_files()
    assert set(files) == {
        "/etc/valohai/worker-queue.env",
        f"{LIB}/imds",
        f"{LIB}/read-redis-password",
        f"{LIB}/prepare",
        f"{LIB}/run",
        f"{LIB}/setup-from-user-data",
        QUEUE_UNIT,
        SETUP_UNIT,
    }
    literal = {path for path, file in files.items() if file.literal}
    assert literal == {path for path in files if path.startswith(LIB)}


def test_the_password_never_passes_through_the_boot_script_or_the_units() -> None:
    top = top_level_script()
    assert not re.search(r"REDIS_PASSWORD\b", top)
    assert not re.search(r"get[-_]secret[-_]value", top, re.IGNORECASE)
    assert not re.search(r"^\s*set -\w*x", queue_user_data(), re.MULTILINE)
    for unit in (QUEUE_UNIT, SETUP_UNIT):
        body = written_files()[unit].body
        assert "PASSWORD" not in body
        assert not re.search(r"^Environment=", body, re.MULTILINE)


def test_nothing_is_downloaded_into_a_shell_and_the_queue_software_is_pinned() -> None:
    script = queue_user_data()
    assert not re.search(r"(curl|wget)[^\n]*\|\s*(sudo\s+)?(ba)?sh", script)
    assert ":latest" not in script
    assert "WORKER_QUEUE_VERSION='${WorkerQueueVersion}'" in script
    config = written_files()["/etc/valohai/worker-queue.env"].body
    assert "WORKER_QUEUE_IMAGE=$image\nWORKER_QUEUE_BUILD_SOURCE=$build_source\n" in config


def test_the_boot_script_waits_for_the_elastic_ip_before_downloading() -> None:
    top = top_level_script()
    first_download = re.search(r"^\s*retry \d+ apt-get", top, re.MULTILINE)
    assert first_download
    assert top.index("\nwait_for_elastic_ip\n") < first_download.start()
    imds = written_files()[f"{LIB}/imds"].body
    assert "latest/api/token" in imds  # IMDSv2: every metadata read carries a session token
    assert "endpoint=http://169.254.169.254\n" in imds


def unit_settings(path: str) -> list[str]:
    body = written_files()[path].body
    return [line for line in body.splitlines() if "=" in line and not line.startswith("#")]


def test_the_queue_unit_restarts_forever_and_reads_the_password_at_every_start() -> None:
    settings = unit_settings(QUEUE_UNIT)
    for expected in (
        "Wants=network-online.target",
        "After=network-online.target docker.service valohai-queue-setup.service",
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
    # The queue needs the setup only to be ordered after it: if the setup fails, the queue
    # still starts, with the configuration of the previous boot.
    assert not any(s.startswith(("Requires=valohai", "BindsTo=")) for s in settings)


def test_the_setup_unit_runs_at_every_boot_before_the_queue() -> None:
    settings = unit_settings(SETUP_UNIT)
    for expected in (
        "Before=valohai-worker-queue.service",
        "Type=oneshot",
        "RuntimeDirectory=valohai-queue-setup",
        "RuntimeDirectoryMode=0700",
        f"ExecStart={LIB}/setup-from-user-data",
        "WantedBy=multi-user.target",
    ):
        assert expected in settings
    assert "systemctl enable valohai-queue-setup.service valohai-worker-queue.service" in (
        top_level_script()
    )


def test_the_container_command_exports_the_password_for_worker_queue(tmp_path: Path) -> None:
    """Run the container's command here: it must give run_worker_queue.sh the password."""
    run = written_files()[f"{LIB}/run"].body
    command = re.search(r"^\s*-c '(.*)'$", run, re.MULTILINE)
    assert command
    secret = tmp_path / "secret"
    secret.write_text(PASSWORD)
    entrypoint = tmp_path / "run_worker_queue.sh"
    entrypoint.write_text('#!/bin/sh\nprintf %s "$REDIS_PASSWORD" >"$SEEN"\n')
    entrypoint.chmod(0o755)
    seen = tmp_path / "seen"
    subprocess.run(
        ["/bin/bash", "-c", command.group(1).replace("/run/secrets/redis-password", str(secret))],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin", "SEEN": str(seen)},
        check=True,
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
    assert files[f"{LIB}/read-redis-password"].body.startswith("#!/usr/bin/env python3\n")
    helpers = ("imds", "prepare", "run", "setup-from-user-data")
    for name in helpers:
        assert files[f"{LIB}/{name}"].body.startswith("#!/bin/bash\n")
    joined = top_level_script().replace("\\\n", " ")
    chmods = re.findall(r"^chmod 0755 (.*)$", joined, re.MULTILINE)
    made_executable = set(re.findall(r"\"\$LIBDIR/([a-z-]+)\"", " ".join(chmods)))
    assert made_executable == {*helpers, "read-redis-password"}


def test_only_the_host_gets_instance_metadata() -> None:
    """IMDSv2 only, answers one hop away: a container on Docker's bridge network gets no token
    (tests/integration/queue_machine/ checks that the container is on that network)."""
    instance = load("worker-queue.yml")["Resources"]["QueueInstance"]["Properties"]
    assert instance["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
        "InstanceMetadataTags": "disabled",
    }
    run = written_files()[f"{LIB}/run"].body
    assert "--network bridge" in run
    assert "--network host" not in run


def test_valohai_cannot_change_the_user_data_the_machine_runs_at_boot() -> None:
    """The setup runs the user data as root at every boot: ValohaiMaster may neither change it
    nor stop and start the machine."""
    role = load("iam.yml")["Resources"]["ValohaiMasterRole"]["Properties"]
    actions = [
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    ]
    for forbidden in ("ec2:ModifyInstanceAttribute", "ec2:StopInstances", "ec2:StartInstances"):
        assert not any(
            re.fullmatch(re.escape(a).replace(r"\*", ".*"), forbidden, re.IGNORECASE)
            for a in actions
        ), forbidden
