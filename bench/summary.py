"""bench/results/README.md: one table of every figure against its target, from the JSON files
the benchmarks wrote, then the detail of each. The project README links here.

    python -m bench.summary
"""

from __future__ import annotations

import json
from typing import Any

from bench.machine import RESULTS

TABLE = RESULTS / "README.md"
REQUESTS = ("Create", "Update", "Delete")


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _machine(results: dict[str, Any]) -> str:
    start, end = results["machine"]["start"], results["machine"]["end"]
    load = (start["load_average"]["1m"], end["load_average"]["1m"])
    return (
        f"{start['measured_at']}, {start['cpus']} CPUs, load average (1 min) {load[0]:.2f} at "
        f"the start, {load[1]:.2f} at the end"
    )


def _cold_init(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    functions = results["functions"]
    worst = max(functions.values(), key=lambda f: f["ratio"])["ratio"]
    target = results["target_ratio"]
    rows = [
        f"| 1 | Cold init vs `import boto3` + the same clients (Python {results['python']}) | "
        f"{min(f['ratio'] for f in functions.values()):.2f}-{worst:.2f} x | "
        f"<= {target} x | {_met(worst <= target)} |"
    ]
    detail = [
        f"### 1. Cold init (Python {results['python']}, median of {results['runs']})",
        "",
        f"Measured {_machine(results)}.",
        "",
        "| function | init s | floor s | ratio | vs 1 client |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {f['median_seconds']:.3f} | {f['floor_median_seconds']:.3f} | "
            f"{f['ratio']:.2f} | {f['ratio_to_single_client_floor']:.2f} |"
            for name, f in functions.items()
        ),
    ]
    return rows, detail


def _latency(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    resources = results["resources"]
    target = results["delete_target_seconds"]
    slowest_delete = max(r["Delete"]["median"] for r in resources.values())
    rows = [
        f"| 2 | Handler latency, event to response (slowest median Delete) | "
        f"{slowest_delete:.3f} s | Delete <= {target:g} s (crhelper's default sleeps "
        f"{results['crhelper_default_delete_sleep_seconds']:g} s) | "
        f"{_met(results['delete_within_target'])} |"
    ]
    detail = [
        "### 2. Handler latency on the local AWS (seconds, median / max; first = cold start)",
        "",
        f"Measured {_machine(results)}.",
        "",
        "| custom resource | " + " | ".join(REQUESTS) + " | first Create |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {kind} | "
            + " | ".join(
                f"{r[k]['median']:.3f} / {r[k]['max']:.3f} ({r[k]['runs']})" if k in r else "-"
                for k in REQUESTS
            )
            + f" | {r['Create']['first']:.3f} |"
            for kind, r in resources.items()
        ),
    ]
    return rows, detail


