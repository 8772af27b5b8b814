"""Many Workers launches at once in one account and region: 1, 5 and 20, each size several
times (interleaved, so that the machine's drift touches every size alike).

Every launch has its own Suffix, RedisSecretName and QueueAddress. For each batch: all
launches succeed, then all are terminated at once, and Valohai (the stand-in) must have
received every event of every setup exactly once: queue_address.registered, setup.created,
setup.deleted, queue_address.deregistered and the DELETE_COMPLETE forwarded as
stack.status_changed. A redelivered copy of an accepted event is counted (harmless: same
idempotency key), a missing or doubled event is a failure. A batch ends when every setup's
token secret is deleted too, the last thing a terminated setup does.

The target is "20 at once take at most 4 x one launch". Two passes measure it:

- CPU-bound, on the platform the other benchmarks share: on the local AWS a launch is all CPU
  (the server, the functions and the stand-in share this machine's cores, and nothing waits on
  a network), so N launches take at least N x (one launch's CPU seconds) / cores even without
  any contention. The result gives that floor and the CPU seconds each batch used (the local
  AWS's, its functions' and the stand-in's, over the batch), to tell contention from plain work.
- With modelled waits, on a local AWS of its own started with `--stabilize`: CloudFormation
  waits MODELLED_WAITS for each instance it creates or deletes, as it waits for an instance to
  run or to terminate in AWS. A modelled wait, not a measurement of AWS (real instances usually
  take longer, which would only lower the ratio); what this pass shows is whether anything in
  the product or the local platform serialises launches that wait at the same time.

Writes bench/results/scale.json.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.lifecycle import BenchmarkFailure
from bench.local_platform import REGION, WORKERS_PRODUCT, LocalPlatform, local_platform
from bench.machine import context, cpu_seconds, median, say, write

SIZES = (1, 5, 20)
REPEATS = 3
TARGET_RATIO = 4.0
#: The pass with waits: one Workers launch has one instance (the queue), created and deleted.
MODELLED_WAITS = {"AWS::EC2::Instance": 10.0}
#: Each of its batches waits twice MODELLED_WAITS: fewer repeats keep the benchmark short.
MODELLED_REPEATS = 2
#: What Valohai hears about one setup launched and terminated.
EVENT_TYPES = (
    "queue_address.registered",
    "setup.created",
    "setup.deleted",
    "queue_address.deregistered",
    "stack.status_changed",
)
#: The stack-status forwarder reports a deletion after the record is final.
SETTLE_SECONDS = 60.0


def _delivered_once(platform: LocalPlatform, stacks: list[str]) -> dict[str, int]:
    """Wait until every setup's events arrived; fail on a missing or doubled one. Returns the
    number of redelivered copies the stand-in answered as duplicates."""
    wanted = set(stacks)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        counts = Counter(
            (event.body["stack"]["id"], event.type)
            for event in platform.standin.receiver.events()
            if event.body["stack"]["id"] in wanted
        )
        doubled = {key: n for key, n in counts.items() if n > 1}
        if doubled:
            raise BenchmarkFailure(f"events delivered more than once: {doubled}")
        missing = [(s, t) for s in stacks for t in EVENT_TYPES if (s, t) not in counts]
        if not missing:
            break
        if time.monotonic() > deadline:
            raise BenchmarkFailure(f"{len(missing)} events never arrived, e.g. {missing[:3]}")
        time.sleep(0.2)
    _tokens_deleted(platform, wanted, deadline)
    keys = {
        event.idempotency_key
        for event in platform.standin.receiver.events()
        if event.body["stack"]["id"] in wanted
    }
    attempts = [a for a in platform.standin.receiver.attempts() if a.idempotency_key in keys]
    return {
        "events": len(keys),
        "duplicate_deliveries": sum(a.outcome == "duplicate" for a in attempts),
        "refused_attempts": sum(a.status >= 300 for a in attempts),
    }


def _tokens_deleted(platform: LocalPlatform, stacks: set[str], deadline: float) -> None:
    """Wait for the last work of a terminated setup, the deletion of its setup token (queued
    behind its final event): the next batch must not pay for this one's clean-up."""
    secrets = platform.aws.client("secretsmanager", REGION)
    while True:
        left = [
            secret["Name"]
            for page in secrets.get_paginator("list_secrets").paginate()
            for secret in page["SecretList"]
            for tag in secret.get("Tags", [])
            if tag["Key"] == "valohai-hybrid:stack-id" and tag["Value"] in stacks
        ]
        if not left:
            return
        if time.monotonic() > deadline:
            raise BenchmarkFailure(f"{len(left)} setup tokens never deleted, e.g. {left[0]}")
        time.sleep(0.2)


