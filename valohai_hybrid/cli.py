"""The `valohai-hybrid` console command.

Exit codes: 0 success, 1 the operation failed (the message says why), 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import publish
from .localaws import control

DEFAULT_STATE_DIR = Path(".localaws")


class UsageError(Exception):
    """A mistake the user can fix; printed without a traceback."""


def _local_aws(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    if args.action == "start":
        info = control.start(state_dir, port=args.port)
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
        return 0 if running else 1
    return 0


def _publish_options(args: argparse.Namespace) -> publish.PublishOptions:
    return publish.PublishOptions(
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


def _package(args: argparse.Namespace) -> int:
    release = publish.package_only(_publish_options(args), args.share_with or ())
    print(f"release {release.version} in s3://{release.bucket}/{release.prefix}")
    print(f"  IAM product template      {release.iam_template_url}")
    print(f"  Workers product template  {release.workers_template_url}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    publish.report(publish.publish(_publish_options(args)))
    return 0


def _key_value(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


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
        return 0
    if wanted != current:
        print(
            "README.md is out of date with the templates: run `valohai-hybrid docs --write`",
            file=sys.stderr,
        )
        return 1
    print("README.md: generated blocks are current")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    import boto3

    from . import doctor

    session = boto3.session.Session(region_name=args.region)
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service)  # type: ignore[call-overload]
        return clients[service]

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
    return 0 if healthy else 1


def _pair(item: str, flag: str, shape: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key or not value:
        raise UsageError(f"{flag} {item!r}: give {shape}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="valohai-hybrid",
        description="Package, publish, launch and check Valohai Hybrid on AWS; run it locally.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    check = commands.add_parser(
        "doctor",
        help="check a launched Workers setup: network, secret, DNS, TLS, Redis, hand-off",
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if getattr(args, "passthrough", False):
            return int(args.handler(args, extra))
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except (control.ControlError, UsageError, publish.PublishError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
