"""Launches while Valohai misbehaves: down (connections refused) for a moment or for the whole
launch, slower than an attempt may take, answering 500 or 429 (with Retry-After) for a few
calls. Every launch succeeds (NotificationPolicy BestEffort) within the ServiceTimeouts, and
Valohai ends up with each event of the setup exactly once: at once, after retries, or from the
redelivery queue once it is back.

The scenarios run side by side (each with a Valohai of its own), since most of their time is
spent waiting for retries.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability_support import (
    LIFE_EVENTS,
    NOTIFICATION_SERVICE_TIMEOUT,
    QUEUE_ADDRESS_SERVICE_TIMEOUT,
    SETUP_TOKEN,
    WORKERS_PRODUCT,
    Launcher,
    delivered_exactly_once,
    eventually,
    unique,
)

from valohai_hybrid.catalog import Outcome
from valohai_hybrid.localaws.testing import LocalAwsHandle
from valohai_hybrid.standin import Attempt, Fault, Receiver, StandIn

#: A launch ends within the ServiceTimeouts of its two notifying resources, one after the
#: other, whatever Valohai does.
LAUNCH_LIMIT = QUEUE_ADDRESS_SERVICE_TIMEOUT + NOTIFICATION_SERVICE_TIMEOUT
BRIEF_OUTAGE = 4.0
#: The redelivery consumer's visibility timeout (the platform's redelivery interval, 30 s),
#: one attempt's budget (30 s) and some slack.
REDELIVERY_WAIT = 75.0


@dataclass
class Scenario:
    """How Valohai misbehaves during one launch; what the launch and Valohai then show."""

    name: str
    misbehave: Callable[[Receiver], None] = lambda _: None
    #: Seconds Valohai is not there at all (connections refused) from the launch request;
    #: None: there from the start; inf: until the launch is over.
    down_for: float | None = None
    outcome: Outcome | None = None
    seconds: float = 0.0
    terminated: Outcome | None = None
    standin: StandIn | None = None

    def attempts(self, event_type: str) -> list[Attempt]:
        """Every request of that type Valohai got, and what it answered, in order."""
        assert self.standin is not None
        return [a for a in self.standin.receiver.attempts() if a.event_type == event_type]


SCENARIOS = [
    Scenario("down for a moment", down_for=BRIEF_OUTAGE),
    Scenario("down for the whole launch", down_for=float("inf")),
    # Longer than one attempt may last (10 s): the function gives up on the attempt and tries
    # again while Valohai is still working on the first.
    Scenario("slow", lambda r: r.inject(Fault(count=1, delay=12))),
    Scenario("500 for 3 calls", lambda r: r.inject(Fault(count=3, status=500))),
    Scenario("429 for 2 calls", lambda r: r.inject(Fault(count=2, status=429, retry_after=2))),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(scenario: Scenario, launcher: Launcher, state_dir: Path) -> Scenario:
    """Launch with Valohai misbehaving, let it recover, then terminate with Valohai well."""
    port = _free_port()
    standin = StandIn([SETUP_TOKEN], state_dir, port=port)
    scenario.standin = standin
    if scenario.down_for is None:
        standin.start()
        scenario.misbehave(standin.receiver)
    catalog = launcher.admin.catalog(timeout=LAUNCH_LIMIT)
    began = time.monotonic()
    record = catalog.launch(
        WORKERS_PRODUCT, unique("setup"), launcher.parameters(f"https://127.0.0.1:{port}")
    )
    if scenario.down_for == BRIEF_OUTAGE:
        time.sleep(max(0.0, began + BRIEF_OUTAGE - time.monotonic()))
        standin.start()
    scenario.outcome = catalog.wait(record)
    scenario.seconds = time.monotonic() - began
    if scenario.down_for == float("inf"):
        standin.start()  # Valohai is back: the queued events come from the redelivery queue
    if scenario.outcome.succeeded:
        delivered_exactly_once(
            standin,
            scenario.outcome.stack_id,
            ("queue_address.registered", "setup.created"),
            timeout=REDELIVERY_WAIT,
        )
        scenario.terminated = catalog.wait(
            catalog.terminate(scenario.outcome.provisioned_product_id)
        )
    return scenario


@pytest.fixture(scope="module")
def scenarios(launcher: Launcher, local_aws: LocalAwsHandle) -> dict[str, Scenario]:
    with ThreadPoolExecutor(len(SCENARIOS)) as pool:
        ran = list(pool.map(lambda s: _run(s, launcher, local_aws.state_dir), SCENARIOS))
    return {s.name: s for s in ran}


@pytest.fixture(scope="module", autouse=True)
def stopped(scenarios: dict[str, Scenario]) -> object:
    yield None
    for scenario in scenarios.values():
        if scenario.standin is not None:
            scenario.standin.stop()


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_the_launch_succeeds_in_time_and_valohai_gets_every_event_once(
    scenarios: dict[str, Scenario], name: str
) -> None:
    scenario = scenarios[name]
    assert scenario.outcome is not None
    assert scenario.outcome.succeeded, scenario.outcome.errors
    assert scenario.seconds < LAUNCH_LIMIT
    assert scenario.terminated is not None
    assert scenario.terminated.succeeded, scenario.terminated.errors
    assert scenario.standin is not None
    delivered_exactly_once(scenario.standin, scenario.outcome.stack_id, LIFE_EVENTS)


def test_while_valohai_is_down_the_events_are_queued_and_redelivered(
    scenarios: dict[str, Scenario],
) -> None:
    down = scenarios["down for the whole launch"]
    assert down.outcome is not None
    assert down.outcome.outputs["ValohaiNotificationDelivery"] == "queued"
    # Nothing reached Valohai before it came back: the first requests it saw are the
    # redeliveries, each accepted at once.
    for event_type in ("queue_address.registered", "setup.created"):
        assert [a.status for a in down.attempts(event_type)] == [202]


def test_after_a_moment_down_the_retries_deliver_during_the_launch(
    scenarios: dict[str, Scenario],
) -> None:
    brief = scenarios["down for a moment"]
    assert brief.outcome is not None
    assert brief.outcome.outputs["ValohaiNotificationDelivery"] == "delivered"


def test_refusals_and_a_slow_answer_are_retried_and_a_late_acceptance_is_not_doubled(
    scenarios: dict[str, Scenario],
) -> None:
    registered = "queue_address.registered"
    assert [a.status for a in scenarios["500 for 3 calls"].attempts(registered)] == [
        500,
        500,
        500,
        202,
    ]
    assert [a.status for a in scenarios["429 for 2 calls"].attempts(registered)] == [429, 429, 202]
    # The slow request is answered after the function gave up on it and sent it again; the
    # second was accepted, the first then answered as the duplicate it is.
    slow = eventually(
        lambda: attempts if len(attempts := scenarios["slow"].attempts(registered)) == 2 else None,
        what="the answer to the slow request",
    )
    assert [(a.status, a.outcome) for a in slow] == [(202, "accepted"), (200, "duplicate")]
    for name in ("500 for 3 calls", "429 for 2 calls", "slow"):
        outcome = scenarios[name].outcome
        assert outcome is not None
        assert outcome.outputs["ValohaiNotificationDelivery"] == "delivered"
