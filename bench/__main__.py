"""`make bench`: run the benchmarks, write bench/results/*.json and bench/results/README.md.

    python -m bench                     every benchmark
    python -m bench scale lifecycle     some of them (the table is rewritten from what is there)

Benchmarks are not tests: a figure that misses its target is marked in the table. The exit
status is 1 only when a benchmark could not measure (the product failed, or a launch failed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import (
    cold_init,
    cost,
    demo,
    iam_enforcement,
    iam_engine,
    lifecycle,
    package_size,
    scale,
    summary,
)
from bench.lifecycle import BenchmarkFailure
from bench.local_platform import LocalPlatform, local_platform
from bench.machine import say

STANDALONE: dict[str, Callable[[], int]] = {
    "package_size": package_size.main,
    "cold_init": cold_init.main,
    "cost": lambda: cost.main([]),
    "iam_engine": iam_engine.main,
    # Starts servers of its own: the first launch after a start is one of its figures.
    "iam_enforcement": iam_enforcement.main,
}
#: Benchmarks that share one local AWS with the platform published on it.
ON_LOCAL_PLATFORM: dict[str, Callable[[LocalPlatform], None]] = {
    "lifecycle": lifecycle.run,
    "scale": scale.run,
}
AFTER: dict[str, Callable[[], int]] = {"demo": demo.main}
NAMES = [*STANDALONE, *ON_LOCAL_PLATFORM, *AFTER]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="BENCHMARK", help=", ".join(NAMES))
    chosen = parser.parse_args(argv).names or NAMES
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}: choose from {', '.join(NAMES)}")
    try:
        for name in (n for n in STANDALONE if n in chosen):
            STANDALONE[name]()
        on_platform = [n for n in ON_LOCAL_PLATFORM if n in chosen]
        if on_platform:
            with tempfile.TemporaryDirectory() as state, local_platform(Path(state)) as platform:
                for name in on_platform:
                    ON_LOCAL_PLATFORM[name](platform)
        for name in (n for n in AFTER if n in chosen):
            AFTER[name]()
    except (BenchmarkFailure, subprocess.CalledProcessError) as error:
        say(f"a benchmark could not measure: {error}")
        return 1
    finally:
        summary.main()
        say(f"results: {summary.TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