def _package_size(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    sizes = {name: f["zipped_bytes"] for name, f in results["functions"].items()}
    budget = results["budget_bytes"]
    rows = [
        f"| 3 | Deployment package, zipped (largest) | {max(sizes.values()) / 1e3:.0f} kB | "
        f"<= {budget / 1e6:g} MB | {_met(max(sizes.values()) <= budget)} |"
    ]
    detail = [
        "### 3. Package size (zipped, as `sam build` builds it)",
        "",
        "| function | kB |",
        "|---|---:|",
        *(f"| {name} | {size / 1e3:.0f} |" for name, size in sizes.items()),
    ]
    return rows, detail


def _launch(results: dict[str, Any], demo: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    launch = results["launch_seconds"]
    rows = [
        f"| 4 | One Workers launch, request to record SUCCEEDED (warm; cold) | "
        f"{launch['median']:.2f} s; {results['cold_launch_seconds']:.2f} s | - | - |"
    ]
    detail = [
        f"### 4. A launch, and the whole demo (median of {launch['runs']} warm runs)",
        "",
        f"Measured {_machine(results)}.",
        "",
        "Publishing the platform: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in results["publish_seconds"].items())
        + f". IAM product launch {results['iam_launch_seconds']:.2f} s. Workers: launch "
        f"{launch['median']:.2f} s, update {results['update_seconds']['median']:.2f} s, "
        f"terminate {results['terminate_seconds']['median']:.2f} s.",
        "",
        "Where a Workers launch's time goes (root stack resources; nested stacks count as one):",
        "",
        "| resource | starts at s | takes s |",
        "|---|---:|---:|",
        *(
            f"| {name} | {p['start']:.3f} | {p['seconds']:.3f} |"
            for name, p in sorted(
                results["launch_phases_median"].items(), key=lambda item: item[1]["start"]
            )
        ),
    ]
    if demo is not None:
        total = demo["total_seconds"]
        rows.append(
            f"| 4 | `make demo`, whole (median of {total['runs']}) | {total['median']:.1f} s | "
            "- | - |"
        )
        detail += [
            "",
            f"`make demo` by phase (median of {total['runs']} runs, measured {_machine(demo)}):",
            "",
            "| phase | s |",
            "|---|---:|",
            *(f"| {name} | {s:.2f} |" for name, s in demo["phases_median"].items()),
        ]
    return rows, detail


def _waits(modelled: dict[str, Any]) -> str:
    return ", ".join(
        f"{seconds:g} s per {kind.rsplit('::', 1)[-1].lower()}"
        for kind, seconds in modelled["stabilize_seconds"].items()
    )


def _scale_met(passes: dict[str, Any], largest: str, target: float) -> str:
    cpu_bound = passes["cpu_bound"]
    verdict = f"CPU-bound: {_met(cpu_bound['within_target'])}"
    floor = cpu_bound["sizes"][largest]["cpu_floor_ratio_to_one"]
    if floor > target:
        verdict += f" (CPU floor {floor:.1f} x > {target:g} x)"
    return f"with modelled waits: {_met(passes['modelled_waits']['within_target'])}; {verdict}"


def _scale_table(figures: dict[str, Any], *, cpu_floor: bool) -> list[str]:
    """One pass's batches; the CPU floor columns where the CPU seconds are the launches'."""
    floor_head, floor_rule = ("CPU floor s | floor x | over floor | ", "---:|---:|---:|")
    return [
        "| at once | launch s | x one | "
        + (floor_head if cpu_floor else "")
        + "terminate s | events once | duplicate deliveries |",
        "|---:|---:|---:|" + (floor_rule if cpu_floor else "") + "---:|---:|---:|",
        *(
            f"| {n} | {s['launch_seconds']:.2f} | {s['launch_ratio_to_one']:.1f} | "
            + (
                f"{s['cpu_floor_seconds']:.2f} | {s['cpu_floor_ratio_to_one']:.1f} | "
                f"{s['launch_seconds_over_cpu_floor']:.2f} | "
                if cpu_floor
                else ""
            )
            + f"{s['terminate_seconds']:.2f} | {s['events_delivered_once']} | "
            f"{s['duplicate_deliveries']} |"
            for n, s in figures["sizes"].items()
        ),
    ]


def _scale(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    passes = results["passes"]
    cpu_bound, modelled = passes["cpu_bound"], passes["modelled_waits"]
    largest = max(cpu_bound["sizes"], key=int)
    target = results["target_ratio"]
    cpu, waited = cpu_bound["sizes"][largest], modelled["sizes"][largest]
    rows = [
        f"| 5 | {largest} Workers launches at once vs one (all succeeded, every notification "
        f"once) | {cpu['launch_ratio_to_one']:.1f} x CPU-bound (CPU floor "
        f"{cpu['cpu_floor_ratio_to_one']:.1f} x); {waited['launch_ratio_to_one']:.1f} x with a "
        f"modelled wait of {_waits(modelled)} | <= {target:g} x | "
        f"{_scale_met(passes, largest, target)} |"
    ]
    detail = [
        "### 5. Launches at once in one account and region",
        "",
        f"Measured {_machine(results)}. Every launch of both passes succeeded, and the "
        "stand-in received every notification of every setup exactly once (events once; a "
        "duplicate delivery is a redelivered copy it recognised by its idempotency key).",
        "",
        f"CPU-bound (median of {cpu_bound['repeats']} batches per size): the local AWS creates "
        "every resource at once.",
        "",
        *_scale_table(cpu_bound, cpu_floor=True),
        "",
        "Here one warm launch is CPU work from start to end (the server, the functions and the "
        "stand-in share this machine; nothing waits on a network), so N launches cannot take "
        f"less than N x one launch's CPU seconds / {results['cores']} cores (the CPU floor): on "
        "a small machine the ratio to one launch is bounded by it, not by the product. How far "
        "a batch is over its floor is what the launches cost each other: the local AWS server "
        "is one Python process (moto's state under one lock), so its share of the work runs on "
        "one core at a time, and a batch larger than the functions' warm environments starts "
        "new ones (cold starts, as Lambda scales out), which the floor (warm launches) does not "
        "count.",
        "",
        f"With modelled waits (median of {modelled['repeats']} batches per size, fewer because "
        f"every batch waits): the local AWS was started with "
        + ", ".join(
            f"`--stabilize {kind}={seconds:g}`"
            for kind, seconds in modelled["stabilize_seconds"].items()
        )
        + ", so CloudFormation waits that long for each instance it creates or deletes before "
        "the resource is complete, as it waits in AWS for an instance to run or to terminate; "
        "other stacks go on meanwhile.",
        "",
        *_scale_table(modelled, cpu_floor=False),
        "",
        "The wait is a model, not a measurement of AWS: a real instance usually takes longer to "
        "run and to terminate, and a longer wait only lowers the ratio. What this pass shows is "
        "whether anything in the product or in the platform serialises launches that wait: "
        f"{largest} launches at once took "
        f"{waited['launch_seconds'] - modelled['sizes']['1']['launch_seconds']:.2f} s longer "
        "than one (the batch's CPU work on this machine's cores, see above), not one wait per "
        "launch. No CPU floor here: the CPU seconds over a batch include the benchmark's looks "
        "at the records all through the waits, so they do not measure the launches' work.",
    ]
    return rows, detail


def _iam(
    enforcement: dict[str, Any] | None, engine: dict[str, Any] | None
) -> tuple[list[str], list[str]]:
    rows: list[str] = []
    detail: list[str] = []
    if enforcement is not None:
        warm = enforcement["warm_launch_median_seconds"]
        ratio, target = enforcement["warm_ratio"], enforcement["target_ratio"]
        first = enforcement["first_workers_launch_seconds"]
        iam_first = enforcement["first_iam_launch_seconds"]
        decisions = enforcement["decisions_per_warm_launch"]["median"]
        rows.append(
            f"| 7 | Warm Workers launch, IAM enforced vs not (same server, alternating) | "
            f"{warm['on']:.3f} s vs {warm['off']:.3f} s ({ratio:.2f} x) | <= {target:g} x | "
            f"{_met(ratio <= target)} |"
        )
        detail += [
            "### 7. IAM enforcement's cost on a launch",
            "",
            f"Measured {_machine(enforcement)}.",
            "",
            f"- Warm Workers launch: {warm['off']:.3f} s off, {warm['on']:.3f} s on "
            f"(medians of each server's median, {ratio:.2f} x).",
            "- First launches after the server starts (one of each per mode, so noisy): the "
            f"IAM product {iam_first['off']:.2f} s off, {iam_first['on']:.2f} s on (on, the "
            "engine starts in it); then the first Workers launch "
            f"{first['off']:.2f} s off, {first['on']:.2f} s on (the functions start cold in "
            "both; on, every decision is new to the cache).",
            f"- Authorization decisions per warm launch: {decisions:.0f} (each resource "
            "operation's handler permissions, template reads, parameter reads; "
            f"{enforcement['decisions_per_warm_launch_and_termination']['median']:.0f} with "
            "its termination); reaching the engine (not cached): "
            f"{enforcement['servers']['on']['engine_per_warm_launch']['misses']:.0f} in "
            f"{enforcement['servers']['on']['engine_per_warm_launch']['round_trips']:.0f} "
            "round trips.",
        ]
    if engine is not None:
        rows.append(
            f"| 8 | IAM engine: uncached / cached decision, batch of 20 | "
            f"{engine['uncached_decision_median_ms']:.2f} / "
            f"{engine['cached_decision_median_ms']:.3f} / "
            f"{engine['batch_of_20_uncached_median_ms']:.1f} ms | - | - |"
        )
        detail += [
            *([""] if detail else []),
            "### 8. The IAM engine alone (milliseconds)",
            "",
            f"Measured {_machine(engine)}. Start {engine['engine_start_ms']:.0f}, first decision "
            f"{engine['first_decision_ms']:.0f}, uncached median "
            f"{engine['uncached_decision_median_ms']:.2f} (p95 "
            f"{engine['uncached_decision_p95_ms']:.2f}), cached "
            f"{engine['cached_decision_median_ms']:.3f}. An IAM user's S3 GetObject on a running "
            f"server: {engine['server_get_object_same_key_ms']['off']:.1f} off, "
            f"{engine['server_get_object_same_key_ms']['on']:.1f} on (cached), "
            f"{engine['server_get_object_new_key_ms']['on']:.1f} on with a new key each time.",
        ]
    return rows, detail


def render() -> str:
    rows: list[str] = []
    details: list[str] = []
    for name, part in (
        ("cold_init", _cold_init),
        ("handler_latency", _latency),
        ("package_size", _package_size),
    ):
        results = _load(name)
        if results is not None:
            row, detail = part(results)
            rows += row
            details += [*detail, ""]
    launch = _load("launch")
    if launch is not None:
        row, detail = _launch(launch, _load("demo"))
        rows += row
        details += [*detail, ""]
    scale = _load("scale")
    if scale is not None:
        row, detail = _scale(scale)
        rows += row
        details += [*detail, ""]
    cost = _load("cost")
    if cost is not None:
        ours, original = cost["total_usd"]["ours"], cost["total_usd"]["original"]
        rows.append(
            f"| 6 | Monthly list-price cost of one setup vs the original templates' "
            f"([by component](cost.json), {cost['region']}) | ${ours:.2f} vs ${original:.2f} "
            f"({(ours / original - 1) * 100:+.0f} %) | - | - |"
        )
    row, detail = _iam(_load("iam_enforcement"), _load("iam_engine"))
    rows += row
    details += [*detail, ""] if detail else []
    return (
        "\n".join(
            [
                "# Benchmark results",
                "",
                "Written by `make bench` (`python -m bench`). Each figure is a median of several "
                "runs, or a ratio of medians measured side by side in the same run; the JSON files "
                "here hold every run and the machine's load while it was measured.",
                "",
                "| # | what | figure | target | met |",
                "|---|---|---|---|---|",
                *rows,
                "",
                *details,
            ]
        ).rstrip("\n")
        + "\n"
    )


def main() -> int:
    TABLE.write_text(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
