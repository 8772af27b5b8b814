"""A Workers setup's whole life, several times over: launch, update, terminate through Service
Catalog on the local AWS, timed as the customer admin waits for each record, with where the
launch's time goes; and every custom-resource request of those runs, timed from the event
CloudFormation sent to the response it received (the handler latency).

The update changes RedisPasswordRotationToken (the secret's Update) and NotificationPolicy (the
queue address's and the notification's Update), so each request type of each custom resource
is measured. The first launch also starts the functions' execution environments (cold); it is
reported apart from the medians of the warm runs.

Writes bench/results/launch.json and bench/results/handler_latency.json.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bench.local_platform import WORKERS_PRODUCT, LocalPlatform, Timed
from bench.machine import context, median, say, summary, write
from valohai_hybrid.catalog import Outcome, StackEvents

RUNS = 6
#: crhelper's default wait before answering a Delete, which this product turns off.
CRHELPER_DELETE_SLEEP = 120.0
DELETE_TARGET_SECONDS = 1.0
#: The root stack's own events, among its resources' in the launch's phases.
WHOLE_STACK = "(the whole stack)"


@dataclass(frozen=True)
class Cycle:
    """One setup's life: seconds until each record was final, and the launch's phases."""

    launch_seconds: float
    update_seconds: float
    terminate_seconds: float
    launch_phases: dict[str, dict[str, float]]


class BenchmarkFailure(Exception):
    """The product did not do what was measured (a launch failed): no figure to report."""


def _succeeded(timed: Timed, what: str) -> Outcome:
    if not timed.outcome.succeeded:
        raise BenchmarkFailure(f"{what} failed: {'; '.join(timed.outcome.errors)}")
    return timed.outcome


def launch_phases(platform: LocalPlatform, outcome: Outcome) -> dict[str, dict[str, float]]:
    """Each resource of the root stack: when it began after the launch request, how long it
    took (the stack's own events; nested stacks count as one resource)."""
    servicecatalog = platform.user.client("servicecatalog")
    created: datetime = servicecatalog.describe_record(Id=outcome.record_id)["RecordDetail"][
        "CreatedTime"
    ]
    assert outcome.stack_id is not None
    events = StackEvents(platform.user.client("cloudformation"), outcome.stack_id, created)
    stack_name = outcome.stack_id.split("/")[1]
    began: dict[str, datetime] = {}
    phases: dict[str, dict[str, float]] = {}
    for event in events.poll():
        if "/" in event.resource:
            continue  # inside a nested stack
        name = WHOLE_STACK if event.resource == stack_name else event.resource
        if event.status == "CREATE_IN_PROGRESS":
            began.setdefault(name, event.timestamp)
        elif event.status == "CREATE_COMPLETE" and name in began:
            phases[name] = {
                "start": (began[name] - created).total_seconds(),
                "seconds": (event.timestamp - began[name]).total_seconds(),
            }
    return phases


def handler_latency(platform: LocalPlatform) -> dict[str, dict[str, dict[str, Any]]]:
    """Seconds from request to response of every custom-resource request the local AWS sent,
    by resource type and request type; `first` is the earliest (a cold start for Create)."""
    seen: dict[tuple[str, str], list[float]] = defaultdict(list)
    for response in platform.aws.control("custom-resource-responses"):
        if response["accepted"]:
            seen[(response["resource_type"], response["request_type"])].append(response["seconds"])
    table: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (resource_type, request_type), values in sorted(seen.items()):
        table[resource_type][request_type] = {**summary(values), "first": values[0]}
    return dict(table)


def run(platform: LocalPlatform) -> None:
    started = context()
    say(f"lifecycle: {RUNS} launches, updates and terminations of {WORKERS_PRODUCT}")
    key_pair = platform.key_pair()
    runs: list[Cycle] = []
    for number in range(RUNS):
        launched = platform.launch(WORKERS_PRODUCT, platform.workers_parameters(key_pair))
        workers = _succeeded(launched, "a Workers launch")
        changes = {
            "RedisPasswordRotationToken": f"bench-rotation-{number}",
            "NotificationPolicy": "Required",
        }
        updated = platform.update(workers, changes)
        _succeeded(updated, "an update")
        (terminated,) = platform.terminate_many([workers])
        _succeeded(terminated, "a termination")
        runs.append(
            Cycle(
                launched.seconds,
                updated.seconds,
                terminated.seconds,
                launch_phases(platform, workers),
            )
        )
    cold, warm = runs[0], runs[1:]
    phase_names = sorted({name for r in warm for name in r.launch_phases})
    launch = {
        "description": (
            "Workers product through Service Catalog on the local AWS, from the end user's "
            "request to the record being final (seconds); the first launch starts the "
            "functions cold, the medians are of the warm runs that follow"
        ),
        "publish_seconds": platform.published.timings,
        "iam_launch_seconds": platform.iam().seconds,
        "cold_launch_seconds": cold.launch_seconds,
        "launch_seconds": summary([r.launch_seconds for r in warm]),
        "update_seconds": summary([r.update_seconds for r in warm]),
        "terminate_seconds": summary([r.terminate_seconds for r in warm]),
        "launch_phases_median": {
            name: {
                key: median(r.launch_phases[name][key] for r in warm)
                for key in ("start", "seconds")
            }
            for name in phase_names
        },
        "runs": [asdict(r) for r in runs],
    }
    latency = handler_latency(platform)
    deletes = {kind: requests["Delete"] for kind, requests in latency.items()}
    write("launch", launch, started)
    write(
        "handler_latency",
        {
            "description": (
                "seconds from the event CloudFormation sends to the response it receives, per "
                "custom resource and request type, on the local AWS"
            ),
            "delete_target_seconds": DELETE_TARGET_SECONDS,
            "crhelper_default_delete_sleep_seconds": CRHELPER_DELETE_SLEEP,
            "delete_within_target": all(
                d["median"] <= DELETE_TARGET_SECONDS for d in deletes.values()
            ),
            "resources": latency,
        },
        started,
    )
    say(
        f"  launch {median(r.launch_seconds for r in warm):.2f} s (cold "
        f"{cold.launch_seconds:.2f} s), update {median(r.update_seconds for r in warm):.2f} s, "
        f"terminate {median(r.terminate_seconds for r in warm):.2f} s"
    )
    for kind, requests in latency.items():
        figures = ", ".join(f"{k} {v['median']:.3f} s" for k, v in requests.items())
        say(f"  {kind}: {figures}")
