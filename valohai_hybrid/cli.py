"""The `valohai-hybrid` console command.

Exit codes (the same for every subcommand, so scripts can rely on them):

  0    done (doctor: every check passed)
  1    it ran and failed: a launch, update or termination failed, publishing failed, doctor
       found a problem, the demo failed; the message says why
  2    nothing was done: a mistake in the command line or in what it names (an unknown
       product, version, launched product or parameter, a bad KEY=VALUE); the message says
       what to give instead
  3    AWS could not be used: no credentials or region, the endpoint cannot be reached, or
       the credentials may not do this
  4    the wait ended (--timeout) while the operation goes on in AWS
  130  interrupted (Ctrl-C); an operation already started goes on in AWS
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from .localaws import control
from .localaws.config import stabilize_waits

if TYPE_CHECKING:
    from .publish import PublishOptions

DEFAULT_STATE_DIR = Path(".localaws")
OK, FAILED, USAGE, NO_ACCESS, STILL_RUNNING, INTERRUPTED = 0, 1, 2, 3, 4, 130
#: Short names for the two products, as template.yaml names them.
PRODUCTS = {"iam": "Valohai Hybrid IAM", "workers": "Valohai Hybrid Workers"}
#: AWS error codes that mean "these credentials may not do this" rather than a failure.
_ACCESS_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}

EXIT_CODES_HELP = """exit codes:
  0    done (doctor: every check passed)
  1    it ran and failed (the message says why)
  2    nothing was done: fix the command line or the names it gives
  3    AWS could not be used: credentials, region, endpoint or permissions
  4    still running in AWS when --timeout ended the wait
  130  interrupted (an operation already started goes on in AWS)
"""


class UsageError(Exception):
    """A mistake the user can fix before anything is done; printed without a traceback."""


class OperationFailed(Exception):
    """The operation ran and failed; the message says why."""


# ---- local AWS, stand-in, docs ---------------------------------------------------------------


def _local_aws(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    if args.action == "start":
        try:
            waits = stabilize_waits(args.stabilize)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        info = control.start(state_dir, port=args.port, stabilize=waits)
        print(f"local AWS running at {info['endpoint_url']} (pid {info['pid']})")
        print(f"  export AWS_ENDPOINT_URL={info['endpoint_url']}")
        print(
            "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
            "AWS_DEFAULT_REGION=eu-west-1"
        )
        print("stop it with: valohai-hybrid local-aws stop")
    elif args.action == "stop":
        print("local AWS stopped" if control.stop(state_dir) else "local AWS was not running")
    else:
        running = control.status(state_dir)
        print(json.dumps(running, indent=2) if running else "local AWS is not running")
        return OK if running else FAILED
    return OK


def _standin(args: argparse.Namespace, extra: list[str]) -> int:
    from .standin.cli import main as standin_main

    return standin_main(extra)


def _docs(args: argparse.Namespace) -> int:
    from . import docgen

    current = docgen.README.read_text()
    wanted = docgen.render(current)
    if args.write:
        docgen.README.write_text(wanted)
        print(
            "README.md: generated blocks rewritten" if wanted != current else "README.md: current"
        )
        return OK
    if wanted != current:
        print(
            "README.md is out of date with the templates: run `valohai-hybrid docs --write`",
            file=sys.stderr,
        )
        return FAILED
    print("README.md: generated blocks are current")
    return OK


# ---- package and publish --------------------------------------------------------------------


@contextmanager
def _publishing() -> Iterator[Any]:
    """The publish module (slow to import: it loads cfn-lint), its errors as OperationFailed."""
    from . import publish

    try:
        yield publish
    except publish.PublishError as error:
        raise OperationFailed(str(error)) from error


def _publish_options(publish: Any, args: argparse.Namespace) -> PublishOptions:
    options: PublishOptions = publish.PublishOptions(
        project_dir=args.project_dir.resolve(),
        config_env=getattr(args, "config_env", "default"),
        version=args.version,
        bucket=args.bucket,
        region=args.region,
        principals=getattr(args, "principal", None),
        share_with=args.share_with,
        parameters=dict(getattr(args, "parameter", None) or []),
        sam=getattr(args, "sam", None),
        cfn_dir=args.cfn_dir,
        verbose=not getattr(args, "quiet", False),
    )
    return options


def _package(args: argparse.Namespace) -> int:
    with _publishing() as publish:
        release = publish.package_only(_publish_options(publish, args), args.share_with or ())
    print(f"release {release.version} in s3://{release.bucket}/{release.prefix}")
    print(f"  IAM product template      {release.iam_template_url}")
    print(f"  Workers product template  {release.workers_template_url}")
    return OK


def _publish(args: argparse.Namespace) -> int:
    with _publishing() as publish:
        publish.report(publish.publish(_publish_options(publish, args)))
    return OK


def _key_value(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


# ---- launch, update, terminate, describe ----------------------------------------------------


def _parameters(items: list[str]) -> dict[str, str]:
    """KEY=VALUE arguments; KEY=@FILE reads the value from FILE (keeps secrets out of the
    shell history and the process list)."""
    values: dict[str, str] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise UsageError(f"parameter {item!r} is not KEY=VALUE (e.g. KeyPair=my-key)")
        if key in values:
            raise UsageError(f"parameter {key} is given twice")
        if value.startswith("@"):
            path = Path(value[1:]).expanduser()
            try:
                value = path.read_text().strip()
            except OSError as error:
                raise UsageError(f"{key}=@{path}: cannot read it ({error.strerror})") from error
        values[key] = value
    return values


def _session(region: str | None) -> Any:
    import boto3

    # AWS_REGION is what the other AWS SDKs and the AWS CLI v2 read; boto3 only reads
    # AWS_DEFAULT_REGION and the profile.
    session = boto3.session.Session(region_name=region or os.environ.get("AWS_REGION") or None)
    if not session.region_name:
        raise _NoAccess("no AWS region: pass --region or set AWS_REGION")
    return session


def _clients(region: str | None) -> Callable[[str], Any]:
    """boto3 clients of one region's session, each made once, when first asked for."""
    session = _session(region)
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service)
        return clients[service]

    return client


