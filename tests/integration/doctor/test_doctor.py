"""`valohai-hybrid doctor` on a launched setup: healthy, then each thing that can go wrong,
with the line that says so, the fix it shows, and the exit code scripts rely on."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from localaws.harness import unique

from tests.support.doctor import (
    COMMAND,
    QUEUE_ADDRESS,
    WORKERS,
    Launched,
    QueuePort,
    expiring,
    workers_parameters,
)
from valohai_hybrid import products
from valohai_hybrid.catalog import Catalog
from valohai_hybrid.checkout import ROOT
from valohai_hybrid.local.standin import Fault, StandIn

CHECKS = (
    "stack is healthy",
    "Elastic IP attached to the queue machine",
    "security group rules as intended",
    "Redis secret exists, tagged valohai=1, readable by the queue role",
    "QueueAddress resolves to the Elastic IP",
    "port 63790 answers TLS with a valid certificate for QueueAddress",
    "Redis AUTH with the secret's password answers PING",
    "the last notification reached Valohai",
)


class Report:
    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.code = completed.returncode
        self.text = completed.stdout + completed.stderr

    def line(self, check: str) -> str:
        """The checklist line of the check whose name starts with `check`."""
        (found,) = [
            line
            for line in self.text.splitlines()
            if line[:4] in ("PASS", "FAIL") and line[6:].startswith(check)
        ]
        return found

    def fix(self, check: str) -> str:
        lines = self.text.splitlines()
        following = lines[lines.index(self.line(check)) + 1]
        assert following.startswith("      fix: "), self.text
        return following.removeprefix("      fix: ")

    def failed(self) -> list[str]:
        return [c for c in CHECKS if self.line(c).startswith("FAIL")]


@pytest.fixture
def doctor(setup: Launched, queue: QueuePort, environment: dict[str, str]) -> Any:
    """Run doctor as an admin would on this setup's queue (through --connect-to, as before
    the DNS record exists), with the answers and options a test gives."""

    def run(*extra: str, name: str = WORKERS, resolve: str | None = None) -> Report:
        address = setup.outputs["QueuePublicIp"] if resolve is None else resolve
        completed = subprocess.run(
            [
                COMMAND,
                "doctor",
                name,
                "--resolve",
                f"{QUEUE_ADDRESS}={address}",
                "--connect-to",
                f"{QUEUE_ADDRESS}=127.0.0.1:{queue.port}",
                "--ca-bundle",
                str(queue.ca_bundle),
                *extra,
            ],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        return Report(completed)

    return run


def test_a_healthy_setup_passes_every_check(doctor: Any, setup: Launched) -> None:
    for name in (WORKERS, setup.outcome.stack_id):
        report = doctor(name=name)
        assert report.code == 0, report.text
        assert report.failed() == []
        assert report.text.rstrip().endswith("verdict: healthy")
    assert "PONG" in report.line("Redis AUTH")
    assert re.search(r"valid for doctor-it\.vqueue\.net, expires \d{4}-\d\d-\d\d", report.text)
    assert "last hand-off: delivered" in report.line("the last notification")


def test_a_detached_elastic_ip(doctor: Any, setup: Launched, aws: Any) -> None:
    ec2 = aws("ec2")
    ip = setup.outputs["QueuePublicIp"]
    (address,) = ec2.describe_addresses(PublicIps=[ip])["Addresses"]
    ec2.disassociate_address(AssociationId=address["AssociationId"])
    try:
        report = doctor()
    finally:
        ec2.associate_address(
            AllocationId=address["AllocationId"], InstanceId=address["InstanceId"]
        )
    assert report.code == 1
    assert report.failed() == ["Elastic IP attached to the queue machine"]
    assert f"{ip} is attached to nothing" in report.line("Elastic IP")
    assert f"aws ec2 associate-address --public-ip {ip} --instance-id " in report.fix("Elastic IP")
    assert report.text.rstrip().endswith("verdict: needs attention")


@pytest.mark.parametrize("change", ["added", "removed"])
def test_a_security_group_rule_added_or_removed(
    doctor: Any, setup: Launched, aws: Any, change: str
) -> None:
    ec2 = aws("ec2")
    group = setup.outputs["QueueSecurityGroupId"]
    rule = (
        {
            "IpProtocol": "tcp",
            "FromPort": 6379,
            "ToPort": 6379,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
        }
        if change == "added"
        else {
            "IpProtocol": "tcp",
            "FromPort": 80,
            "ToPort": 80,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
        }
    )
    add, remove = ec2.authorize_security_group_ingress, ec2.revoke_security_group_ingress
    (add if change == "added" else remove)(GroupId=group, IpPermissions=[rule])
    try:
        report = doctor()
    finally:
        (remove if change == "added" else add)(GroupId=group, IpPermissions=[rule])
    assert report.code == 1
    assert report.failed() == ["security group rules as intended"]
    expected = (
        "unexpected tcp/6379 from 0.0.0.0/0"
        if change == "added"
        else "missing tcp/80 from 0.0.0.0/0"
    )
    assert expected in report.line("security group")
    assert "update the stack" in report.fix("security group")


def test_an_untagged_secret(doctor: Any, setup: Launched, aws: Any) -> None:
    secrets = aws("secretsmanager")
    arn = setup.outputs["RedisSecretArn"]
    secrets.untag_resource(SecretId=arn, TagKeys=["valohai"])
    try:
        report = doctor()
    finally:
        secrets.tag_resource(SecretId=arn, Tags=[{"Key": "valohai", "Value": "1"}])
    assert report.code == 1
    assert "the secret lacks the tag valohai=1" in report.line("Redis secret")
    assert "ValohaiQueueRole may not read it" in report.line("Redis secret")
    assert report.fix("Redis secret")
    # Without a readable password Redis is not tried.
    assert "skipped" in report.line("Redis AUTH")


def test_redis_has_another_password(doctor: Any, queue: QueuePort) -> None:
    client = queue.client()
    client.config_set("requirepass", "not-the-secret-value")
    try:
        report = doctor()
    finally:
        client.config_set("requirepass", queue.password)
    assert report.code == 1
    assert report.failed() == ["Redis AUTH with the secret's password answers PING"]
    assert "Redis refused the password in the secret" in report.line("Redis AUTH")
    assert "restart the worker-queue service" in report.fix("Redis AUTH")


def test_dns_does_not_point_at_the_elastic_ip(doctor: Any, setup: Launched) -> None:
    report = doctor(resolve="203.0.113.77")
    assert report.code == 1
    assert report.failed() == ["QueueAddress resolves to the Elastic IP"]
    assert (
        f"{QUEUE_ADDRESS} -> 203.0.113.77; expected {setup.outputs['QueuePublicIp']}"
        in report.line("QueueAddress resolves")
    )
    assert "send Valohai the stack's QueueAddress and QueuePublicIp" in report.fix(
        "QueueAddress resolves"
    )


def test_a_certificate_for_another_name(
    doctor: Any, fresh_certificate: QueuePort, queue_ca: trustme.CA
) -> None:
    """Whoever answers with another name's certificate never receives the Redis password."""
    fresh_certificate.serve(queue_ca.issue_cert("someone-else.vqueue.net"))
    observer = fresh_certificate.client()
    before = auth_calls(observer)
    report = doctor()
    assert report.code == 1
    assert report.failed() == [
        "port 63790 answers TLS with a valid certificate for QueueAddress",
        "Redis AUTH with the secret's password answers PING",
    ]
    assert "Hostname mismatch" in report.line("port 63790")
    assert "Let's Encrypt" in report.fix("port 63790")
    assert "skipped: the password goes only to a server whose certificate names QueueAddress" in (
        report.line("Redis AUTH")
    )
    assert "fix the TLS check above first" in report.fix("Redis AUTH")
    # The server saw no AUTH from doctor (the observer's own connection authenticated before).
    assert auth_calls(observer) == before


