"""The `commands` fixture: commands a test starts in the background, killed if still running
when it ends (with everything they started)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.support.cli import Commands


@pytest.fixture
def commands() -> Iterator[Commands]:
    started = Commands()
    yield started
    for running in started.started:
        if running.process.poll() is None:
            os.killpg(running.process.pid, signal.SIGKILL)
            running.finish()
        for pid in running.survivors(grace=0):  # only after a failed test
            os.kill(pid, signal.SIGKILL)
