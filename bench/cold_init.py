"""Cold init of each function against the floor: `import boto3` and the same boto3 clients.

Cold init = the CPU time a fresh interpreter spends importing the handler module and running
its module-level setup (Logger, clients, providers), measured inside the process so interpreter
start-up (the same for both) is left out; CPU time rather than wall time, so that other work on
the machine does not blur the comparison. The floor of a function is `import boto3` plus the
boto3 clients that function creates at init (a bare function doing the same AWS work); the
single-client floor `import boto3; boto3.client("secretsmanager")` is reported as well.

Each handler is imported from its deployment package, built by functions/Makefile for the
interpreter running this benchmark (standing in for the Lambda runtime, bytecode included as
shipped) and placed in front of this environment's boto3, as in Lambda; nothing writes
bytecode during the runs. Runs are interleaved; medians of RUNS runs; target ratio 1.15.
Writes bench/results/cold_init.json and prints a table.

    python -m bench.cold_init
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.package_size import FUNCTIONS, RESULTS, build_all

RUNS = 15
TARGET_RATIO = 1.15
#: The boto3 clients each handler module creates when it is loaded.
CLIENTS = {
    "RedisSecretFunction": ("secretsmanager",),
    "QueueAddressFunction": ("secretsmanager", "ssm"),
    "NotificationFunction": ("secretsmanager",),
    "StackStatusFunction": ("secretsmanager", "cloudformation"),
    "RedeliveryFunction": ("secretsmanager",),
}
PROBE = """
import sys, time
sys.path.insert(0, {package!r})
started = time.process_time()
{code}
print(time.process_time() - started)
"""
#: What the handlers read at import; fake, since nothing is sent anywhere during init.
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "REDELIVERY_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/valohai-redelivery",
}


def floor_code(clients: tuple[str, ...]) -> str:
    return "import boto3\n" + "\n".join(f"boto3.client({name!r})" for name in clients)


def measure(code: str, package: Path) -> float:
    """CPU seconds a fresh interpreter spends running `code` with `package` first on sys.path."""
    probe = PROBE.format(package=str(package), code=code)
    env = {"PATH": os.environ.get("PATH", ""), **ENVIRONMENT}
    output = subprocess.run(
        [sys.executable, "-I", "-B", "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


def main() -> int:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory() as scratch:
        packages = build_all(Path(scratch), PYTHON_VERSION=version, BYTECODE_PYTHON=sys.executable)
        probes = {
            f"floor:{','.join(c)}": (floor_code(c), packages["RedisSecretFunction"])
            for c in set(CLIENTS.values())
        }
        for name, module in FUNCTIONS.items():
            probes[name] = (f"import valohai_cr.handlers.{module}", packages[name])
        samples: dict[str, list[float]] = {name: [] for name in probes}
        for _ in range(RUNS):
            for name, (code, package) in probes.items():
                samples[name].append(measure(code, package))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    floors = {name: medians[f"floor:{','.join(CLIENTS[name])}"] for name in FUNCTIONS}
    single = medians["floor:secretsmanager"]
    ratios = {name: medians[name] / floors[name] for name in FUNCTIONS}
    results = {
        "python": platform.python_version(),
        "runs": RUNS,
        "target_ratio": TARGET_RATIO,
        "functions": {
            name: {
                "median_seconds": medians[name],
                "floor_clients": list(CLIENTS[name]),
                "floor_median_seconds": floors[name],
                "ratio": ratios[name],
                "ratio_to_single_client_floor": medians[name] / single,
            }
            for name in FUNCTIONS
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cold_init.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"cold init, median of {RUNS} (Python {platform.python_version()})")
    print("floor: import boto3 and create the same clients; vs 1 client: just secretsmanager")
    print(f"{'function':<22}{'init s':>8}{'floor s':>9}{'ratio':>7}{'vs 1 client':>13}")
    for name in FUNCTIONS:
        flag = "" if ratios[name] <= TARGET_RATIO else "  OVER"
        print(
            f"{name:<22}{medians[name]:>8.3f}{floors[name]:>9.3f}"
            f"{ratios[name]:>7.2f}{medians[name] / single:>13.2f}{flag}"
        )
    return 0 if all(ratio <= TARGET_RATIO for ratio in ratios.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
