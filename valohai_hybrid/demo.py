"""`make demo`: the whole product's life on the local AWS, as its three users meet it.

A maintainer publishes the platform stack (the real `valohai-hybrid publish` code path: a
release, `sam build`, `sam deploy`); a customer admin (an IAM user with its own access key,
associated with the portfolio) launches the IAM product, then the Workers product through
Service Catalog; Valohai (the stand-in) receives the signed hand-off. Then the maintainer
publishes the next release, the admin updates the setup to it and terminates both products,
and the demo checks through the AWS APIs that the retained data bucket is all that is left.

Fake credentials only, and every client points at the local AWS: nothing reaches AWS.
Everything the demo starts (the local AWS with its Lambda workers, the stand-in) stops when it
ends, whether it succeeded, failed or was interrupted.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from . import publish
from .catalog import Catalog, CatalogError, Outcome, StackEvents
from .localaws.testing import FAKE_CREDENTIALS, LocalAwsHandle, running_local_aws
from .progress import Display, Operation
from .standin import DEVELOPMENT_PLATFORM, StandIn
from .standin.verify import key_id

IAM_PRODUCT = "Valohai Hybrid IAM"
WORKERS_PRODUCT = "Valohai Hybrid Workers"
ADMIN_USER = "customer-admin"
#: What Valohai gives a customer before the setup (examples, as in Valohai's instructions).
VALOHAI_PRINCIPAL = "arn:aws:iam::905675611115:user/valohai-customer-acme"
EXTERNAL_ID = "acme-demo-external-id"
QUEUE_ADDRESS = "acme-demo.vqueue.net"
SUFFIX = "acme-demo"
KEY_PAIR = "valohai-demo"
IAM_NAME = "valohai-iam"
WORKERS_NAME = "valohai-workers"
PHASES = (
    ("start", "Starting the local AWS and the Valohai API stand-in on 127.0.0.1"),
    ("publish", "Maintainer: publishing the platform stack (valohai-hybrid publish)"),
    ("launch_iam", f"Customer admin: launching {IAM_PRODUCT} from Service Catalog"),
    ("launch_workers", f"Customer admin: launching {WORKERS_PRODUCT} from Service Catalog"),
    ("handoff", "Valohai: what it received"),
    ("release", "Maintainer: publishing the next release"),
    ("update", "Customer admin: updating the Workers product to the new release"),
    ("terminate", "Customer admin: terminating both products"),
    ("remains", "What is left in the account"),
)
_VERSION_LINE = re.compile(r"(Release:\n\s+Version: )(\S+)")
POLL_SECONDS = 0.2
SERVER_LOG = "server.log"
#: How long the stack-status forwarder may take to remove a deleted setup's token secret.
SETTLE_SECONDS = 30.0


class DemoFailure(Exception):
    """The product did not do what the demo shows it doing."""


@dataclass(frozen=True)
class DemoOptions:
    project_dir: Path
    region: str = "eu-west-1"
    sam: Path | None = None
    #: Where to write the seconds each phase took (JSON), for the benchmarks.
    timings: Path | None = None
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    #: Default: a live status line when `stream` is a terminal.
    live: bool | None = None


Inventory = dict[str, set[str]]


def next_patch(version: str) -> str:
    major, minor, patch = version.split("-", 1)[0].split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


def prepare_release(cfn_dir: Path, version: str, destination: Path) -> Path:
    """cfn/ as a maintainer prepares a release: the same templates, `version` in main.yml
    (publish refuses a version the Workers template does not carry)."""
    shutil.copytree(cfn_dir, destination)
    main = destination / "main.yml"
    text, count = _VERSION_LINE.subn(rf"\g<1>{version}", main.read_text(), count=1)
    if count != 1:
        raise DemoFailure(f"{cfn_dir / 'main.yml'} has no Mappings Product Release Version")
    main.write_text(text)
    return destination


def run(options: DemoOptions) -> bool:
    """Run the demo; False if it failed (it says why). Ctrl-C stops it, cleaning up."""
    return Demo(options).run()


class Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.out = options.stream
        self.display = Display(options.stream, live=options.live)
        self.timings: dict[str, float] = {}
        self.phase = ""
        self.token = f"demo-{secrets.token_urlsafe(32)}"
        self.release = ""

    # ---- the run ---------------------------------------------------------------------------

    def run(self) -> bool:
        began = time.monotonic()
        outcome = "failed"
        saved = dict(os.environ)
        state_dir = Path(tempfile.mkdtemp(prefix="valohai-hybrid-demo-"))
        self.say(
            "Valohai Hybrid on AWS: the whole product on a local AWS (fake credentials; "
            "nothing leaves this machine)"
        )
        running = ExitStack()
        try:
            try:
                self.steps(running, state_dir)
            finally:
                stopping = time.monotonic()
                with _uninterrupted():
                    running.close()
            self.timings["stop"] = time.monotonic() - stopping
            self.say("\nStopped the local AWS (and its Lambda workers) and the stand-in.")
            outcome = "succeeded"
        except KeyboardInterrupt:
            outcome = "interrupted"
            self.say("\nInterrupted: stopped everything the demo started.")
            raise
        except (DemoFailure, CatalogError, publish.PublishError) as error:
            self.say(f"\nThe demo failed while {self._doing()}: {error}")
        except (ClientError, BotoCoreError) as error:
            self.say(f"\nThe demo failed while {self._doing()}: AWS said: {error}")
        except Exception as error:  # a bug: show where, after cleaning up
            traceback.print_exc()
            self.say(f"\nThe demo failed while {self._doing()}: {type(error).__name__}: {error}")
        finally:
            os.environ.clear()
            os.environ.update(saved)
            if outcome == "failed":
                self.say(f"The local AWS's log and state are kept in {state_dir}")
            else:
                shutil.rmtree(state_dir, ignore_errors=True)
            total = time.monotonic() - began
            self._write_timings(outcome, total)
        if outcome == "succeeded":
            phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings.items())
            self.say(f"Demo finished in {total:.1f} s ({phases}).")
        return outcome == "succeeded"

    def steps(self, running: ExitStack, state_dir: Path) -> None:
        self.release = publish.release_version(publish.PublishOptions(self.options.project_dir))
        with self.step("start"):
            self._fake_account()
            # sam deploy leaves an empty directory in TMPDIR per function it packages: keep
            # them in the demo's own directory, which goes when the demo ends.
            os.environ["TMPDIR"] = str(state_dir / "tmp")
            (state_dir / "tmp").mkdir()
            with _stderr_to(state_dir / SERVER_LOG):
                aws = running.enter_context(running_local_aws(state_dir))
            os.environ["AWS_ENDPOINT_URL"] = aws.endpoint_url
            standin = running.enter_context(StandIn([self.token], aws.state_dir))
            self.say(f"  local AWS        {aws.endpoint_url}  (region {self.options.region})")
            self.say(f"  Valohai API      {standin.url}  (a stand-in that checks signatures)")
        maintainer = _Clients(aws, self.options.region)

        with self.step("publish"):
            admin = self._admin(aws)
            self.say(f"  customer admin   {admin.arn} (own access key)")
            published = self._publish(maintainer, principals=[admin.arn])
            self.say(
                f"  portfolio {published.outputs.get('PortfolioId')} offers {IAM_PRODUCT} and "
                f"{WORKERS_PRODUCT} {published.releases[0]} to {ADMIN_USER}"
            )

        admin.ec2.create_key_pair(KeyName=KEY_PAIR)
        before = inventory(maintainer)
        catalog = Catalog(admin.client, poll_seconds=POLL_SECONDS, timeout=300.0)

        with self.step("launch_iam"):
            iam_values = {"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": EXTERNAL_ID}
            iam = self._operation(
                f"launch {IAM_PRODUCT} as {IAM_NAME}",
                catalog,
                lambda: catalog.launch(IAM_PRODUCT, IAM_NAME, iam_values),
                iam_values,
            )

        with self.step("launch_workers"):
            values = {
                "ValohaiMasterRoleARN": iam.outputs["ValohaiMasterRoleARN"],
                "QueueAddress": QUEUE_ADDRESS,
                "SetupToken": self.token,
                "KeyPair": KEY_PAIR,
                "Suffix": SUFFIX,
                "ValohaiApiUrl": standin.url,
            }
            workers = self._operation(
                f"launch {WORKERS_PRODUCT} as {WORKERS_NAME}",
                catalog,
                lambda: catalog.launch(WORKERS_PRODUCT, WORKERS_NAME, values),
                values,
            )
            self._outputs(workers.outputs)

        with self.step("handoff"):
            self._handoff(standin, workers)

        following = next_patch(self.release)
        with self.step("release", f"Maintainer: publishing release {following}"):
            templates = prepare_release(
                self.options.project_dir / "cfn", following, state_dir / "next-release" / "cfn"
            )
            published = self._publish(maintainer, version=following, cfn_dir=templates)
            self.say(
                f"  new launches get {published.releases[0]}; launched products may update "
                f"(offered: {', '.join(published.releases)})"
            )

        with self.step("update", f"Customer admin: updating {WORKERS_NAME} to {following}"):
            updated = self._operation(
                f"update {WORKERS_NAME} to {following}",
                catalog,
                lambda: catalog.update(WORKERS_NAME, {}, version=following),
            )
            was, now = workers.outputs.get("ProductVersion"), updated.outputs.get("ProductVersion")
            if now != following:
                raise DemoFailure(f"the setup reports version {now} after the update")
            self.say(f"  ProductVersion {was} -> {now}; the Redis password and the data stay")
            self._received(standin, workers, "setup.updated")

        with self.step("terminate"):
            for name in (WORKERS_NAME, IAM_NAME):
                self._operation(f"terminate {name}", catalog, partial(catalog.terminate, name))
            self._received(standin, workers, "setup.deleted")

        with self.step("remains"):
            self._remains(maintainer, before)

    # ---- the phases' parts -------------------------------------------------------------

    def _fake_account(self) -> None:
        """Whatever AWS settings the user has, this process and those it starts (the local
        AWS, sam) use fake credentials; AWS_ENDPOINT_URL then sends every call to the local
        AWS."""
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
            os.environ.pop(name, None)
        os.environ.update(FAKE_CREDENTIALS)
        os.environ.update(
            {
                "AWS_DEFAULT_REGION": self.options.region,
                "AWS_REGION": self.options.region,
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }
        )

    def _admin(self, aws: LocalAwsHandle) -> _Clients:
        iam = aws.client("iam", self.options.region)
        arn = str(iam.create_user(UserName=ADMIN_USER)["User"]["Arn"])
        key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
        return _Clients(aws, self.options.region, arn, (key["AccessKeyId"], key["SecretAccessKey"]))

    def _publish(self, maintainer: _Clients, **choices: Any) -> publish.Published:
        options = publish.PublishOptions(
            project_dir=self.options.project_dir,
            region=self.options.region,
            sam=self.options.sam,
            verbose=False,
            # The stand-in listens on 127.0.0.1: a development platform allows that.
            parameters=DEVELOPMENT_PLATFORM,
            **choices,
        )
        stack = str(publish.samconfig(options)["stack_name"])
        title = f"  sam deploy: stack {stack}"
        with self.display.operation(title) as shown, self._watch(maintainer, stack, shown):
            published = publish.publish(options, log=lambda text: shown.note(f"  {text}"))
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in published.timings.items())
        self.say(f"  published release {published.releases[0]} ({steps})")
        return published

    @contextmanager
    def _watch(self, clients: _Clients, stack: str, shown: Operation) -> Iterator[None]:
        """Show a stack's events while something else (sam deploy) changes it."""
        events = StackEvents(clients.client("cloudformation"), stack, datetime.now(UTC))
        stop = threading.Event()

        def show() -> None:
            for event in events.poll():
                shown.event(event)

        def follow() -> None:
            while not stop.wait(POLL_SECONDS):
                show()

        follower = threading.Thread(target=follow, name="stack-events", daemon=True)
        follower.start()
        try:
            yield
        finally:
            stop.set()
            follower.join(timeout=10)
        show()

    def _operation(
        self,
        what: str,
        catalog: Catalog,
        start: Callable[[], str],
        parameters: dict[str, str] | None = None,
    ) -> Outcome:
        if parameters:
            width = max(map(len, parameters))
            self.say("  parameters:")
            for key, value in parameters.items():
                self.say(f"    {key.ljust(width)}  {'****' if key == 'SetupToken' else value}")
        record = start()
        with self.display.operation(f"  {what} (record {record})") as shown:
            outcome = catalog.wait(record, shown.event)
        if not outcome.succeeded:
            raise DemoFailure(f"{what} failed: {'; '.join(outcome.errors)}")
        self.say(f"  {what}: {outcome.status} in {outcome.seconds:.1f} s")
        return outcome

    def _outputs(self, outputs: dict[str, str]) -> None:
        self.say("  outputs:")
        width = max(map(len, outputs))
        for key, value in sorted(outputs.items()):
            self.say(f"    {key.ljust(width)}  {value}")

    def _handoff(self, standin: StandIn, workers: Outcome) -> None:
        created = self._received(standin, workers, "setup.created", quiet=True)
        attempt = next(
            a for a in standin.receiver.attempts() if a.idempotency_key == created.idempotency_key
        )
        if created.key_id != key_id(self.token):
            raise DemoFailure("the hand-off was signed with another setup token")
        self.say(
            f"  POST /api/v0/hybrid-aws/events  X-Valohai-Event-Type: {created.type}\n"
            f"  X-Valohai-Key-Id: {created.key_id}  (the setup token's SHA-256, first 16 digits)\n"
            f"  signature: v1 HMAC-SHA256 of timestamp.body with the setup token, checked by the "
            f"stand-in with the token Valohai issued -> HTTP {attempt.status} {attempt.outcome}"
        )
        self.say("  body:")
        for line in json.dumps(created.body, indent=2, sort_keys=True).splitlines():
            self.say(f"    {line}")
        binding = standin.receiver.bindings().get(QUEUE_ADDRESS)
        if binding is None or binding.public_ip != workers.outputs["QueuePublicIp"]:
            raise DemoFailure(f"Valohai holds no binding of {QUEUE_ADDRESS} to the queue's IP")
        self.say(
            "\n  What next\n"
            "  - You send Valohai nothing: no outputs to copy into an e-mail. The hand-off above "
            "came\n    signed with your setup token; the token and the Redis password never "
            "left your account\n    (Valohai reads the password from your Secrets Manager as "
            "ValohaiMaster).\n"
            f"  - Valohai points {QUEUE_ADDRESS} at {binding.public_ip} (queue_address.registered"
            "); the queue machine\n    then gets its Let's Encrypt certificate and serves "
            "Redis over TLS on port 63790.\n"
            "  - Valohai assumes ValohaiMaster with your external ID and starts workers in the "
            "valohai-subnet-*\n    subnets with valohai-sg-workers, writing to "
            f"{workers.outputs['DataBucketName']}.\n"
            f"  - Check the setup any time: valohai-hybrid doctor {WORKERS_NAME}"
        )

    def _received(
        self, standin: StandIn, workers: Outcome, event_type: str, *, quiet: bool = False
    ) -> Any:
        """The one `event_type` event of the Workers stack the stand-in accepted."""
        found = [
            e
            for e in standin.receiver.events(event_type)
            if e.body["stack"]["id"] == workers.stack_id
        ]
        if len(found) != 1:
            raise DemoFailure(f"Valohai received {len(found)} {event_type} events, not one")
        if not quiet:
            self.say(f"  Valohai received {event_type} (signature verified)")
        return found[0]

    def _remains(self, maintainer: _Clients, before: Inventory) -> None:
        expected = {"S3 buckets": {f"valohai-data-{SUFFIX}"}}
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            left = _difference(inventory(maintainer), before)
            if left == expected or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
        self.say("  Made by the two products and still there (compared with before the launch):")
        for kind, names in sorted(left.items()):
            for name in sorted(names):
                self.say(f"    {kind:<18} {name}")
        if left != expected:
            raise DemoFailure(f"expected only the retained data bucket to remain, found {left}")
        self.say(
            "  The data bucket is retained on purpose: it holds your data. Launching again with "
            "the same\n  Suffix and ReuseRetainedDataBucket=true adopts it."
        )
        for name in _pending_secrets(maintainer):
            self.say(
                f"  Secret {name} is scheduled for deletion, recoverable for its recovery window\n"
                "  (RedisSecretRecoveryWindowInDays, 7 days by default); a new launch with the "
                "same name\n  takes it back."
            )

    # ---- output and timing -------------------------------------------------------------

    def say(self, text: str) -> None:
        self.display.line(text)

    @contextmanager
    def step(self, key: str, title: str | None = None) -> Iterator[None]:
        number = [name for name, _ in PHASES].index(key) + 1
        self.phase = key
        self.say(f"\n[{number}/{len(PHASES)}] {title or dict(PHASES)[key]}")
        began = time.monotonic()
        yield
        self.timings[key] = time.monotonic() - began
        self.say(f"  ({self.timings[key]:.1f} s)")

    def _doing(self) -> str:
        return dict(PHASES).get(self.phase, self.phase or "starting").lower()

    def _write_timings(self, outcome: str, total: float) -> None:
        if self.options.timings is None:
            return
        self.options.timings.parent.mkdir(parents=True, exist_ok=True)
        summary = {
            "outcome": outcome,
            "failed_phase": None if outcome == "succeeded" else self.phase,
            "total_seconds": round(total, 3),
            "phases": {name: round(seconds, 3) for name, seconds in self.timings.items()},
            "releases": [self.release, next_patch(self.release)] if self.release else [],
            "region": self.options.region,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        }
        self.options.timings.write_text(json.dumps(summary, indent=2) + "\n")


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """A second Ctrl-C (or SIGTERM) must not cut the cleanup short and leave servers behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Processes started meanwhile write their stderr to `path`: the local AWS's warnings go
    to its log instead of between the demo's lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class _Clients:
    """boto3 clients of one identity on the local AWS (default: the account's own)."""

    def __init__(
        self,
        aws: LocalAwsHandle,
        region: str,
        arn: str = "",
        key: tuple[str, str] = (
            FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        ),
    ) -> None:
        self.arn = arn
        self._session = boto3.Session(
            aws_access_key_id=key[0], aws_secret_access_key=key[1], region_name=region
        )
        self._endpoint = aws.endpoint_url
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self._endpoint,
            )
        return self._clients[service]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")


