"""What the figures were measured on, and helpers every benchmark shares.

Timings on a shared 2-core machine move with its load, so every result file says how loaded the
machine was while it was measured, and CPU seconds are counted next to wall seconds where a
figure is bound by CPU.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from valohai_hybrid.checkout import ROOT

RESULTS = ROOT / "bench" / "results"
#: The functions' runtime (template.yaml): python3.13.
LAMBDA_PYTHON_VERSION = "3.13"


@functools.cache
def lambda_python() -> str:
    """A python3.13 that runs (on PATH or under pyenv; a pyenv shim may not run), else the
    Python running the benchmarks: the figures say which one measured them."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{LAMBDA_PYTHON_VERSION}")]
    candidates += [
        str(p) for p in sorted(pyenv.glob(f"versions/{LAMBDA_PYTHON_VERSION}*/bin/python3"))
    ]
    for candidate in filter(None, candidates):
        probe = [candidate, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == LAMBDA_PYTHON_VERSION:
            return candidate
    return sys.executable


def python_version(python: str) -> str:
    """The full version of an interpreter, e.g. 3.13.0."""
    return subprocess.run(
        [python, "-I", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def context() -> dict[str, Any]:
    """The machine and its load right now."""
    one, five, fifteen = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "load_average": {"1m": one, "5m": five, "15m": fifteen},
        "platform": platform.platform(),
        "python": platform.python_version(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def cpu_seconds(server_pid: int) -> float:
    """CPU seconds used so far by this process (the stand-in runs in it) and by the local AWS:
    its server, the Lambda workers it runs and those it has reaped (Linux /proc). Other work
    on the machine is not counted."""
    ticks = os.sysconf("SC_CLK_TCK")
    own = time.process_time()
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            stats[int(entry.name)] = fields
    tree = {server_pid}
    grew = True
    while grew:
        children = {pid for pid, fields in stats.items() if int(fields[1]) in tree} - tree
        tree |= children
        grew = bool(children)
    used = 0
    for pid in tree & stats.keys():
        utime, stime, cutime, cstime = (int(v) for v in stats[pid][11:15])
        used += utime + stime + cutime + cstime
    return own + used / ticks


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def summary(values: list[float]) -> dict[str, Any]:
    """Median, spread and count of some seconds."""
    return {
        "median": median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


def write(name: str, results: dict[str, Any], started: dict[str, Any]) -> Path:
    """bench/results/<name>.json, with the machine's context at the start and the end."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {**results, "machine": {"start": started, "end": context()}}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def say(text: str) -> None:
    print(text, flush=True, file=sys.stdout)