def auth_calls(client: Any) -> int:
    """AUTH commands the server has run since it started, from its command statistics."""
    stats = client.info("commandstats").get("cmdstat_auth", {})
    return int(stats.get("calls", 0))


def test_a_certificate_near_expiry(
    doctor: Any, fresh_certificate: QueuePort, queue_ca: trustme.CA
) -> None:
    fresh_certificate.serve(expiring(queue_ca, QUEUE_ADDRESS, days=5.5))
    report = doctor()
    assert report.code == 1
    assert report.failed() == ["port 63790 answers TLS with a valid certificate for QueueAddress"]
    assert "(5 days)" in report.line("port 63790")
    assert "renewal is overdue" in report.fix("port 63790")


def test_redis_is_down(doctor: Any, fresh_certificate: QueuePort) -> None:
    fresh_certificate.stop()
    report = doctor("--timeout", "2")
    assert report.code == 1
    assert report.failed() == [
        "port 63790 answers TLS with a valid certificate for QueueAddress",
        "Redis AUTH with the secret's password answers PING",
    ]
    assert "Connection refused" in report.line("port 63790")
    assert "may still be booting" in report.fix("port 63790")


@pytest.fixture
def launched_while_valohai_is_down(
    catalog: Catalog, master_role: str, standin: StandIn
) -> Iterator[Launched]:
    """A setup launched while Valohai answered every request with 503 and a Retry-After beyond
    the delivery budget, so each event was queued at once (and its first redelivery failed)."""
    standin.receiver.inject(Fault(count=10_000, status=503, retry_after=3600))
    name = unique("doctor-queued")
    values = workers_parameters(master_role, standin, name)
    try:
        outcome = catalog.wait(catalog.launch(products.WORKERS.name, name, values))
        assert outcome.succeeded, outcome.errors  # BestEffort: the launch goes on
        assert outcome.outputs["ValohaiNotificationDelivery"] == "queued"
        yield Launched(name, outcome)
    finally:
        standin.receiver.reset()
        catalog.wait(catalog.terminate(name))


