"""What a stack operation looks like while the command waits: on a terminal, events above a
status line that keeps moving; in a log, plain lines and a sign of life when nothing happens."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

from valohai_hybrid.catalog import StackEvent
from valohai_hybrid.progress import Display


def _event(resource: str, status: str) -> StackEvent:
    return StackEvent(datetime.now(UTC), 1.25, resource, "AWS::EC2::Instance", status, "")


def test_on_a_terminal_the_status_line_moves_under_the_events() -> None:
    screen = io.StringIO()
    display = Display(screen, live=True, color=True)
    with display.operation("launch Workers") as shown:
        time.sleep(0.35)
        shown.event(_event("WorkerQueue/QueueInstance", "CREATE_IN_PROGRESS"))
        shown.event(_event("WorkerQueue/QueueInstance", "CREATE_COMPLETE"))
        time.sleep(0.25)
    text = screen.getvalue()
    # The status line is redrawn in place, numbers first, and counts what is done.
    assert text.count("\r\033[K") > 4
    assert "0 done, 0 in progress: launch Workers" in text
    assert "1 done, 0 in progress: launch Workers" in text
    # Each event is a line of its own, above it, coloured by outcome.
    assert "\033[32mCREATE_COMPLETE" in text
    assert "1.2 s  \033[33mCREATE_IN_PROGRESS" in text
    # Once done, the status line is gone.
    assert text.endswith("\r\033[K")


def test_in_a_log_events_are_plain_lines_and_silence_is_reported() -> None:
    log = io.StringIO()
    display = Display(log, live=False, heartbeat=1.0)
    with display.operation("launch Workers") as shown:
        shown.event(_event("WorkerQueue/QueueInstance", "CREATE_IN_PROGRESS"))
        time.sleep(2.5)
    lines = log.getvalue().splitlines()
    assert "\033" not in log.getvalue()
    assert lines[0] == "launch Workers"
    assert lines[1].split() == ["elapsed", "status", "type", "resource", "reason"]
    assert lines[2].split() == [
        "1.2",
        "s",
        "CREATE_IN_PROGRESS",
        "AWS::EC2::Instance",
        "WorkerQueue/QueueInstance",
    ]
    still = [line for line in lines if "still going" in line]
    assert 1 <= len(still) <= 2, lines
    assert "0 done, 1 in progress: launch Workers" in still[0]
