"""`python -m valohai_hybrid.local.standin`: run the Valohai stand-in in the foreground.

Prints one JSON line (url, ca_bundle, pid), also written to <state-dir>/standin.json, and
stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

from .server import StandIn

STATUS_FILE = "standin.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="valohai-hybrid standin",
        description="Run the local Valohai API stand-in (HTTPS on 127.0.0.1).",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--token",
        action="append",
        required=True,
        help="a setup token the stand-in accepts signatures from (repeat for several)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".localaws"),
        help="where the local CA (ca/) and the received events live (default: .localaws, "
        "shared with the local AWS)",
    )
    args = parser.parse_args(argv)
    try:
        standin = StandIn(args.token, args.state_dir.resolve(), port=args.port)
    except ValueError as error:
        parser.error(str(error))
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    with standin:
        info = {"url": standin.url, "ca_bundle": str(standin.ca_bundle), "pid": os.getpid()}
        status_file = args.state_dir / STATUS_FILE
        status_file.write_text(json.dumps(info))
        print(json.dumps(info), flush=True)
        stopped.wait()
    status_file.unlink(missing_ok=True)
    return 0
