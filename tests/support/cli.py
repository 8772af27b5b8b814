"""Running the console command as a user does: a subprocess, its output, its exit code, and
every process it started (sampled while it runs, from /proc), to prove nothing outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from valohai_hybrid.checkout import ROOT

#: The console script `pip install` made, as a user runs it.
COMMAND = str(Path(sys.executable).parent / "valohai-hybrid")


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env=env,
    )


def _processes() -> dict[int, tuple[int, str]]:
    """Every live process: pid -> (parent pid, start time)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            found[int(entry.name)] = (int(fields[1]), fields[19])
    return found


@dataclass
class Running:
    """A command running in a session of its own (as in a terminal), with its output so far
    and every process that descended from it while it ran (pid, start time)."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    seen: set[tuple[int, str]] = field(default_factory=set)
    _done: threading.Event = field(default_factory=threading.Event)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; output:\n{self.output}")
            time.sleep(0.05)

    def interrupt(self) -> None:
        """Ctrl-C in a terminal: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def finish(self, timeout: float = 120.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._done.set()
        return code

    def survivors(self, grace: float = 10.0) -> list[int]:
        """Processes it started that are still alive (same pid and start time)."""
        deadline = time.monotonic() + grace
        while True:
            now = _processes()
            alive = [pid for pid, start in self.seen if now.get(pid, (0, ""))[1] == start]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def sample(self) -> None:
        while not self._done.wait(0.1):
            table = _processes()
            family, frontier = set(), {self.process.pid}
            while frontier:
                frontier = {p for p, (parent, _) in table.items() if parent in frontier} - family
                family |= frontier
            self.seen |= {(pid, table[pid][1]) for pid in family if pid in table}


def _as_in_a_terminal() -> None:
    """Ctrl-C's default action, as a terminal's shell gives its foreground job: a process
    started with SIGINT ignored (a background job of a script, say) keeps it ignored, so a
    command run from one would never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Commands:
    """Commands a test starts in the background; any still running at its end is killed."""

    def __init__(self) -> None:
        self.started: list[Running] = []

    def start(self, args: list[str], env: dict[str, str]) -> Running:
        process = subprocess.Popen(
            [COMMAND, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=_as_in_a_terminal,
        )
        running = Running(process)
        self.started.append(running)
        for target in (running.read, running.sample):
            threading.Thread(target=target, daemon=True).start()
        return running
