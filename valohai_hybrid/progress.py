"""Showing a stack operation as it happens: its events, with the seconds since it began.

The events are a table like `sam deploy`'s (status, type, resource, reason), nested stacks'
resources named by their path (`WorkerQueue/QueueInstance`). On a terminal a status line under
the table keeps moving (a spinner, the elapsed time and how many resources are done), so a
slow step never looks like a hang; elsewhere (CI logs, pipes) a line every `heartbeat` seconds
without events says the operation is still going.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from .catalog import StackEvent

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_COLORS = {"FAILED": "31", "COMPLETE": "32", "IN_PROGRESS": "33"}
_COLUMNS = (8, 24, 38, 42)


class Operation:
    """One stack operation on the screen; use through `Display.operation`."""

    def __init__(self, display: Display, title: str) -> None:
        self._display = display
        self.title = title
        self._header_due = True
        self._began = time.monotonic()
        self._latest: dict[str, str] = {}
        self._quiet_since = self._began

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._began

    def event(self, event: StackEvent) -> None:
        self._latest[event.resource] = event.status
        self._quiet_since = time.monotonic()
        if self._header_due:
            self._header_due = False
            self._display.line(self._display.header())
        self._display.line(self._display.format_event(event))

    def note(self, text: str) -> None:
        """A line of its own (publish steps, for instance)."""
        self._quiet_since = time.monotonic()
        self._display.line(text)

    def status(self) -> str:
        done = sum(s.endswith("_COMPLETE") for s in self._latest.values())
        running = sum(s.endswith("_IN_PROGRESS") for s in self._latest.values())
        failed = sum(s.endswith("_FAILED") for s in self._latest.values())
        counts = f"{done} done, {running} in progress" + (f", {failed} failed" if failed else "")
        # The numbers first: a narrow terminal cuts the line's end.
        return f"{self.elapsed:5.1f} s  {counts}: {self.title}"

    def quiet_for(self) -> float:
        return time.monotonic() - self._quiet_since


class Display:
    """Where operations are shown; `live` (default: the stream is a terminal) adds the moving
    status line, `color` (default: live and NO_COLOR unset) colours the statuses."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        color: bool | None = None,
        heartbeat: float = 30.0,
    ) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.color = (self.live and "NO_COLOR" not in os.environ) if color is None else color
        self.heartbeat = heartbeat
        self._lock = threading.Lock()
        self._current: Operation | None = None
        self._frame = 0

    def line(self, text: str) -> None:
        """Print a line above the status line (which is drawn again under it)."""
        with self._lock:
            if self.live:
                self.stream.write("\r\033[K")
            self.stream.write(text + "\n")
            self._draw()
            self.stream.flush()

    def header(self) -> str:
        names = ("elapsed", "status", "type", "resource")
        return "  " + " ".join(n.ljust(w) for n, w in zip(names, _COLUMNS, strict=True)) + " reason"

    def format_event(self, event: StackEvent) -> str:
        status = event.status.ljust(_COLUMNS[1])
        if self.color:
            code = next((c for suffix, c in _COLORS.items() if event.status.endswith(suffix)), "")
            status = f"\033[{code}m{status}\033[0m" if code else status
        cells = (
            f"{event.elapsed:5.1f} s".ljust(_COLUMNS[0]),
            status,
            event.resource_type.ljust(_COLUMNS[2]),
            event.resource.ljust(_COLUMNS[3]),
            event.reason,
        )
        return ("  " + " ".join(cells)).rstrip()

    @contextmanager
    def operation(self, title: str) -> Iterator[Operation]:
        """Show `title`, then the operation's events under a header; the status line moves
        until it ends."""
        self.line(title)
        operation = Operation(self, title.strip())
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(operation, stop), daemon=True)
        with self._lock:
            self._current = operation
        ticker.start()
        try:
            yield operation
        finally:
            stop.set()
            ticker.join()
            with self._lock:
                self._current = None
                if self.live:
                    self.stream.write("\r\033[K")
                    self.stream.flush()

    def _tick(self, operation: Operation, stop: threading.Event) -> None:
        interval = 0.1 if self.live else 1.0
        while not stop.wait(interval):
            if self.live:
                with self._lock:
                    self._frame += 1
                    self.stream.write("\r\033[K")
                    self._draw()
                    self.stream.flush()
            elif operation.quiet_for() >= self.heartbeat:
                operation.note(f"  ... still going: {operation.status()}")

    def _draw(self) -> None:
        if self.live and self._current is not None:
            spinner = SPINNER[self._frame % len(SPINNER)]
            # One physical line, or the next redraw could not erase it.
            width = shutil.get_terminal_size().columns - 1
            self.stream.write(f"{spinner} {self._current.status()}"[:width])
