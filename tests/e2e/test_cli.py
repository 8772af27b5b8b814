"""`valohai-hybrid` as a customer admin and a script use it, run as a subprocess against the
local AWS with a published platform: launching, updating, describing and terminating the
products, and the exit codes and messages of every kind of mistake (never a traceback)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import ROOT, cli

from valohai_hybrid.localaws.testing import LocalAwsHandle
from valohai_hybrid.publish import Published, PublishOptions, publish
from valohai_hybrid.standin import DEVELOPMENT_PLATFORM, Fault, StandIn

# A region no other test package uses: the platform's names are fixed per account and region.
REGION = "ca-central-1"
SETUP_TOKEN = "cli-e2e-setup-token-Qm7Zr2Wx9Lk4Vp8Tn3"
VALOHAI_PRINCIPAL = "arn:aws:iam::905675611115:user/valohai-customer-acme"
EXTERNAL_ID = "valohai-acme-cli-5d21"
KEY_PAIR = "cli-queue-key"
#: A mistyped ValohaiMasterRoleARN: no such role, so a Workers launch fails.
MASTER = "arn:aws:iam::123456789012:role/ValohaiMaster"
MISSING_SUBNET = "subnet-0123456789abcdef0"
SUBCOMMANDS = (
    "demo",
    "local-aws",
    "docs",
    "launch",
    "update",
    "terminate",
    "describe",
    "doctor",
    "package",
    "publish",
)


@pytest.fixture(scope="module")
def admin(local_aws: LocalAwsHandle) -> dict[str, str]:
    """The environment of a customer admin's shell: an IAM user's own access key."""
    iam = local_aws.client("iam", REGION)
    arn = iam.create_user(UserName="cli-customer-admin")["User"]["Arn"]
    key = iam.create_access_key(UserName="cli-customer-admin")["AccessKey"]
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return {
        **environment,
        "ADMIN_ARN": arn,
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": local_aws.endpoint_url,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


@pytest.fixture(scope="module")
def platform(local_aws: LocalAwsHandle, admin: dict[str, str]) -> Iterator[Published]:
    os.environ["AWS_ENDPOINT_URL"] = local_aws.endpoint_url
    try:
        published = publish(
            PublishOptions(
                project_dir=ROOT,
                region=REGION,
                principals=[admin["ADMIN_ARN"]],
                sam=ROOT / ".tools" / "sam" / "bin" / "sam",
                verbose=False,
                parameters=DEVELOPMENT_PLATFORM,
            ),
            log=lambda _: None,
        )
    finally:
        del os.environ["AWS_ENDPOINT_URL"]
    local_aws.client("ec2", REGION).create_key_pair(KeyName=KEY_PAIR)
    yield published
    cloudformation = local_aws.client("cloudformation", REGION)
    (stack,) = cloudformation.describe_stacks(StackName=published.stack_name)["Stacks"]
    cloudformation.delete_stack(StackName=stack["StackId"])
    local_aws.wait_for_stack(stack["StackId"], region=REGION)


@pytest.fixture(scope="module")
def standin(local_aws: LocalAwsHandle) -> Iterator[StandIn]:
    with StandIn([SETUP_TOKEN], local_aws.state_dir) as server:
        yield server


def _workers(standin: StandIn, tmp_path: Path, master: str, suffix: str) -> list[str]:
    token = tmp_path / "setup-token.txt"
    token.write_text(SETUP_TOKEN + "\n")
    return [
        f"ValohaiMasterRoleARN={master}",
        f"QueueAddress={suffix}.vqueue.net",
        f"SetupToken=@{token}",
        f"KeyPair={KEY_PAIR}",
        f"Suffix={suffix}",
        f"RedisSecretName=ValohaiRedisSecret-{suffix}",
        f"ValohaiApiUrl={standin.url}",
    ]


def test_help_shows_every_command_and_the_exit_codes() -> None:
    shown = cli("--help")
    assert shown.returncode == 0
    for command in SUBCOMMANDS:
        assert command in shown.stdout
    assert "130  interrupted" in shown.stdout
    for command in ("launch", "update", "terminate", "describe", "doctor", "demo"):
        helped = cli(command, "--help")
        assert helped.returncode == 0, helped.stderr
        assert "exit codes:" in helped.stdout
    assert "KEY=@FILE" in cli("launch", "--help").stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
            "Unable to locate credentials (sign in: aws sso login",
        ),
        ({"AWS_REGION": None}, "no AWS region: pass --region or set AWS_REGION"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "check the network, and AWS_ENDPOINT_URL"),
        ({"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000000"}, None),
    ],
    ids=["no-credentials", "no-region", "unreachable", "unknown-key"],
)
def test_when_aws_cannot_be_used_the_exit_code_is_3(
    platform: Published, admin: dict[str, str], change: dict[str, str | None], message: str | None
) -> None:
    environment = {**admin, "AWS_EC2_METADATA_DISABLED": "true"}
    for name, value in change.items():
        if value is None:
            environment.pop(name)
        else:
            environment[name] = value
    result = cli("describe", "valohai-workers", env=environment)
    if message is None:
        # The local AWS takes any key as the account root, which sees no such product.
        assert result.returncode == 2, result.stderr
    else:
        assert result.returncode == 3, result.stderr
        assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["launch", "Valohai Hybrid Wrokers", "x"],
            "no product 'Valohai Hybrid Wrokers' is available to you here (products you may "
            "launch: 'Valohai Hybrid IAM', 'Valohai Hybrid Workers')",
        ),
        (["launch", "iam", "x", "AssumeRoleARN"], "parameter 'AssumeRoleARN' is not KEY=VALUE"),
        (["launch", "iam", "x"], "Valohai Hybrid IAM needs AssumeRoleARN (ARN of the IAM"),
        (
            [
                "launch",
                "iam",
                "x",
                f"AssumeRoleARN={VALOHAI_PRINCIPAL}",
                f"ExternalId={EXTERNAL_ID}",
                "Colour=blue",
            ],
            "Valohai Hybrid IAM has no parameter Colour; its parameters are AssumeRoleARN, "
            "ExternalId",
        ),
        (
            [
                "launch",
                "iam",
                "x",
                f"AssumeRoleARN={VALOHAI_PRINCIPAL}",
                f"ExternalId={EXTERNAL_ID}",
                "--version",
                "9.9.9",
            ],
            "Valohai Hybrid IAM has no version '9.9.9' (it offers: 0.1.0)",
        ),
        (
            ["launch", "workers", "x", "NotificationPolicy=Sometimes"],
            "NotificationPolicy='Sometimes' is not allowed: choose one of BestEffort, Required",
        ),
        (
            ["launch", "workers", "x", "SetupToken=@/nonexistent/token.txt"],
            "SetupToken=@/nonexistent/token.txt: cannot read it (No such file or directory)",
        ),
        (
            [
                "launch",
                "iam",
                "not a name!",
                f"AssumeRoleARN={VALOHAI_PRINCIPAL}",
                f"ExternalId={EXTERNAL_ID}",
            ],
            "Service Catalog refused it: ProvisionedProductName 'not a name!' is not valid",
        ),
        (["terminate", "nobody"], "no launched product 'nobody' here"),
        (["update", "nobody", "KeyPair=x"], "no launched product 'nobody' here"),
    ],
    ids=[
        "unknown-product",
        "not-key-value",
        "missing-parameter",
        "unknown-parameter",
        "unknown-version",
        "value-not-allowed",
        "unreadable-file",
        "bad-name",
        "terminate-unknown",
        "update-unknown",
    ],
)
def test_mistakes_change_nothing_exit_2_and_say_what_to_give(
    local_aws: LocalAwsHandle,
    platform: Published,
    admin: dict[str, str],
    arguments: list[str],
    message: str,
) -> None:
    result = cli(*arguments, env=admin)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    servicecatalog = local_aws.client("servicecatalog", REGION)
    assert servicecatalog.search_provisioned_products()["ProvisionedProducts"] == []


def test_a_customer_admin_launches_updates_and_terminates_from_the_command_line(
    local_aws: LocalAwsHandle,
    platform: Published,
    admin: dict[str, str],
    standin: StandIn,
    tmp_path: Path,
) -> None:
    launched = cli(
        "launch",
        "iam",
        "cli-iam",
        f"AssumeRoleARN={VALOHAI_PRINCIPAL}",
        f"ExternalId={EXTERNAL_ID}",
        env=admin,
    )
    assert launched.returncode == 0, launched.stderr
    assert re.search(r"CREATE_COMPLETE\s+AWS::IAM::Role\s+ValohaiMasterRole", launched.stdout)
    master = re.search(r"ValohaiMasterRoleARN\s+(\S+)", launched.stdout)
    assert master

    workers = _workers(standin, tmp_path, master.group(1), "cli-e2e")
    launched = cli("launch", "workers", "cli-workers", *workers, "--json", env=admin)
    assert launched.returncode == 0, launched.stderr
    # Progress on stderr, the result as JSON on stdout.
    assert re.search(
        r"CREATE_COMPLETE\s+AWS::EC2::Instance\s+WorkerQueue/QueueInstance", launched.stderr
    )
    result = json.loads(launched.stdout)
    assert result["status"] == "SUCCEEDED"
    assert result["outputs"]["ValohaiNotificationDelivery"] == "delivered"
    assert SETUP_TOKEN not in launched.stdout + launched.stderr

    described = cli("describe", "cli-workers", env=admin)
    assert described.returncode == 0, described.stderr
    assert "cli-workers" in described.stdout
    assert "AVAILABLE" in described.stdout
    assert "Valohai Hybrid Workers 0.1.0" in described.stdout

    # An update changes what it is given and keeps everything else, the hidden token too.
    updated = cli("update", "cli-workers", "FlowLogRetentionInDays=30", env=admin)
    assert updated.returncode == 0, updated.stderr
    assert "UPDATE_COMPLETE" in updated.stdout
    (stack,) = local_aws.client("cloudformation", REGION).describe_stacks(
        StackName=result["stack_id"]
    )["Stacks"]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["FlowLogRetentionInDays"] == "30"
    assert parameters["QueueAddress"] == "cli-e2e.vqueue.net"
    secrets = local_aws.client("secretsmanager", REGION)
    token_secret = f"valohai-hybrid/setup-token/{stack['StackName']}"
    assert secrets.get_secret_value(SecretId=token_secret)["SecretString"] == SETUP_TOKEN

    for name in ("cli-workers", "cli-iam"):
        terminated = cli("terminate", name, env=admin)
        assert terminated.returncode == 0, terminated.stderr
        assert "DELETE_COMPLETE" in terminated.stdout
    gone = cli("describe", "cli-workers", env=admin)
    assert gone.returncode == 2
    assert "no launched product 'cli-workers'" in gone.stderr


def test_a_failed_launch_exits_1_with_the_reason(
    platform: Published, admin: dict[str, str], standin: StandIn, tmp_path: Path
) -> None:
    # The Workers product, after the IAM product, given a subnet that does not exist.
    iam = cli(
        "launch",
        "iam",
        "cli-iam-failed",
        f"AssumeRoleARN={VALOHAI_PRINCIPAL}",
        f"ExternalId={EXTERNAL_ID}",
        env=admin,
    )
    assert iam.returncode == 0, iam.stderr
    workers = _workers(standin, tmp_path, MASTER, "cli-failed")
    workers += ["VpcId=vpc-0123456789abcdef0", f"SubnetIds={MISSING_SUBNET}"]
    failed = cli("launch", "workers", "cli-failed", *workers, env=admin)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Launching Valohai Hybrid Workers as cli-failed: FAILED" in failed.stdout
    assert f"[QueueInstance] The subnet ID '{MISSING_SUBNET}' does not exist" in failed.stdout
    assert "Traceback" not in failed.stderr
    assert cli("terminate", "cli-failed", env=admin).returncode == 0
    assert cli("terminate", "cli-iam-failed", env=admin).returncode == 0


def _described_when_done(name: str, admin: dict[str, str]) -> dict[str, Any]:
    """`describe NAME --json` once the product is no longer UNDER_CHANGE (exit code 1 until)."""
    deadline = time.monotonic() + 60
    while True:
        described = cli("describe", name, "--json", env=admin)
        result: dict[str, Any] = json.loads(described.stdout)
        if result["status"] != "UNDER_CHANGE":
            assert described.returncode == (0 if result["status"] == "AVAILABLE" else 1)
            return result
        assert described.returncode == 1
        assert time.monotonic() < deadline, result
        time.sleep(0.5)


def test_without_waiting_and_after_the_wait_ends_describe_follows_the_launch(
    platform: Published, admin: dict[str, str], standin: StandIn, tmp_path: Path
) -> None:
    started = cli(
        "launch",
        "iam",
        "cli-iam-2",
        f"AssumeRoleARN={VALOHAI_PRINCIPAL}",
        f"ExternalId={EXTERNAL_ID}",
        "--no-wait",
        "--json",
        env=admin,
    )
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["record_id"].startswith("rec-")
    iam = _described_when_done("cli-iam-2", admin)
    assert iam["status"] == "AVAILABLE"
    assert iam["product"] == "Valohai Hybrid IAM"

    # Valohai takes its time to answer the hand-off: the launch outlasts the wait.
    standin.receiver.inject(Fault(count=1, delay=3.0))
    workers = _workers(standin, tmp_path, iam["outputs"]["ValohaiMasterRoleARN"], "cli-waited")
    waited = cli("launch", "workers", "cli-waited", *workers, "--timeout", "0.5", env=admin)
    assert waited.returncode == 4, waited.stdout + waited.stderr
    assert "it goes on in AWS: follow it with `valohai-hybrid describe cli-waited`" in (
        waited.stderr
    )
    described = _described_when_done("cli-waited", admin)
    assert described["status"] == "AVAILABLE"
    assert described["outputs"]["ValohaiNotificationDelivery"] == "delivered"
    for name in ("cli-waited", "cli-iam-2"):
        assert cli("terminate", name, env=admin).returncode == 0


def test_an_admin_who_may_not_read_stack_events_still_gets_the_result(
    local_aws: LocalAwsHandle, platform: Published, admin: dict[str, str]
) -> None:
    denied = {
        "service": "cloudformation",
        "action": "DescribeStackEvents",
        "region": REGION,
        "count": 1,
        "code": "AccessDenied",
        "message": "not authorized to perform cloudformation:DescribeStackEvents",
        "status": 403,
    }
    local_aws.control("faults", denied)
    launched = cli(
        "launch",
        "iam",
        "cli-iam-3",
        f"AssumeRoleARN={VALOHAI_PRINCIPAL}",
        f"ExternalId={EXTERNAL_ID}",
        env=admin,
    )
    assert launched.returncode == 0, launched.stderr
    assert "NOT_SHOWN" in launched.stdout
    assert "may not read the stack's events" in launched.stdout
    assert "CREATE_COMPLETE" not in launched.stdout
    assert "Launching Valohai Hybrid IAM as cli-iam-3: succeeded" in launched.stdout
    assert re.search(r"ValohaiMasterRoleARN\s+arn:aws:iam::", launched.stdout)
    assert cli("terminate", "cli-iam-3", env=admin).returncode == 0
