"""The one local platform (`valohai_hybrid.local.platform`), timed: what the launch, latency and
scale benchmarks drive. A customer admin launches through Service Catalog
(`valohai_hybrid.catalog`, the code path of `valohai-hybrid launch`), and each operation is timed
from the request to the stack's own final event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from localaws.harness import LocalAwsHandle, unique

from valohai_hybrid.catalog import Catalog, Outcome
from valohai_hybrid.local.platform import Customer
from valohai_hybrid.local.platform import local_platform as shared_platform
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.products import IAM, WORKERS
from valohai_hybrid.publish import Published

REGION = "eu-west-1"
SETUP_TOKEN = "bench-setup-token-Q7mX2pL9vR4tK8wN3bZ6"
VALOHAI_PRINCIPAL = "arn:aws:iam::905675611115:user/valohai-customer-bench"
EXTERNAL_ID = "valohai-bench-3e9b"
IAM_PRODUCT = IAM.name
WORKERS_PRODUCT = WORKERS.name
#: How often a benchmark looks at the records it waits for (from one thread, however many);
#: the figures come from the stacks' events, not from when a look found a record final.
POLL_SECONDS = 0.05
SECONDS_BETWEEN_LOOKS = 0.025
RECORD_TIMEOUT = 600.0


@dataclass(frozen=True)
class Timed:
    """A final record, and the seconds from the user's request to the record being final."""

    outcome: Outcome
    seconds: float


@dataclass
class LocalPlatform:
    """A published platform, Valohai's stand-in, and an end user allowed to launch."""

    aws: LocalAwsHandle
    standin: StandIn
    user: Customer
    published: Published
    catalog: Catalog
    _iam: Timed | None = None

    def iam(self) -> Timed:
        """The IAM product, launched once (its role names are per account)."""
        if self._iam is None:
            launched = self.launch(
                IAM_PRODUCT, {"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": EXTERNAL_ID}
            )
            if not launched.outcome.succeeded:
                raise RuntimeError(f"the IAM launch failed: {'; '.join(launched.outcome.errors)}")
            self._iam = launched
        return self._iam

    def key_pair(self) -> str:
        name = unique("bench-key")
        self.user.client("ec2").create_key_pair(KeyName=name)
        return name

    def workers_parameters(self, key_pair: str) -> dict[str, str]:
        """A Workers launch with names of its own, so that many can share the account."""
        suffix = unique("bench")
        return {
            "ValohaiMasterRoleARN": self.iam().outcome.outputs["ValohaiMasterRoleARN"],
            "QueueAddress": f"{suffix}.vqueue.net",
            "SetupToken": SETUP_TOKEN,
            "KeyPair": key_pair,
            "ValohaiApiUrl": self.standin.url,
            "Suffix": suffix,
            "RedisSecretName": f"ValohaiRedisSecret-{suffix}",
        }

    def launch(self, product: str, parameters: dict[str, str]) -> Timed:
        (timed,) = self.launch_many(product, [parameters])
        return timed

    def launch_many(self, product: str, launches: Sequence[dict[str, str]]) -> list[Timed]:
        """Start every launch at once (one after the other, as fast as the API answers)."""
        return self.at_once(
            [partial(self.catalog.launch, product, unique("bench"), p) for p in launches]
        )

    def update(self, outcome: Outcome, changes: dict[str, str]) -> Timed:
        (timed,) = self.at_once(
            [partial(self.catalog.update, outcome.provisioned_product_id, changes)]
        )
        return timed

    def terminate_many(self, outcomes: Sequence[Outcome]) -> list[Timed]:
        return self.at_once(
            [partial(self.catalog.terminate, o.provisioned_product_id) for o in outcomes]
        )

    def at_once(self, operations: Sequence[Callable[[], str]]) -> list[Timed]:
        """Start the operations, wait until every record is final, and time each from the
        first request to the moment its stack finished (the stack's own event: how often the
        records are looked at does not change the figure)."""
        began = time.time()  # the local AWS stamps its events with this machine's clock
        records = [start() for start in operations]
        servicecatalog = self.user.client("servicecatalog")
        pending = set(records)
        deadline = time.monotonic() + RECORD_TIMEOUT
        while pending:
            for record in list(pending):
                status = servicecatalog.describe_record(Id=record)["RecordDetail"]["Status"]
                if status in ("SUCCEEDED", "FAILED"):
                    pending.discard(record)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} records not final after {RECORD_TIMEOUT} s")
            # A light touch: every look costs the server CPU the launches need.
            time.sleep(max(POLL_SECONDS, SECONDS_BETWEEN_LOOKS * len(pending)))
        outcomes = [self.catalog.wait(record) for record in records]
        return [Timed(o, self._finished(o) - began) for o in outcomes]

    def _finished(self, outcome: Outcome) -> float:
        """When the stack's last operation ended (epoch seconds)."""
        stack = outcome.stack_id
        assert stack is not None
        events = self.user.client("cloudformation").describe_stack_events(StackName=stack)
        for event in events["StackEvents"]:  # newest first
            if event["PhysicalResourceId"] == stack and not event["ResourceStatus"].endswith(
                "_IN_PROGRESS"
            ):
                return float(event["Timestamp"].timestamp())
        raise RuntimeError(f"stack {stack} has no final event")


@contextmanager
def local_platform(
    state_dir: Path, stabilize: Mapping[str, float] | None = None
) -> Iterator[LocalPlatform]:
    """Start a local AWS (with modelled resource waits, if any) and the stand-in, publish this
    checkout's release, make an end user."""
    with shared_platform(
        state_dir, [SETUP_TOKEN], region=REGION, admin="bench-admin", stabilize=stabilize
    ) as running:
        catalog = running.admin.catalog(poll_seconds=POLL_SECONDS, timeout=RECORD_TIMEOUT)
        yield LocalPlatform(running.aws, running.standin, running.admin, running.published, catalog)