def _all(clients: _Clients, service: str, operation: str, key: str, **arguments: Any) -> list[Any]:
    pages = clients.client(service).get_paginator(operation).paginate(**arguments)
    return [item for page in pages for item in page.get(key, [])]


def inventory(clients: _Clients) -> Inventory:
    """What exists in the account and region, by kind, as its APIs list it."""
    ec2 = clients.client("ec2")
    found: Inventory = {
        "CloudFormation stacks": {
            s["StackName"]
            for s in _all(clients, "cloudformation", "list_stacks", "StackSummaries")
            if s["StackStatus"] != "DELETE_COMPLETE"
        },
        "S3 buckets": {b["Name"] for b in clients.client("s3").list_buckets()["Buckets"]},
        "EC2 instances": {
            i["InstanceId"]
            for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] != "terminated"
        },
        "Elastic IPs": {a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]},
        "VPCs": {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]},
        "subnets": {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]},
        "security groups": {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]},
        "internet gateways": {
            g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]
        },
        "route tables": {t["RouteTableId"] for t in ec2.describe_route_tables()["RouteTables"]},
        "IAM roles": {r["RoleName"] for r in _all(clients, "iam", "list_roles", "Roles")},
        "instance profiles": {
            p["InstanceProfileName"]
            for p in _all(clients, "iam", "list_instance_profiles", "InstanceProfiles")
        },
        "IAM policies": {
            p["PolicyName"]
            for p in _all(clients, "iam", "list_policies", "Policies", Scope="Local")
        },
        "secrets": {
            s["Name"] for s in _all(clients, "secretsmanager", "list_secrets", "SecretList")
        },
        # AWS's public parameters (/aws/service/...) are nobody's: the local AWS lists those
        # it was asked for.
        "SSM parameters": {
            p["Name"]
            for p in _all(clients, "ssm", "describe_parameters", "Parameters")
            if not p["Name"].startswith("/aws/")
        },
        "log groups": {
            g["logGroupName"] for g in _all(clients, "logs", "describe_log_groups", "logGroups")
        },
        "Lambda functions": {
            f["FunctionName"] for f in _all(clients, "lambda", "list_functions", "Functions")
        },
        "SQS queues": set(clients.client("sqs").list_queues().get("QueueUrls", [])),
    }
    return found


def _difference(after: Inventory, before: Inventory) -> Inventory:
    return {
        kind: names - before.get(kind, set())
        for kind, names in after.items()
        if names - before.get(kind, set())
    }


def _pending_secrets(clients: _Clients) -> list[str]:
    """The names of secrets scheduled for deletion."""
    listed = _all(
        clients, "secretsmanager", "list_secrets", "SecretList", IncludePlannedDeletion=True
    )
    return sorted(s["Name"] for s in listed if s.get("DeletedDate"))
