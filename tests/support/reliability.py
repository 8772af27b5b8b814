"""The customer admin, Valohai's stand-in and the checks every reliability test makes.

A launch under a fault must end in a defined state (success, or a failure whose cause is in the
record, rolled back completely), within the ServiceTimeout of the resource that met the fault;
and Valohai must receive every event of the setup exactly once, eventually.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

from tests.support.common import (
    REDELIVERY_WAIT,
    events_of,
    eventually,
    free_port,
    publish_release,
    workers_parameters,
)
from valohai_hybrid.catalog import Outcome
from valohai_hybrid.local.platform import Customer
from valohai_hybrid.local.standin import Attempt, ReceivedEvent, Receiver, StandIn
from valohai_hybrid.products import IAM, WORKERS
from valohai_hybrid.publish import Published

#: A region no other test package uses: the platform's names are per account and region.
REGION = "us-west-2"
#: A second one, for the launch that waits out a long Valohai outage while the other tests run
#: (the faults they inject at the local AWS are for REGION only).
OUTAGE_REGION = "us-east-2"
SETUP_TOKEN = "reliability-setup-token-5Rk8Qw2Zm7Xv4Np9Ld3T"
VALOHAI_PRINCIPAL = "arn:aws:iam::905675611115:user/valohai-customer-reliability"
EXTERNAL_ID = "valohai-reliability-8a4f"
IAM_PRODUCT = IAM.name
WORKERS_PRODUCT = WORKERS.name
#: ServiceTimeout of the custom resources in main.yml (QueueAddressRegistration's with the
#: default QueueDnsWaitSeconds): no operation may take longer than the longest of them.
NOTIFICATION_SERVICE_TIMEOUT = 120
QUEUE_ADDRESS_SERVICE_TIMEOUT = 360
#: What Valohai hears about a setup that was launched and terminated.
LIFE_EVENTS = (
    "queue_address.registered",
    "setup.created",
    "setup.deleted",
    "queue_address.deregistered",
    "stack.status_changed",
)


def publish_platform(local_aws: LocalAwsHandle, region: str = REGION, **options: Any) -> Published:
    """`valohai-hybrid publish` of this checkout against the local AWS, quietly."""
    return publish_release(local_aws, region, **options)


@dataclass
class Launcher:
    """Launches of the Workers product, each with names of its own."""

    admin: Customer
    iam: Outcome
    key_pair: str

    def parameters(self, valohai: StandIn | str, **overrides: str) -> dict[str, str]:
        """A launch reporting to `valohai` (a running stand-in, or the URL of one to come)."""
        filled = workers_parameters(
            master_role_arn=self.iam.outputs["ValohaiMasterRoleARN"],
            valohai_url=valohai if isinstance(valohai, str) else valohai.url,
            setup_token=SETUP_TOKEN,
            key_pair=self.key_pair,
            suffix=unique("rel"),
        )
        return {**filled, **overrides}

    def launch(
        self, parameters: Mapping[str, str], timeout: float = QUEUE_ADDRESS_SERVICE_TIMEOUT
    ) -> Outcome:
        """Launch and wait for the final record; StillRunning after `timeout` s is a hang."""
        catalog = self.admin.catalog(timeout)
        return catalog.wait(catalog.launch(WORKERS_PRODUCT, unique("setup"), parameters))

    def terminate(self, outcome: Outcome) -> Outcome:
        catalog = self.admin.catalog(QUEUE_ADDRESS_SERVICE_TIMEOUT)
        return catalog.wait(catalog.terminate(outcome.provisioned_product_id))


def delivered_exactly_once(
    standin: StandIn, stack_id: str | None, types: tuple[str, ...], timeout: float = 30.0
) -> list[ReceivedEvent]:
    """Wait until each of `types` arrived for the stack; none may arrive twice (with two
    idempotency keys) and no other type may arrive."""

    def arrived() -> list[ReceivedEvent] | None:
        received = events_of(standin, stack_id)
        counts = Counter(e.type for e in received)
        assert all(n == 1 for n in counts.values()), f"delivered more than once: {counts}"
        assert set(counts) <= set(types), f"unexpected events: {set(counts) - set(types)}"
        return received if set(counts) == set(types) else None

    received: list[ReceivedEvent] = eventually(arrived, timeout, f"the events {types}")
    return received


def nothing_left(
    local_aws: LocalAwsHandle,
    outcome: Outcome,
    parameters: Mapping[str, str],
    *,
    secret_is_ours: bool = True,
) -> None:
    """A failed launch rolled back: no network, machine, address, role, record or secret of
    it remains (the retained data bucket may, empty). `secret_is_ours=False`: a secret of that
    name belongs to someone else, and stays."""
    product_arn = [
        {
            "Name": "tag:aws:servicecatalog:provisionedProductArn",
            "Values": [
                f"arn:aws:servicecatalog:{REGION}:{_account(local_aws)}:stack/"
                f"{outcome.provisioned_product_name}/{outcome.provisioned_product_id}"
            ],
        }
    ]
    ec2 = local_aws.client("ec2", REGION)
    assert ec2.describe_vpcs(Filters=product_arn)["Vpcs"] == []
    assert ec2.describe_addresses(Filters=product_arn)["Addresses"] == []
    assert ec2.describe_security_groups(Filters=product_arn)["SecurityGroups"] == []
    machines = ec2.describe_instances(Filters=product_arn)["Reservations"]
    assert {i["State"]["Name"] for r in machines for i in r["Instances"]} <= {"terminated"}
    assert _gone(local_aws.client("iam").get_role, RoleName=_multipart_role(parameters))
    ssm = local_aws.client("ssm", REGION)
    record = f"/valohai-hybrid/queue-address/{parameters['QueueAddress']}"
    assert _gone(ssm.get_parameter, Name=record)
    secrets = local_aws.client("secretsmanager", REGION)
    live = {s["Name"] for s in secrets.list_secrets()["SecretList"]}
    assert (parameters["RedisSecretName"] in live) is not secret_is_ours
    s3 = local_aws.client("s3", REGION)
    bucket = f"valohai-data-{parameters['Suffix']}"
    assert _gone(s3.head_bucket, Bucket=bucket) or not s3.list_objects_v2(Bucket=bucket).get(
        "Contents"
    )


def stack_status(local_aws: LocalAwsHandle, outcome: Outcome) -> str:
    (stack,) = local_aws.client("cloudformation", REGION).describe_stacks(
        StackName=outcome.stack_id
    )["Stacks"]
    return str(stack["StackStatus"])


def _multipart_role(parameters: Mapping[str, str]) -> str:
    return f"ValohaiS3MultipartRole-{parameters['Suffix']}"


def _account(local_aws: LocalAwsHandle) -> str:
    return str(local_aws.client("sts", REGION).get_caller_identity()["Account"])


def _gone(call: Callable[..., Any], **request: Any) -> bool:
    try:
        call(**request)
    except ClientError:
        return True
    return False


# ---- Valohai misbehaving during a launch ---------------------------------------------------

#: A launch ends within the ServiceTimeouts of its two notifying resources, one after the
#: other, whatever Valohai does.
LAUNCH_LIMIT = QUEUE_ADDRESS_SERVICE_TIMEOUT + NOTIFICATION_SERVICE_TIMEOUT
UNTIL_THE_LAUNCH_IS_OVER = float("inf")


@dataclass
class Scenario:
    """How Valohai misbehaves during one launch; what the launch and Valohai then show."""

    name: str
    misbehave: Callable[[Receiver], None] = lambda _: None
    #: Seconds Valohai is not there at all (connections refused) from the launch request;
    #: None: there from the start.
    down_for: float | None = None
    outcome: Outcome | None = None
    seconds: float = 0.0
    terminated: Outcome | None = None
    standin: StandIn | None = None

    def attempts(self, event_type: str) -> list[Attempt]:
        """Every request of that type Valohai got, and what it answered, in order."""
        assert self.standin is not None
        return [a for a in self.standin.receiver.attempts() if a.event_type == event_type]

    def run(self, launcher: Launcher, state_dir: Path) -> Scenario:
        """Launch with Valohai misbehaving, let it recover (the events queued meanwhile
        redelivered), then terminate with Valohai well."""
        port = free_port()
        self.standin = standin = StandIn([SETUP_TOKEN], state_dir, port=port)
        if self.down_for is None:
            standin.start()
            self.misbehave(standin.receiver)
        catalog = launcher.admin.catalog(LAUNCH_LIMIT)
        began = time.monotonic()
        record = catalog.launch(
            WORKERS_PRODUCT, unique("setup"), launcher.parameters(f"https://127.0.0.1:{port}")
        )
        if self.down_for is not None and self.down_for != UNTIL_THE_LAUNCH_IS_OVER:
            time.sleep(max(0.0, began + self.down_for - time.monotonic()))
            standin.start()
        self.outcome = catalog.wait(record)
        self.seconds = time.monotonic() - began
        if self.down_for == UNTIL_THE_LAUNCH_IS_OVER:
            standin.start()
        if self.outcome.succeeded:
            delivered_exactly_once(
                standin,
                self.outcome.stack_id,
                ("queue_address.registered", "setup.created"),
                timeout=REDELIVERY_WAIT,
            )
            self.terminated = catalog.wait(catalog.terminate(self.outcome.provisioned_product_id))
        return self
