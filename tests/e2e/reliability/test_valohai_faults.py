"""Launches while Valohai misbehaves: down (connections refused) for a moment or for the whole
launch, slower than an attempt may take, answering 500 or 429 (with Retry-After) for a few
calls. Every launch succeeds (NotificationPolicy BestEffort) within the ServiceTimeouts, and
Valohai ends up with each event of the setup exactly once: at once, after retries, or from the
redelivery queue once it is back.

The scenarios run side by side, each with a Valohai of its own, since most of their time is
spent waiting for retries; the whole-launch outage runs in a region of its own from the start
of the suite (conftest.py), as it waits out a redelivery interval.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from localaws.harness import LocalAwsHandle

from tests.support.common import eventually
from tests.support.reliability import (
    LAUNCH_LIMIT,
    LIFE_EVENTS,
    Launcher,
    Scenario,
    delivered_exactly_once,
)
from valohai_hybrid.local.standin import Fault

SCENARIOS = [
    Scenario("down for a moment", down_for=4.0),
    # Longer than one attempt may last (10 s): the function gives up on the attempt and tries
    # again while Valohai is still working on the first.
    Scenario("slow", lambda r: r.inject(Fault(count=1, delay=12))),
    Scenario("500 for 3 calls", lambda r: r.inject(Fault(count=3, status=500))),
    Scenario("429 for 2 calls", lambda r: r.inject(Fault(count=2, status=429, retry_after=2))),
]
WHOLE_LAUNCH = "down for the whole launch"


@pytest.fixture(scope="module")
def scenarios(
    launcher: Launcher,
    local_aws: LocalAwsHandle,
    valohai_down_for_a_whole_launch: Future[Scenario] | None,
) -> Iterator[dict[str, Scenario]]:
    with ThreadPoolExecutor(len(SCENARIOS)) as pool:
        ran = list(pool.map(lambda s: s.run(launcher, local_aws.state_dir), SCENARIOS))
    assert valohai_down_for_a_whole_launch is not None
    ran.append(valohai_down_for_a_whole_launch.result())
    yield {s.name: s for s in ran}
    for scenario in ran[:-1]:
        assert scenario.standin is not None
        scenario.standin.stop()


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS] + [WHOLE_LAUNCH])
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
    down = scenarios[WHOLE_LAUNCH]
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
