"""The time budget of one invocation, and the step it is on.

Every wait (HTTP attempts, backoff, DNS polling) is bounded by `remaining()`, so a function
answers before its Lambda deadline; `step()` names what was in progress, which is what a
timeout Reason and an AWS error Reason need to say.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from valohai_cr.errors import OutOfTime, ResourceFailure, aws_reason

Clock = Callable[[], float]

#: Seconds kept back from the Lambda deadline for queueing an event and answering.
RESERVE_SECONDS = 2.0


class RemainingTime(Protocol):
    """The one thing we need from a Lambda context."""

    def get_remaining_time_in_millis(self) -> int: ...


class Work:
    """A deadline on a monotonic clock plus the name of the current step."""

    def __init__(self, seconds: float, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._deadline = clock() + seconds
        self.current_step = "starting"

    @classmethod
    def for_lambda(
        cls,
        context: RemainingTime,
        *,
        reserve: float = RESERVE_SECONDS,
        clock: Clock = time.monotonic,
    ) -> Work:
        """What is left of the invocation, minus `reserve` seconds kept for answering."""
        return cls(context.get_remaining_time_in_millis() / 1000 - reserve, clock=clock)

    def remaining(self) -> float:
        return max(0.0, self._deadline - self._clock())

    def limited(self, seconds: float) -> Work:
        """A sub-budget of at most `seconds` that also ends no later than this one."""
        sub = Work(min(seconds, self.remaining()), clock=self._clock)
        sub.current_step = self.current_step
        return sub

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Run one step: refuse to start it without time left; turn AWS errors into a Reason."""
        if self.remaining() <= 0:
            raise OutOfTime(f"Ran out of time before {what}")
        self.current_step = what
        try:
            yield
        except (ClientError, BotoCoreError) as error:
            raise ResourceFailure(f"{_capitalised(what)} failed: {aws_reason(error)}") from error


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
