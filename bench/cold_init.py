"""Cold init of each function against the floor: `import boto3` and the same boto3 clients.

Cold init = the CPU time a fresh interpreter spends importing the handler module and running
its module-level setup (Logger, clients, providers), measured inside the process so interpreter
start-up (the same for both) is left out; CPU time rather than wall time, so that other work on
the machine does not blur the comparison. The floor of a function is `import boto3` plus the
boto3 clients that function creates at init (a bare function doing the same AWS work); the
single-client floor `import boto3; boto3.client("secretsmanager")` is reported as well.

Measured on python3.13, the functions' Lambda runtime, when the machine has one (else on the
Python running the benchmark; the result names the version). Each probe runs as Lambda runs a
function: `-I -S` (no site-packages), the function's deployment package first on sys.path
(built by functions/Makefile for that Python, bytecode included as shipped), then a runtime
directory with boto3 and its pure-Python dependencies copied from this environment (boto3
comes with the runtime), compiled once before measuring; nothing writes bytecode during the
runs. Runs are interleaved; medians of RUNS runs; target ratio 1.15.
Writes bench/results/cold_init.json and prints a table.

    python -m bench.cold_init
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from localaws.lambda_runtime import RUNTIME_DISTRIBUTIONS

from bench.machine import context, lambda_python, python_version, write
from bench.package_size import FUNCTIONS, build_all

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
sys.path[:0] = [{package!r}, {runtime!r}]
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
    "REDELIVERY_KEY_SECRET_ARN": (
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redelivery-key-AbCdEf"
    ),
    "REDELIVERY_DEAD_LETTER_QUEUE_URL": (
        "https://sqs.eu-west-1.amazonaws.com/123456789012/valohai-redelivery-dlq"
    ),
    "REDELIVERY_MAX_RECEIVE_COUNT": "120",
    "REDELIVERY_INTERVAL_SECONDS": "720",
}


def floor_code(clients: tuple[str, ...]) -> str:
    return "import boto3\n" + "\n".join(f"boto3.client({name!r})" for name in clients)


def runtime_dir(target: Path, python: str) -> Path:
    """What Lambda's Python runtime has besides the standard library: boto3, botocore and
    their pure-Python dependencies (this environment's copies), compiled for `python`."""
    for name in RUNTIME_DISTRIBUTIONS:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # console scripts; bytecode of this interpreter
            destination = target / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(str(distribution.locate_file(file))), destination)
    subprocess.run([python, "-I", "-m", "compileall", "-q", "-j", "0", str(target)], check=True)
    return target


def measure(python: str, code: str, package: Path, runtime: Path) -> float:
    """CPU seconds a fresh interpreter spends running `code` with `package` first on sys.path."""
    probe = PROBE.format(package=str(package), runtime=str(runtime), code=code)
    env = {"PATH": os.environ.get("PATH", ""), **ENVIRONMENT}
    output = subprocess.run(
        [python, "-I", "-S", "-B", "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


def main() -> int:
    started = context()
    python = lambda_python()
    version = python_version(python)
    major_minor = ".".join(version.split(".")[:2])
    with tempfile.TemporaryDirectory() as scratch:
        packages = build_all(
            Path(scratch) / "packages", PYTHON_VERSION=major_minor, BYTECODE_PYTHON=python
        )
        runtime = runtime_dir(Path(scratch) / "runtime", python)
        probes = {
            f"floor:{','.join(c)}": (floor_code(c), packages["RedisSecretFunction"])
            for c in set(CLIENTS.values())
        }
        for name, module in FUNCTIONS.items():
            probes[name] = (f"import valohai_cr.handlers.{module}", packages[name])
        samples: dict[str, list[float]] = {name: [] for name in probes}
        for _ in range(RUNS):
            for name, (code, package) in probes.items():
                samples[name].append(measure(python, code, package, runtime))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    floors = {name: medians[f"floor:{','.join(CLIENTS[name])}"] for name in FUNCTIONS}
    single = medians["floor:secretsmanager"]
    ratios = {name: medians[name] / floors[name] for name in FUNCTIONS}
    write(
        "cold_init",
        {
            "python": version,
            "lambda_runtime_python": major_minor == "3.13",
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
        },
        started,
    )
    print(f"cold init, median of {RUNS} (Python {version}, {python})")
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