def test_a_hand_off_valohai_received_late(
    doctor: Any, launched_while_valohai_is_down: Launched, aws: Any, standin: StandIn
) -> None:
    queued = launched_while_valohai_is_down
    report = doctor(name=queued.name)
    assert report.code == 1
    assert "the last notification reached Valohai" in report.failed()
    assert re.search(
        r"last hand-off: queued; \d+ event\(s\) wait in valohai-hybrid-redelivery\.fifo$",
        report.line("the last notification"),
    )
    assert "sent again automatically" in report.fix("the last notification")

    # Had the platform given up on an event after a day of refusals, it would wait in the DLQ.
    sqs = aws("sqs")
    dead_letters = sqs.get_queue_url(QueueName="valohai-hybrid-redelivery-dlq.fifo")["QueueUrl"]
    sqs.send_message(
        QueueUrl=dead_letters, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId="d"
    )
    try:
        report = doctor(name=queued.name)
    finally:
        sqs.purge_queue(QueueUrl=dead_letters)
    assert report.code == 1
    assert "1 event(s) were given up on" in report.line("the last notification")
    assert "dead-letter queue redrive" in report.fix("the last notification")

    # Valohai is back: the next redelivery (RedeliveryIntervalSeconds after the failed one)
    # brings the hand-off, and the queue is empty again.
    standin.receiver.reset()
    stack = queued.outcome.stack_id
    deadline = time.monotonic() + 90
    while not [
        e for e in standin.receiver.events("setup.created") if e.body["stack"]["id"] == stack
    ]:
        assert time.monotonic() < deadline, "the hand-off was not redelivered"
        time.sleep(0.5)
    while (line := doctor(name=queued.name).line("the last notification")).startswith("FAIL"):
        assert time.monotonic() < deadline, line
        time.sleep(0.5)
    assert "queued, and redelivered since (nothing waits)" in line


def test_an_unknown_setup_is_a_usage_error(doctor: Any) -> None:
    report = doctor(name="no-such-setup")
    assert report.code == 2
    assert "no stack or provisioned product named 'no-such-setup'" in report.text
    assert "Traceback" not in report.text