class _NoAccess(Exception):
    """AWS cannot be used as configured (exit code 3)."""


def _catalog(args: argparse.Namespace) -> Any:
    from .catalog import Catalog

    return Catalog(_clients(args.region), poll_seconds=args.poll, timeout=args.timeout)


def _product_name(name: str) -> str:
    return PRODUCTS.get(name.lower(), name)


def _out(args: argparse.Namespace) -> TextIO:
    """Where progress goes: stderr when stdout carries --json."""
    return sys.stderr if getattr(args, "json", False) else sys.stdout


def _follow(args: argparse.Namespace, catalog: Any, record_id: str, title: str) -> int:
    from .progress import Display

    stream = _out(args)
    if args.no_wait:
        print(f"{title}: started (record {record_id})", file=stream)
        if args.json:
            print(json.dumps({"record_id": record_id, "status": "IN_PROGRESS"}))
        return OK
    display = Display(stream)
    try:
        with display.operation(f"{title} (record {record_id})") as shown:
            outcome = catalog.wait(record_id, None if args.quiet else shown.event)
    except KeyboardInterrupt:
        print(
            f"\nstopped watching; {title.lower()} goes on in AWS "
            f"(`valohai-hybrid describe {args.name}` shows where it is)",
            file=sys.stderr,
        )
        return INTERRUPTED
    verdict = "succeeded" if outcome.succeeded else "FAILED"
    print(f"{title}: {verdict} in {outcome.seconds:.1f} s", file=stream)
    for error in outcome.errors:
        print(f"  {error}", file=stream)
    if args.json:
        print(
            json.dumps(
                {
                    "record_id": outcome.record_id,
                    "status": outcome.status,
                    "provisioned_product_id": outcome.provisioned_product_id,
                    "provisioned_product_name": outcome.provisioned_product_name,
                    "stack_id": outcome.stack_id,
                    "outputs": outcome.outputs,
                    "errors": outcome.errors,
                },
                indent=2,
            )
        )
    elif outcome.outputs:
        _print_outputs(outcome.outputs, stream)
    return OK if outcome.succeeded else FAILED


def _print_outputs(outputs: dict[str, str], stream: TextIO) -> None:
    width = max(len(key) for key in outputs)
    print("outputs:", file=stream)
    for key, value in sorted(outputs.items()):
        print(f"  {key.ljust(width)}  {value}", file=stream)


