"""The platform published on a local AWS of the benchmarks' own, and a customer admin launching
its products through Service Catalog: what the launch, latency and scale benchmarks drive.

Everything runs against a fresh local AWS (started as `valohai-hybrid local-aws start` starts
it) and a Valohai stand-in sharing its CA. Publishing is `valohai_hybrid.publish` and launching
is `valohai_hybrid.catalog`: the code paths of `valohai-hybrid publish` and
`valohai-hybrid launch`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3

from valohai_hybrid.catalog import Catalog, Outcome
from valohai_hybrid.localaws import control
from valohai_hybrid.localaws.testing import FAKE_CREDENTIALS, LocalAwsHandle, unique
from valohai_hybrid.publish import Published, PublishOptions, publish
from valohai_hybrid.standin import DEVELOPMENT_PLATFORM, StandIn

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
SETUP_TOKEN = "bench-setup-token-Q7mX2pL9vR4tK8wN3bZ6"
VALOHAI_PRINCIPAL = "arn:aws:iam::905675611115:user/valohai-customer-bench"
EXTERNAL_ID = "valohai-bench-3e9b"
IAM_PRODUCT = "Valohai Hybrid IAM"
WORKERS_PRODUCT = "Valohai Hybrid Workers"
#: How often a benchmark looks at the records it waits for (from one thread, however many);
#: the figures come from the stacks' events, not from when a look found a record final.
POLL_SECONDS = 0.05
SECONDS_BETWEEN_LOOKS = 0.025
RECORD_TIMEOUT = 600.0


@dataclass
class EndUser:
    """An IAM user of the account with its own access key, associated with the portfolio."""

    arn: str
    session: boto3.Session
    endpoint_url: str
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, aws: LocalAwsHandle) -> EndUser:
        arn, session = aws.iam_user("bench-admin", REGION)
        return cls(arn, session, aws.endpoint_url)

    def client(self, service: str) -> Any:
        """One client per service, shared by the threads of a benchmark (boto3 clients are
        thread-safe; creating them is not)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
            )
        return self._clients[service]


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
    user: EndUser
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
def _local_environment(aws: LocalAwsHandle) -> Iterator[None]:
    """Fake credentials and AWS_ENDPOINT_URL at the local AWS, while publishing (sam reads
    them from the environment)."""
    names = [*FAKE_CREDENTIALS, "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION"]
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(
        {"AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
    )
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def publish_platform(aws: LocalAwsHandle, principal: str, **options: Any) -> Published:
    """`valohai-hybrid publish` of this checkout against the local AWS, quietly."""
    with _local_environment(aws):
        return publish(
            PublishOptions(
                project_dir=ROOT,
                region=REGION,
                sam=ROOT / ".tools" / "sam" / "bin" / "sam",
                principals=[principal],
                verbose=False,
                parameters={**DEVELOPMENT_PLATFORM, **options.pop("parameters", {})},
                **options,
            ),
            log=lambda _: None,
        )


@contextmanager
def local_aws(state_dir: Path, stabilize: Mapping[str, float]) -> Iterator[LocalAwsHandle]:
    """The local AWS in the background, stopped (with its Lambda workers) on exit.
    `stabilize`: seconds CloudFormation waits per resource type (`--stabilize`)."""
    info = control.start(state_dir, stabilize=stabilize)
    try:
        yield LocalAwsHandle(
            endpoint_url=info["endpoint_url"],
            ca_bundle=Path(info["ca_bundle"]),
            state_dir=state_dir,
            pid=int(info["pid"]),
        )
    finally:
        control.stop(state_dir)


@contextmanager
def local_platform(
    state_dir: Path, stabilize: Mapping[str, float] | None = None
) -> Iterator[LocalPlatform]:
    """Start a local AWS (with modelled resource waits, if any) and the stand-in, publish this
    checkout's release, make an end user."""
    with (
        local_aws(state_dir, stabilize or {}) as aws,
        StandIn([SETUP_TOKEN], state_dir) as standin,
    ):
        user = EndUser.create(aws)
        published = publish_platform(aws, user.arn)
        catalog = Catalog(user.client, poll_seconds=POLL_SECONDS, timeout=RECORD_TIMEOUT)
        yield LocalPlatform(aws, standin, user, published, catalog)
