"""The customer's commands: `launch`, `update`, `terminate`, `describe`, `doctor`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from valohai_hybrid import keyvalue
from valohai_hybrid.products import product_name

from .outcomes import FAILED, INTERRUPTED, OK, NoAccess, UsageError
from .parser import subcommand


def _parameters(items: list[str]) -> dict[str, str]:
    """KEY=VALUE arguments; KEY=@FILE reads the value from FILE."""
    try:
        return keyvalue.values(items, example="KeyPair=my-key")
    except keyvalue.KeyValueError as error:
        raise UsageError(str(error)) from error


def _session(region: str | None) -> Any:
    import boto3

    # AWS_REGION is what the other AWS SDKs and the AWS CLI v2 read; boto3 only reads
    # AWS_DEFAULT_REGION and the profile.
    session = boto3.session.Session(region_name=region or os.environ.get("AWS_REGION") or None)
    if not session.region_name:
        raise NoAccess("no AWS region: pass --region or set AWS_REGION")
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


def _catalog(args: argparse.Namespace) -> Any:
    from valohai_hybrid.catalog import Catalog

    return Catalog(_clients(args.region), poll_seconds=args.poll, timeout=args.timeout)


def _out(args: argparse.Namespace) -> TextIO:
    """Where progress goes: stderr when stdout carries --json."""
    return sys.stderr if getattr(args, "json", False) else sys.stdout


def _follow(args: argparse.Namespace, catalog: Any, record_id: str, title: str) -> int:
    from valohai_hybrid.progress import Display

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
    product = product_name(args.product)
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
    from valohai_hybrid import doctor

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
    pair = keyvalue.split(item, value_required=True)
    if pair is None:
        raise UsageError(f"{flag} {item!r}: give {shape}")
    return pair


def add_setups(commands: Any) -> None:
    launch = subcommand(
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

    update = subcommand(
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

    terminate = subcommand(
        commands,
        "terminate",
        "terminate a launched product (the Workers product keeps its data bucket)",
        "Terminate a launched product: its stack and everything in it are deleted, except the "
        "data bucket, which the Workers product retains (your data).",
    )
    terminate.add_argument("name", help="the launched product's name or id (pp-...)")
    _add_catalog_arguments(terminate)
    terminate.set_defaults(handler=_terminate)

    describe = subcommand(
        commands,
        "describe",
        "show a launched product's status, version and outputs",
        "Show a launched product's status, version, stack and outputs (exit code 1 unless it "
        "is AVAILABLE).",
    )
    describe.add_argument("name", help="the launched product's name or id (pp-...)")
    _add_catalog_arguments(describe, waits=False)
    describe.set_defaults(handler=_describe)

    check = subcommand(
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