def _launch(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    product = _product_name(args.product)
    record = catalog.launch(product, args.name, _parameters(args.parameters), version=args.version)
    return _follow(args, catalog, record, f"Launching {product} as {args.name}")


def _update(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    record = catalog.update(args.name, _parameters(args.parameters), version=args.version)
    return _follow(args, catalog, record, f"Updating {args.name}")


def _terminate(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    record = catalog.terminate(args.name)
    return _follow(args, catalog, record, f"Terminating {args.name}")


def _describe(args: argparse.Namespace) -> int:
    launched = _catalog(args).describe(args.name)
    if args.json:
        print(json.dumps(dataclasses.asdict(launched), indent=2))
    else:
        print(f"{launched.name} ({launched.id}): {launched.status}")
        print(f"  product  {launched.product} {launched.version}".rstrip())
        print(f"  stack    {launched.stack_id or '-'}")
        if launched.status_message:
            print(f"  message  {launched.status_message}")
        if launched.outputs:
            _print_outputs(launched.outputs, sys.stdout)
    return OK if launched.status == "AVAILABLE" else FAILED


def _add_catalog_arguments(command: argparse.ArgumentParser, *, waits: bool = True) -> None:
    command.add_argument("--region", help="AWS region (default: your configured region)")
    command.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout (progress: stderr)"
    )
    command.set_defaults(poll=2.0, timeout=3600.0)
    if not waits:
        return
    command.add_argument(
        "--no-wait", action="store_true", help="return once Service Catalog accepted it"
    )
    command.add_argument(
        "--quiet", action="store_true", help="no table of stack events while waiting"
    )
    command.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds to wait before giving up watching, exit code 4 (default 3600)",
    )
    command.add_argument(
        "--poll", type=float, default=2.0, help="seconds between looks (default 2)"
    )


def _add_change_arguments(
    command: argparse.ArgumentParser, parameters_help: str, version_help: str
) -> None:
    """What launch and update both take: parameter values, a version, the catalog options."""
    command.add_argument(
        "parameters",
        nargs="*",
        metavar="KEY=VALUE",
        help=f"{parameters_help}; KEY=@FILE reads the value from FILE",
    )
    command.add_argument("--version", help=version_help)
    _add_catalog_arguments(command)


# ---- doctor -----------------------------------------------------------------------------------


def _doctor(args: argparse.Namespace) -> int:
    from . import doctor

    client = _clients(args.region)
    answers: dict[str, set[str]] = {}
    for item in args.resolve:
        host, ip = _pair(item, "--resolve", "HOST=IP")
        answers.setdefault(host, set()).add(ip)
    connect_to = {}
    for item in args.connect_to:
        host, target = _pair(item, "--connect-to", "HOST=IP:PORT")
        ip, _, port = target.rpartition(":")
        if not ip or not port.isdigit():
            raise UsageError(
                f"--connect-to {item!r}: give HOST=IP:PORT, such as q.example.com=10.0.0.5:63790"
            )
        connect_to[host] = (ip, int(port))
    if args.ca_bundle and not args.ca_bundle.is_file():
        raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
    options = doctor.Options(
        resolver=lambda host: answers[host] if host in answers else doctor.system_resolver(host),
        connect_to=connect_to,
        ca_bundle=args.ca_bundle,
        timeout=args.timeout,
    )
    try:
        setup = doctor.find_setup(client, args.name)
    except doctor.DoctorError as exc:
        raise UsageError(str(exc)) from exc
    text, healthy = doctor.report(doctor.diagnose(client, setup, options))
    print(text)
    return OK if healthy else FAILED


def _pair(item: str, flag: str, shape: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key or not value:
        raise UsageError(f"{flag} {item!r}: give {shape}")
    return key, value


# ---- demo -------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from . import demo

    options = demo.DemoOptions(
        project_dir=args.project_dir.resolve(),
        region=args.region,
        sam=args.sam,
        timings=args.timings,
    )
    with _terminate_as_interrupt():
        return OK if demo.run(options) else FAILED


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (e.g. `kill`, or a CI job cancelled) cleans up as Ctrl-C does."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- the parser ----------------------------------------------------------------------------


def _add_release_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--version", help="release version (default: this package's version, from pyproject)"
    )
    command.add_argument(
        "--bucket", help="artifacts bucket (default: valohai-hybrid-artifacts-<account>-<region>)"
    )
    command.add_argument("--region", help="AWS region (default: samconfig's, else AWS_REGION)")
    command.add_argument(
        "--share-with",
        action="append",
        metavar="ACCOUNT",
        help="an account the portfolio is shared with: it may read the releases (repeat)",
    )
    command.add_argument(
        "--project-dir",
        type=Path,
        default=Path(),
        help="where template.yaml, samconfig.toml, cfn/ and functions/ are (default: .)",
    )
    command.add_argument(
        "--cfn-dir", type=Path, help="the product templates (default: cfn/ in the project)"
    )


def _subcommand(
    commands: Any, name: str, summary: str, description: str, epilog: str = ""
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=(epilog + "\n\n" if epilog else "") + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="valohai-hybrid",
        description="Package, publish, launch and check Valohai Hybrid on AWS; run it locally.",
        epilog="`valohai-hybrid COMMAND --help` explains each command.\n\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _subcommand(
        commands,
        "demo",
        "publish, launch, update and terminate the whole product on a local AWS (make demo)",
        "Start a local AWS and the Valohai API stand-in on 127.0.0.1, publish the platform "
        "stack, launch the IAM and Workers products as a customer admin through Service "
        "Catalog, show what Valohai received, publish a new release, update to it, terminate "
        "both products and show what remains. Uses fake credentials only: it never reaches "
        "AWS. Everything it starts is stopped when it ends, also on Ctrl-C.",
    )
    demo.add_argument("--region", default="eu-west-1", help="region to play in (default eu-west-1)")
    demo.add_argument(
        "--timings", type=Path, metavar="FILE", help="write the seconds of each phase as JSON"
    )
    demo.add_argument(
        "--project-dir",
        type=Path,
        default=Path(),
        help="where template.yaml, cfn/ and functions/ are (default: .)",
    )
    demo.add_argument(
        "--sam", type=Path, help="aws-sam-cli to run (default: .tools/sam/bin/sam, else PATH)"
    )
    demo.set_defaults(handler=_demo)

    local = commands.add_parser(
        "local-aws", help="start, stop or inspect the local AWS (moto on 127.0.0.1)"
    )
    local.add_argument("action", choices=["start", "stop", "status"])
    local.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free one)"
    )
    local.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where the server keeps its status, log and certificates (default .localaws)",
    )
    local.add_argument(
        "--stabilize",
        action="append",
        default=[],
        metavar="TYPE=SECONDS",
        help="make CloudFormation wait SECONDS after creating or deleting a resource of TYPE, as "
        "AWS waits for it to stabilise (repeatable; e.g. AWS::EC2::Instance=10)",
    )
    local.set_defaults(handler=_local_aws)

    standin = commands.add_parser(
        "standin",
        help="run the local Valohai API stand-in (HTTPS on 127.0.0.1); --help for its options",
        add_help=False,
    )
    standin.set_defaults(handler=_standin, passthrough=True)

    docs = commands.add_parser(
        "docs", help="check (default) or rewrite README.md's blocks generated from the templates"
    )
    docs.add_argument("--write", action="store_true", help="rewrite the blocks in place")
    docs.set_defaults(handler=_docs)

    launch = _subcommand(
        commands,
        "launch",
        "launch a product from Service Catalog and follow it to the end",
        "Launch (provision) a product from the Service Catalog portfolio as the AWS "
        "identity you are signed in as, and show its stack events until it is done.",
        "examples:\n"
        "  valohai-hybrid launch iam valohai-iam \\\n"
        "      AssumeRoleARN=arn:aws:iam::905675611115:user/valohai-customer-acme \\\n"
        "      ExternalId=acme-7f3e1c\n"
        "  valohai-hybrid launch workers valohai-workers \\\n"
        "      ValohaiMasterRoleARN=arn:aws:iam::123456789012:role/ValohaiMaster \\\n"
        "      QueueAddress=acme.vqueue.net KeyPair=my-key SetupToken=@setup-token.txt",
    )
    launch.add_argument(
        "product", help="product name or id; `iam` and `workers` name the two Valohai products"
    )
    launch.add_argument("name", help="a name for the launched product (letters, digits, . _ -)")
    _add_change_arguments(
        launch, "product parameters", "product version (default: the recommended one)"
    )
    launch.set_defaults(handler=_launch)

    update = _subcommand(
        commands,
        "update",
        "update a launched product: another version, other parameter values",
        "Update a launched product. Parameters you do not give keep their values.",
        "example:\n"
        "  valohai-hybrid update valohai-workers --version 0.2.0 QueueInstanceType=t3.large",
    )
    update.add_argument("name", help="the launched product's name or id (pp-...)")
    _add_change_arguments(
        update, "parameters to change", "version to move to (default: the one it has)"
    )
    update.set_defaults(handler=_update)

    terminate = _subcommand(
        commands,
        "terminate",
        "terminate a launched product (the Workers product keeps its data bucket)",
        "Terminate a launched product: its stack and everything in it are deleted, except the "
        "data bucket, which the Workers product retains (your data).",
    )
    terminate.add_argument("name", help="the launched product's name or id (pp-...)")
    _add_catalog_arguments(terminate)
    terminate.set_defaults(handler=_terminate)

    describe = _subcommand(
        commands,
        "describe",
        "show a launched product's status, version and outputs",
        "Show a launched product's status, version, stack and outputs (exit code 1 unless it "
        "is AVAILABLE).",
    )
    describe.add_argument("name", help="the launched product's name or id (pp-...)")
    _add_catalog_arguments(describe, waits=False)
    describe.set_defaults(handler=_describe)

    check = _subcommand(
        commands,
        "doctor",
        "check a launched Workers setup: network, secret, DNS, TLS, Redis, hand-off",
        "Check a launched Workers setup and say how to fix each problem found.",
    )
    check.add_argument("name", help="stack name or id, or provisioned product name or id (pp-...)")
    check.add_argument("--region", help="AWS region (default: your configured region)")
    check.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST=IP",
        help="answer DNS for HOST with IP instead of asking the resolver (repeatable)",
    )
    check.add_argument(
        "--connect-to",
        action="append",
        default=[],
        metavar="HOST=IP:PORT",
        help="reach HOST's queue port at IP:PORT instead (a tunnel, or before DNS exists)",
    )
    check.add_argument("--ca-bundle", type=Path, help="CA bundle trusting the queue certificate")
    check.add_argument("--timeout", type=float, default=5.0, help="network timeout in seconds")
    check.set_defaults(handler=_doctor)

    package = commands.add_parser(
        "package",
        help="upload the product templates as a release to the artifacts bucket (no deploy)",
    )
    _add_release_arguments(package)
    package.set_defaults(handler=_package)

    release = commands.add_parser(
        "publish",
        help="package a release and deploy the platform stack with it (sam build + sam deploy)",
        description="Package the product templates as a release, then build and deploy the "
        "platform stack (template.yaml) with the samconfig.toml environment. Uses your AWS "
        "credentials, or the local AWS when AWS_ENDPOINT_URL points at it.",
    )
    _add_release_arguments(release)
    release.add_argument(
        "--config-env", default="default", help="samconfig.toml environment (default: default)"
    )
    release.add_argument(
        "--principal",
        action="append",
        metavar="ARN",
        help="an IAM user, role or group that may launch the products (repeat; "
        "default: keep the current ones)",
    )
    release.add_argument(
        "--parameter",
        action="append",
        type=_key_value,
        metavar="KEY=VALUE",
        help="a template.yaml parameter, over samconfig's parameter_overrides (repeat)",
    )
    release.add_argument(
        "--sam", type=Path, help="aws-sam-cli to run (default: .tools/sam/bin/sam, else PATH)"
    )
    release.add_argument(
        "--quiet", action="store_true", help="show sam's output only when it fails"
    )
    release.set_defaults(handler=_publish)
    return parser


def _aws_problem(error: Exception) -> tuple[int, str]:
    """The exit code and message for an error from AWS or the AWS SDK."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code, message = str(details.get("Code", "")), str(details.get("Message", ""))
        if code in _ACCESS_CODES:
            return NO_ACCESS, f"AWS refused the credentials or the permission ({code}): {message}"
        operation = getattr(error, "operation_name", "the call")
        return FAILED, f"AWS refused {operation} ({code}): {message}"
    text = str(error)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        text += " (sign in: aws sso login, or set AWS_PROFILE or AWS_ACCESS_KEY_ID)"
    elif isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        text += " (check the network, and AWS_ENDPOINT_URL if you set it)"
    return NO_ACCESS, text


def main(argv: list[str] | None = None) -> int:
    from .catalog import NothingChanged, StillRunning

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if getattr(args, "passthrough", False):
            return int(args.handler(args, extra))
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except (UsageError, NothingChanged) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except _NoAccess as exc:
        print(f"error: {exc}", file=sys.stderr)
        return NO_ACCESS
    except StillRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return STILL_RUNNING
    except (control.ControlError, OperationFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    except (ClientError, BotoCoreError) as exc:
        code, message = _aws_problem(exc)
        print(f"error: {message}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
