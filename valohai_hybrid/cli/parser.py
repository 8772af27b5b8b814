"""The parser: one subcommand per task, each module adding its own."""

from __future__ import annotations

import argparse
from typing import Any

from .outcomes import EXIT_CODES_HELP


def subcommand(
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
    from .local import add_local
    from .release import add_docs, add_release
    from .setups import add_setups

    parser = argparse.ArgumentParser(
        prog="valohai-hybrid",
        description="Package, publish, launch and check Valohai Hybrid on AWS; run it locally.",
        epilog="`valohai-hybrid COMMAND --help` explains each command.\n\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_local(commands)
    add_docs(commands)
    add_setups(commands)
    add_release(commands)
    return parser
