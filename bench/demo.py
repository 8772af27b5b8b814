"""The whole `make demo`, several times: `valohai-hybrid demo --timings FILE` as a user runs it
(its own local AWS and stand-in each time), with the seconds of each phase it reports.

Writes bench/results/demo.json: the median of each phase and of the total, and every run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.lifecycle import BenchmarkFailure
from bench.machine import ROOT, context, median, say, summary, write

RUNS = 3


def _command() -> list[str]:
    """The console command of this environment (the one `make demo` runs)."""
    installed = Path(sys.executable).with_name("valohai-hybrid")
    if not installed.is_file():
        raise BenchmarkFailure(f"{installed} is missing: run `make install`")
    return [str(installed), "demo"]


def once(directory: Path) -> dict[str, Any]:
    timings, output = directory / "timings.json", directory / "demo.log"
    with output.open("w") as log:
        finished = subprocess.run(
            [*_command(), "--timings", str(timings)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if finished.returncode != 0 or not timings.is_file():
        tail = "\n".join(output.read_text().splitlines()[-15:])
        raise BenchmarkFailure(f"the demo failed (exit code {finished.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(timings.read_text())
    return result


def main() -> int:
    started = context()
    say(f"demo: `valohai-hybrid demo` {RUNS} times")
    runs = []
    for number in range(RUNS):
        with tempfile.TemporaryDirectory() as scratch:
            runs.append(once(Path(scratch)))
        say(f"  run {number + 1}: {runs[-1]['total_seconds']:.1f} s")
    phases = list(runs[0]["phases"])
    write(
        "demo",
        {
            "description": (
                "`make demo` (valohai-hybrid demo): start the local AWS and the stand-in, "
                "publish, launch IAM and Workers, show the hand-off, publish the next release, "
                "update, terminate, check what remains, stop; seconds per phase"
            ),
            "total_seconds": summary([r["total_seconds"] for r in runs]),
            "phases_median": {name: median(r["phases"][name] for r in runs) for name in phases},
            "runs": runs,
        },
        started,
    )
    return 0
