"""The subcommands that need the local AWS: `demo`, `local-aws`, `standin`.

Their code lives in `valohai_hybrid.local`, installed with the `local` extra; it is imported
when one of them runs, so the rest of the command works without it, and without it these
subcommands say what to install (exit code 2: nothing was done).
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from .outcomes import UsageError
from .parser import subcommand

DEFAULT_STATE_DIR = Path(".localaws")


def _local(module: str, command: str) -> ModuleType:
    """`valohai_hybrid.local.<module>`, or the error naming what to install."""
    try:
        return importlib.import_module(f"valohai_hybrid.local.{module}")
    except ImportError as error:
        raise UsageError(
            f"`valohai-hybrid {command}` needs the local AWS, which this installation lacks "
            f"({error.name or error} is missing): install the local extra from a checkout of "
            "this repository, pip install ./local-aws '.[local]' (make install does this)"
        ) from error


def _demo(args: argparse.Namespace) -> int:
    result: int = _local("commands", "demo").demo(args)
    return result


def _local_aws(args: argparse.Namespace) -> int:
    result: int = _local("commands", "local-aws").local_aws(args)
    return result


def _standin(args: argparse.Namespace, extra: list[str]) -> int:
    result: int = _local("commands", "standin").standin(extra)
    return result


def add_local(commands: Any) -> None:
    demo = subcommand(
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
