"""The `valohai-hybrid` console command.

Exit codes: 0 success, 1 the operation failed (the message says why), 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from .localaws import control

DEFAULT_STATE_DIR = Path(".localaws")


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
    except control.ControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
