"""A result computed once per test run and shared by every pytest-xdist worker.

The slow tools (cfn-lint in every region, checkov) take seconds to start and give the same
answer to every test that asks: one worker runs each, the others wait for its answer and read
it. Without xdist the run is one process and a session-scoped fixture is enough.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def run_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of this test run that every worker sees (xdist gives each worker its own
    base temporary directory inside the run's)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


def once_per_run(directory: Path, name: str, compute: Callable[[], Any]) -> Any:
    """compute()'s JSON result, computed by the first worker to ask and read by the others."""
    result = directory / f"{name}.json"
    with (directory / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not result.exists():
            answer = compute()
            partial = result.with_suffix(".partial")
            partial.write_text(json.dumps(answer))
            partial.replace(result)
        return json.loads(result.read_text())
