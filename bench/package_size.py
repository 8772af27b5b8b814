"""Zipped size of each function's deployment package, built exactly as `sam build` builds it.

Runs functions/Makefile (the `build-<LogicalId>` targets SAM calls) into temporary
directories (for python3.13 with its bytecode, as publishing builds them when the machine has
that Python), zips each result as SAM would, and compares it with the 1 MB budget. Writes
bench/results/package_size.json and prints a table.

    python -m bench.package_size
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.machine import ROOT, context, lambda_python, python_version, write

#: Logical id in the platform template -> handler module under valohai_cr.handlers.
FUNCTIONS = {
    "RedisSecretFunction": "redis_secret",
    "QueueAddressFunction": "queue_address",
    "NotificationFunction": "notification",
    "StackStatusFunction": "stack_status",
    "RedeliveryFunction": "redelivery",
}
BUDGET_BYTES = 1_000_000


def build(function: str, directory: Path, **variables: str) -> Path:
    """`make build-<function>` with ARTIFACTS_DIR=directory, as SAM runs it; `variables`
    override the Makefile's (PYTHON_VERSION, BYTECODE_PYTHON, ...)."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = {"ARTIFACTS_DIR": str(directory), "PYTHON": sys.executable, **variables}
    subprocess.run(
        ["make", "--silent", "-C", str(ROOT / "functions"), f"build-{function}"]
        + [f"{name}={value}" for name, value in settings.items()],
        check=True,
    )
    return directory


def build_all(root: Path, **variables: str) -> dict[str, Path]:
    """Every function's package, built side by side (each is a separate pip run)."""
    with ThreadPoolExecutor(max_workers=len(FUNCTIONS)) as pool:
        futures = {name: pool.submit(build, name, root / name, **variables) for name in FUNCTIONS}
        return {name: future.result() for name, future in futures.items()}


def zipped_size(directory: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.tell()


def main() -> int:
    started = context()
    python = lambda_python()
    version = ".".join(python_version(python).split(".")[:2])
    with tempfile.TemporaryDirectory() as scratch:
        packages = build_all(Path(scratch), PYTHON_VERSION=version, BYTECODE_PYTHON=python)
        sizes = {name: zipped_size(directory) for name, directory in packages.items()}
    write(
        "package_size",
        {
            "budget_bytes": BUDGET_BYTES,
            "bytecode_for_python": version,
            "functions": {
                name: {"zipped_bytes": size, "within_budget": size <= BUDGET_BYTES}
                for name, size in sizes.items()
            },
        },
        started,
    )
    print(f"{'function':<24}{'zipped':>12}  budget {BUDGET_BYTES / 1e6:.1f} MB")
    for name, size in sizes.items():
        print(f"{name:<24}{size / 1e3:>9.0f} kB  {'ok' if size <= BUDGET_BYTES else 'OVER'}")
    return 0 if all(size <= BUDGET_BYTES for size in sizes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
