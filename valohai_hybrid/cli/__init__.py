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

The modules: `outcomes` (exit codes, errors), `parser`, `setups` (launch, update, terminate,
describe, doctor), `release` (docs, package, publish), `local` (demo, local-aws, standin: the
local AWS, imported only when they run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from valohai_hybrid.products import PRODUCTS as _PRODUCTS

from .local import DEFAULT_STATE_DIR
from .outcomes import (
    EXIT_CODES_HELP,
    FAILED,
    INTERRUPTED,
    NO_ACCESS,
    OK,
    STILL_RUNNING,
    USAGE,
    NoAccess,
    OperationFailed,
    UsageError,
    aws_problem,
)
from .parser import build_parser

#: Short names for the two products (`valohai_hybrid.products` names them).
PRODUCTS = {product.key: product.name for product in _PRODUCTS}

__all__ = [
    "DEFAULT_STATE_DIR",
    "EXIT_CODES_HELP",
    "FAILED",
    "INTERRUPTED",
    "NO_ACCESS",
    "OK",
    "PRODUCTS",
    "STILL_RUNNING",
    "USAGE",
    "OperationFailed",
    "UsageError",
    "build_parser",
    "main",
]


def main(argv: list[str] | None = None) -> int:
    from valohai_hybrid.catalog import NothingChanged, StillRunning

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
    except NoAccess as exc:
        print(f"error: {exc}", file=sys.stderr)
        return NO_ACCESS
    except StillRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return STILL_RUNNING
    except OperationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    except (ClientError, BotoCoreError) as exc:
        code, message = aws_problem(exc)
        print(f"error: {message}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
