"""What `valohai-hybrid demo`, `local-aws` and `standin` run (the console command imports this
module only when one of them runs: see `valohai_hybrid.cli.local`)."""

from __future__ import annotations

import argparse
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from localaws import control
from localaws.config import stabilize_waits

from valohai_hybrid.cli.outcomes import FAILED, OK, OperationFailed, UsageError


def local_aws(args: argparse.Namespace) -> int:
    try:
        return _local_aws(args)
    except control.ControlError as error:
        raise OperationFailed(str(error)) from error


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


def standin(extra: list[str]) -> int:
    from .standin.cli import main as standin_main

    return standin_main(extra)


def demo(args: argparse.Namespace) -> int:
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
