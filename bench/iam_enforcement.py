"""What IAM enforcement costs a Workers launch on the local AWS: a warm launch with enforcement
on vs off (side by side, alternating, in the same server), the first launches after the server
starts (two servers: one enforcing from the start, one not), and how many authorization
decisions one launch asks for (and how many of them reach the engine, the rest being cached).

Writes bench/results/iam_enforcement.json.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.lifecycle import BenchmarkFailure
from bench.local_platform import WORKERS_PRODUCT, LocalPlatform, Timed, local_platform
from bench.machine import context, median, say, summary, write

#: Warm launches per mode and server (each launch is terminated before the next).
RUNS = 8
#: Issue 12: a warm launch with enforcement on takes at most this many times one without.
TARGET_RATIO = 1.25


def _enforce(platform: LocalPlatform, on: bool) -> None:
    platform.aws.control("iam-enforcement", {"enforce": on})


def _engine(platform: LocalPlatform) -> dict[str, int]:
    stats: dict[str, int] = platform.aws.control("iam-engine")
    return stats


@dataclass(frozen=True)
class Launch:
    """One Workers launch (terminated after): its timing, what the engine did for the launch,
    and the decisions (accesses judged) of the launch and of the launch and termination."""

    timed: Timed
    engine: dict[str, int]
    decisions: int
    decisions_with_termination: int


def _launch(platform: LocalPlatform, key_pair: str) -> Launch:
    before = _engine(platform)
    launched = platform.launch(WORKERS_PRODUCT, platform.workers_parameters(key_pair))
    after = _engine(platform)
    if not launched.outcome.succeeded:
        raise BenchmarkFailure(f"a Workers launch failed: {'; '.join(launched.outcome.errors)}")
    decisions = _decisions(platform, launched)
    (terminated,) = platform.terminate_many([launched.outcome])
    if not terminated.outcome.succeeded:
        raise BenchmarkFailure(f"a termination failed: {'; '.join(terminated.outcome.errors)}")
    return Launch(
        launched,
        {key: after[key] - before[key] for key in after},
        decisions,
        _decisions(platform, launched),
    )


def _decisions(platform: LocalPlatform, launched: Timed) -> int:
    """The accesses the launch's stacks were judged on so far (each one a decision)."""
    assert launched.outcome.stack_id is not None
    stack = launched.outcome.stack_id.split("/")[1]
    return sum(stack in a["Purpose"] for a in platform.aws.control("accesses"))


def _server(enforce_from_start: bool) -> dict[str, Any]:
    """A new server and platform: the IAM launch and the first Workers launch in the given
    mode, then warm launches alternating off and on."""
    with tempfile.TemporaryDirectory() as state, local_platform(Path(state)) as platform:
        _enforce(platform, enforce_from_start)
        iam_seconds = platform.iam().seconds
        key_pair = platform.key_pair()
        first = _launch(platform, key_pair)
        warm: dict[str, list[Launch]] = {"off": [], "on": []}
        for number in range(RUNS):
            order = (False, True) if number % 2 == 0 else (True, False)
            for on in order:
                _enforce(platform, on)
                warm["on" if on else "off"].append(_launch(platform, key_pair))
        enforced = warm["on"]
        return {
            "enforcing_from_start": enforce_from_start,
            "first_iam_launch_seconds": iam_seconds,
            "first_workers_launch_seconds": first.timed.seconds,
            "first_workers_launch_engine": first.engine,
            "warm_launch_seconds": {
                mode: summary([one.timed.seconds for one in launches])
                for mode, launches in warm.items()
            },
            "decisions_per_warm_launch": summary([float(one.decisions) for one in enforced]),
            "decisions_per_warm_launch_and_termination": summary(
                [float(one.decisions_with_termination) for one in enforced]
            ),
            "engine_per_warm_launch": {
                key: median(float(one.engine[key]) for one in enforced)
                for key in enforced[0].engine
            },
        }


def main() -> int:
    started = context()
    say(f"iam_enforcement: two servers, {RUNS} warm Workers launches per mode on each")
    servers = {"off": _server(False), "on": _server(True)}
    # Each server's warm median per mode, then the median over both servers.
    warm_off = median(s["warm_launch_seconds"]["off"]["median"] for s in servers.values())
    warm_on = median(s["warm_launch_seconds"]["on"]["median"] for s in servers.values())
    results = {
        "description": (
            "Workers launches through Service Catalog on the local AWS (seconds from the end "
            "user's request to the record being final), IAM enforcement on vs off; warm "
            "launches alternate the two modes in the same server"
        ),
        "target_ratio": TARGET_RATIO,
        "warm_launch_median_seconds": {"off": warm_off, "on": warm_on},
        "warm_ratio": warm_on / warm_off,
        "first_workers_launch_seconds": {
            mode: server["first_workers_launch_seconds"] for mode, server in servers.items()
        },
        "first_iam_launch_seconds": {
            mode: server["first_iam_launch_seconds"] for mode, server in servers.items()
        },
        "decisions_per_warm_launch": servers["on"]["decisions_per_warm_launch"],
        "decisions_per_warm_launch_and_termination": servers["on"][
            "decisions_per_warm_launch_and_termination"
        ],
        "servers": servers,
    }
    write("iam_enforcement", results, started)
    say(
        f"  warm launch {warm_off:.3f} s off, {warm_on:.3f} s on ({warm_on / warm_off:.2f} x, "
        f"target <= {TARGET_RATIO} x); first Workers launch "
        f"{servers['off']['first_workers_launch_seconds']:.2f} s off, "
        f"{servers['on']['first_workers_launch_seconds']:.2f} s on; "
        f"{servers['on']['decisions_per_warm_launch']['median']:.0f} decisions per launch"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
