"""`make bench`: run every benchmark and write bench/results/."""

from __future__ import annotations

import sys

from bench import cold_init, package_size


def main() -> int:
    status = 0
    for benchmark in (package_size, cold_init):
        status |= benchmark.main()
    return status


if __name__ == "__main__":
    sys.exit(main())