def _batch(platform: LocalPlatform, key_pair: str, size: int) -> dict[str, Any]:
    parameters = [platform.workers_parameters(key_pair) for _ in range(size)]
    cpu = cpu_seconds(platform.aws.pid)
    launched = platform.launch_many(WORKERS_PRODUCT, parameters)
    launch_cpu = cpu_seconds(platform.aws.pid) - cpu
    failed = [t.outcome.errors for t in launched if not t.outcome.succeeded]
    if failed:
        raise BenchmarkFailure(f"{len(failed)} of {size} launches failed, e.g. {failed[0]}")
    outcomes = [t.outcome for t in launched]
    cpu = cpu_seconds(platform.aws.pid)
    terminated = platform.terminate_many(outcomes)
    terminate_cpu = cpu_seconds(platform.aws.pid) - cpu
    if not all(t.outcome.succeeded for t in terminated):
        raise BenchmarkFailure(f"terminating {size} launches failed")
    stacks = [str(o.stack_id) for o in outcomes]
    return {
        "launch_seconds": max(t.seconds for t in launched),
        "launch_cpu_seconds": launch_cpu,
        "each_launch_seconds": sorted(t.seconds for t in launched),
        "terminate_seconds": max(t.seconds for t in terminated),
        "terminate_cpu_seconds": terminate_cpu,
        "notifications": _delivered_once(platform, stacks),
    }


def _pass(platform: LocalPlatform, repeats: int, *, cpu_floor: bool) -> dict[str, Any]:
    """Every size `repeats` times, interleaved; medians and ratios to one launch, and the CPU
    floors where a launch is all CPU work (while launches wait, the CPU seconds over a batch
    are mostly the benchmark's looks at the records and the server answering them)."""
    key_pair = platform.key_pair()
    _batch(platform, key_pair, 1)  # the functions' environments start: not measured
    batches: dict[int, list[dict[str, Any]]] = {size: [] for size in SIZES}
    for _ in range(repeats):
        for size in SIZES:
            batches[size].append(_batch(platform, key_pair, size))
    cores = os.cpu_count() or 1
    sizes: dict[str, Any] = {}
    for size, runs in batches.items():
        sizes[str(size)] = {
            "launch_seconds": median(r["launch_seconds"] for r in runs),
            "launch_cpu_seconds": median(r["launch_cpu_seconds"] for r in runs),
            "terminate_seconds": median(r["terminate_seconds"] for r in runs),
            "terminate_cpu_seconds": median(r["terminate_cpu_seconds"] for r in runs),
            "duplicate_deliveries": sum(r["notifications"]["duplicate_deliveries"] for r in runs),
            "events_delivered_once": sum(r["notifications"]["events"] for r in runs),
            "runs": runs,
        }
    one = sizes["1"]
    for size, figures in zip(SIZES, sizes.values(), strict=True):
        figures["launch_ratio_to_one"] = figures["launch_seconds"] / one["launch_seconds"]
        figures["terminate_ratio_to_one"] = figures["terminate_seconds"] / one["terminate_seconds"]
        if not cpu_floor:
            continue
        # The least time N launches can take: N x one launch's CPU seconds spread perfectly
        # over the cores (one launch alone already uses several: the server, a function and
        # the stand-in work at once).
        figures["cpu_floor_seconds"] = one["launch_cpu_seconds"] * size / cores
        figures["launch_seconds_over_cpu_floor"] = (
            figures["launch_seconds"] / figures["cpu_floor_seconds"]
        )
        figures["cpu_floor_ratio_to_one"] = figures["cpu_floor_seconds"] / one["launch_seconds"]
    largest = sizes[str(SIZES[-1])]
    for label, figures in sizes.items():
        floor = figures.get("cpu_floor_ratio_to_one")
        say(
            f"  {label:>2} at once: launch {figures['launch_seconds']:.2f} s "
            f"({figures['launch_ratio_to_one']:.1f} x one"
            + ("" if floor is None else f"; CPU floor {floor:.1f} x")
            + f"), terminate {figures['terminate_seconds']:.2f} s"
        )
    return {
        "repeats": repeats,
        "within_target": largest["launch_ratio_to_one"] <= TARGET_RATIO,
        "sizes": sizes,
    }


def run(platform: LocalPlatform) -> None:
    started = context()
    sizes = ", ".join(map(str, SIZES))
    say(f"scale, CPU-bound: {sizes} Workers launches at once, {REPEATS} times each")
    cpu_bound = _pass(platform, REPEATS, cpu_floor=True)
    waits = ", ".join(f"{kind} {seconds:g} s" for kind, seconds in MODELLED_WAITS.items())
    say(f"scale, modelled waits ({waits}): {sizes} at once, {MODELLED_REPEATS} times each")
    with (
        tempfile.TemporaryDirectory() as state,
        local_platform(Path(state), stabilize=MODELLED_WAITS) as waiting,
    ):
        modelled = _pass(waiting, MODELLED_REPEATS, cpu_floor=False)
    write(
        "scale",
        {
            "description": (
                "Workers launches at once through Service Catalog on the local AWS, median of "
                "the batches per size; every launch succeeded and every notification arrived "
                "exactly once. cpu_bound: resources are created at once, so a launch is CPU "
                "work only and its CPU floor bounds the ratio. modelled_waits: CloudFormation "
                "waits the given seconds for each resource of a type it creates or deletes (a "
                "model of AWS's stabilisation waits, not a measurement of AWS); no CPU floor, "
                "as the CPU seconds over a batch include the benchmark's looks at the records "
                "all through the waits."
            ),
            "target_ratio": TARGET_RATIO,
            "cores": os.cpu_count() or 1,
            "passes": {
                "cpu_bound": {"stabilize_seconds": {}, **cpu_bound},
                "modelled_waits": {"stabilize_seconds": MODELLED_WAITS, **modelled},
            },
        },
        started,
    )
