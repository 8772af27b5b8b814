"""Execution environments: a function's code unpacked with its runtime, the worker processes
that run it (kept warm in a pool), and reserved concurrency."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import io
import json
import logging
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.awslambda.utils import get_backend

from localaws.config import get_config
from localaws.iam import execution_roles
from localaws.iam.authorization import enforcing

from .common import (
    _IDLE_EXIT_GRACE_SECONDS,
    _SETTINGS,
    BOOTSTRAP,
    DEFAULT_KEEP_WARM_SECONDS,
    MAX_IDLE_ENVIRONMENTS,
    RUNTIME_DISTRIBUTIONS,
    SLOT_RECHECK_SECONDS,
    FunctionNotRunnable,
    RoleNotAssumable,
    Throttled,
    _now_ms,
    _stopping,
)
from .roles import check_role

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Environment:
    """A function version as it runs: two invocations with equal environments share processes."""

    account_id: str
    region: str
    function_name: str
    function_arn: str
    version: str
    python: str
    python_version: str
    task_root: str
    sys_path: tuple[str, ...]
    variables: tuple[tuple[str, str], ...]
    memory_mb: int
    timeout_seconds: float
    log_group: str
    retry_attempts: int = field(compare=False)
    dead_letter_arn: str | None = field(compare=False)
    #: ReservedConcurrentExecutions, None when the function has none.
    reserved_concurrency: int | None = field(compare=False)
    #: The execution role whose session the environment runs as; None while IAM enforcement
    #: is off (the administrator's keys, judged by nothing).
    role_arn: str | None = None

    @classmethod
    def of(cls, fn: LambdaFunction) -> _Environment:
        runtime = fn.run_time or ""
        match = re.fullmatch(r"python(3\.\d+)", runtime)
        if fn.package_type != "Zip" or match is None:
            raise FunctionNotRunnable(
                f"Function {fn.function_name} has PackageType {fn.package_type} and Runtime "
                f"{runtime or 'none'}; the local AWS runs Python zip functions only. Give it a "
                "pythonX.Y runtime and a zip package."
            )
        if not fn.code_bytes:
            raise FunctionNotRunnable(
                f"Function {fn.function_name} has no code: moto could not read its package "
                f"{json.dumps(fn.code)}. Upload the zip (ZipFile, or the S3Bucket/S3Key of an "
                "existing object) and update the function code."
            )
        config = get_config()
        cache = config.state_dir / "lambda"
        python, python_version = _interpreter(match.group(1))
        task_root = str(_extracted(fn.code_bytes, cache / "code", f"function {fn.function_name}"))
        layer_paths: list[str] = []
        for layer in fn.layers:
            layer_version = get_backend(fn.account_id, fn.region).layers_versions_by_arn(
                layer["Arn"]
            )
            if layer_version is None:
                raise FunctionNotRunnable(
                    f"Function {fn.function_name} uses layer {layer['Arn']}, which does not "
                    "exist. Publish the layer version or remove it from the function."
                )
            layer_root = _extracted(layer_version.code_bytes, cache / "code", layer["Arn"])
            layer_paths += [
                f"{layer_root}/python/lib/python{python_version}/site-packages",
                f"{layer_root}/python",
            ]
        runtime_dir = str(_runtime_dir(cache / "runtime", python, python_version))
        settings = getattr(fn, _SETTINGS, {})
        log_group = settings.get("LoggingConfig", {}).get("LogGroup") or fn.logs_group_name
        variables = {
            "PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_ENDPOINT_URL": config.endpoint_url,
            # Never the developer's own AWS configuration.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        if config.ca_bundle is not None:
            # SSL_CERT_FILE for the ssl module (urllib, http.client); boto3 reads AWS_CA_BUNDLE.
            variables["SSL_CERT_FILE"] = variables["AWS_CA_BUNDLE"] = str(config.ca_bundle)
        variables.update({str(k): str(v) for k, v in fn.environment_vars.items()})
        variables.update(
            {  # Lambda's reserved variables: a function cannot set them.
                "_HANDLER": fn.handler or "",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
                "AWS_REGION": fn.region,
                "AWS_DEFAULT_REGION": fn.region,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "LAMBDA_TASK_ROOT": task_root,
                "LAMBDA_RUNTIME_DIR": runtime_dir,
                "TZ": ":UTC",
            }
        )
        role_arn = fn.role if enforcing() else None
        check_role(role_arn)
        invoke_configs = [c.config for c in fn.event_invoke_config]
        retries = int(invoke_configs[0].get("MaximumRetryAttempts", 2)) if invoke_configs else 2
        return cls(
            account_id=fn.account_id,
            region=fn.region,
            function_name=fn.function_name,
            function_arn=fn.function_arn,
            version=str(fn.version),
            python=python,
            python_version=python_version,
            task_root=task_root,
            sys_path=(task_root, *layer_paths, runtime_dir),
            variables=tuple(sorted(variables.items())),
            memory_mb=int(fn.memory_size),
            timeout_seconds=float(fn.timeout),
            log_group=log_group,
            retry_attempts=retries,
            dead_letter_arn=settings.get("DeadLetterConfig", {}).get("TargetArn"),
            reserved_concurrency=(
                None if fn.reserved_concurrency in (None, "") else int(fn.reserved_concurrency)
            ),
            role_arn=role_arn,
        )

    def credentials(self) -> dict[str, str]:
        """The keys a new execution environment gets: a session of the execution role that
        Lambda starts for it, named after the function, when IAM is enforced."""
        if self.role_arn is None:
            return {}
        session = execution_roles.assume(self.role_arn, self.function_name, self.region)
        if session is None:  # the trust policy changed since the invocation was accepted
            raise RoleNotAssumable()
        return {
            "AWS_ACCESS_KEY_ID": session.access_key_id,
            "AWS_SECRET_ACCESS_KEY": session.secret_access_key,
            "AWS_SESSION_TOKEN": session.session_token,
        }


@functools.cache
def _interpreter(version: str) -> tuple[str, str]:
    """The Python for a runtime version: on PATH, under pyenv, else this one (logged)."""
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    if version == current:
        return sys.executable, current
    oldest = _runtime_minimum_python()
    if tuple(map(int, version.split("."))) < oldest:
        _LOG.warning(
            "Lambda runtime python%s: the boto3 given to functions needs Python %d.%d or later, "
            "so functions with this runtime run on Python %s (%s)",
            version,
            *oldest,
            current,
            sys.executable,
        )
        return sys.executable, current
    candidates = [found] if (found := shutil.which(f"python{version}")) else []
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(
        (str(p) for p in pyenv.glob(f"versions/{version}*/bin/python{version}")),
        key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parents[1].name)],
        reverse=True,
    )
    for candidate in candidates:
        if _python_version(candidate) == version:
            _LOG.info("Lambda runtime python%s runs on %s", version, candidate)
            return candidate, version
    _LOG.warning(
        "Lambda runtime python%s: no python%s on PATH or under %s/versions, so functions with "
        "this runtime run on Python %s (%s)",
        version,
        version,
        pyenv,
        current,
        sys.executable,
    )
    return sys.executable, current


def _python_version(executable: str) -> str | None:
    """The version an interpreter reports, or None if it does not run (e.g. a pyenv shim)."""
    try:
        completed = subprocess.run(
            [executable, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def _extracted(code: bytes, root: Path, what: str) -> Path:
    """The zip's content, in a directory named by its SHA-256 and extracted only once."""
    target = root / hashlib.sha256(code).hexdigest()
    if not target.is_dir():
        with _staging(root, target) as staging:
            try:
                with zipfile.ZipFile(io.BytesIO(code)) as archive:
                    archive.extractall(staging)
            except zipfile.BadZipFile as exc:
                raise FunctionNotRunnable(
                    f"The code of {what} is not a zip archive ({exc}). Upload a zip file."
                ) from exc
    return target


@functools.cache
def _runtime_distributions() -> tuple[str, list[importlib.metadata.Distribution]]:
    """The distributions the runtime directory holds, and a key naming their versions."""
    distributions = [importlib.metadata.distribution(name) for name in RUNTIME_DISTRIBUTIONS]
    key = "\n".join(f"{d.metadata['Name']}=={d.version}" for d in distributions)
    return hashlib.sha256(key.encode()).hexdigest()[:16], distributions


def _runtime_minimum_python() -> tuple[int, ...]:
    """The oldest Python every runtime package supports (their Requires-Python lower bounds)."""
    _, distributions = _runtime_distributions()
    bounds = [
        (int(major), int(minor))
        for d in distributions
        for major, minor in re.findall(r">=\s*(\d+)\.(\d+)", d.metadata["Requires-Python"] or "")
    ]
    return max(bounds, default=(3, 0))


def _runtime_dir(root: Path, python: str, version: str) -> Path:
    """boto3 and its pure-Python dependencies, copied from this environment once per Python
    version and compiled by that Python, as Lambda's runtimes ship them: otherwise the first
    environments, often started together by one launch, each compile the same modules."""
    key, distributions = _runtime_distributions()
    target = root / f"{key}-python{version}"
    if not target.is_dir():
        with _staging(root, target) as staging:
            for distribution in distributions:
                for file in distribution.files or ():
                    if file.parts[0] == ".." or "__pycache__" in file.parts:
                        continue  # console scripts; bytecode of this interpreter
                    destination = staging / file
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(Path(str(distribution.locate_file(file))), destination)
            # Bytecode only saves time: a module it cannot compile is compiled at import, as now.
            subprocess.run(
                [python, "-I", "-m", "compileall", "-q", str(staging)],
                check=False,
                stdout=subprocess.DEVNULL,
                timeout=120,
            )
    return target


@contextmanager
def _staging(root: Path, target: Path) -> Iterator[Path]:
    """A scratch directory renamed to `target` when filled: others never see half of it."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    try:
        yield staging
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class _Line:
    timestamp_ms: int
    text: str


class _Exited(Exception):
    """The environment's process ended before answering."""


def _routes(region: str) -> dict[str, tuple[str, int]]:
    """The AWS host names the local AWS serves itself, for an environment in `region`."""
    from localaws.cloudformation.provisioners.custom import routes

    return routes(region)


class _Worker:
    """One execution environment: a bootstrap process and a thread reading its output."""

    def __init__(self, environment: _Environment, idle_exit_seconds: float) -> None:
        self.environment = environment
        self.log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[{environment.version}]{uuid.uuid4().hex}"
        self.initialised = False
        self.idle_since = 0.0
        self._marker = f"\x1e{uuid.uuid4().hex}:"
        self._output: queue.Queue[_Line | dict[str, Any] | None] = queue.Queue()
        self.process = subprocess.Popen(
            [environment.python, "-I", "-S", "-u", str(BOOTSTRAP)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=environment.task_root,
            env=dict(
                environment.variables,
                AWS_LAMBDA_LOG_STREAM_NAME=self.log_stream,
                **environment.credentials(),
            ),
            start_new_session=True,  # a process group of its own: a timeout kills its children
        )
        threading.Thread(target=self._read, name="lambda-output", daemon=True).start()
        self.send(
            {
                "marker": self._marker,
                "sys_path": list(environment.sys_path),
                "idle_exit_seconds": idle_exit_seconds,
                "routes": _routes(environment.region),
            }
        )

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            timestamp = _now_ms()
            text, found, message = (
                raw.decode("utf-8", "replace").rstrip("\n").partition(self._marker)
            )
            if text or not found:
                self._output.put(_Line(timestamp, text))
            if found:
                self._output.put(json.loads(message))
        self.process.stdout.close()
        self._output.put(None)

    def send(self, message: dict[str, Any]) -> None:
        """Write one line; the bootstrap is sent the next line only after it answered."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # it has exited: `receive` reports that

    def receive(self, deadline: float, lines: list[_Line]) -> dict[str, Any] | None:
        """The next protocol message, collecting log lines; None at the (monotonic) deadline."""
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self._output.get(timeout=remaining)
            except queue.Empty:
                return None
            if item is None:
                code = self.process.wait()
                raise _Exited(
                    f"signal: {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
                )
            if isinstance(item, _Line):
                lines.append(item)
            else:
                return item
        return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def max_memory_mb(self) -> int | None:
        """Peak resident memory of the process so far (Linux), for the REPORT line."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return math.ceil(int(found.group(1)) / 1024) if found else None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.close_input()

    def close_input(self) -> None:
        """End of input: the bootstrap exits once its current invocation is over."""
        with contextlib.suppress(BrokenPipeError):
            assert self.process.stdin is not None
            self.process.stdin.close()


def _stop_all(workers: list[_Worker], grace: float = 2.0) -> None:
    """End every worker's input at once, then give them `grace` seconds in all to exit (one
    after the other, sixteen idle environments would hold a server's stop for half a minute)."""
    for worker in workers:
        worker.close_input()
    deadline = time.monotonic() + grace
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()


class _Pool:
    """Execution environments kept warm between invocations, like Lambda's."""

    def __init__(self) -> None:
        self.keep_warm_seconds = DEFAULT_KEEP_WARM_SECONDS
        self._open = True
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()

    def open(self, keep_warm_seconds: float) -> None:
        with self._lock:
            self.keep_warm_seconds = keep_warm_seconds
            self._open = True

    def take(self, environment: _Environment) -> _Worker:
        """A warm environment for `environment`, else a new one (whose init is pending)."""
        retired: list[_Worker] = []
        chosen: _Worker | None = None
        with self._lock:
            now = time.monotonic()
            for worker in reversed(self._idle):
                if (
                    not worker.alive()
                    or now - worker.idle_since > self.keep_warm_seconds
                    or (  # the function's code or configuration changed
                        worker.environment.function_arn == environment.function_arn
                        and worker.environment != environment
                    )
                ):
                    retired.append(worker)
                elif chosen is None and worker.environment == environment:
                    chosen = worker
            self._idle = [w for w in self._idle if w is not chosen and w not in retired]
            idle_exit_seconds = self.keep_warm_seconds + _IDLE_EXIT_GRACE_SECONDS
        _stop_all(retired)
        if chosen is None:
            chosen = _Worker(environment, idle_exit_seconds)
        with self._lock:
            self._busy.add(chosen)
        return chosen

    def give_back(self, worker: _Worker, reusable: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            if self._open and reusable and self.keep_warm_seconds > 0 and worker.alive():
                worker.idle_since = time.monotonic()
                self._idle.append(worker)
                retired = self._idle[:-MAX_IDLE_ENVIRONMENTS]
                self._idle = self._idle[-MAX_IDLE_ENVIRONMENTS:]
            else:
                retired = [worker]
        _stop_all(retired)

    def close(self) -> None:
        """Stop every environment, busy ones too; later ones are not kept."""
        with self._lock:
            self._open = False
            idle, busy = self._idle, list(self._busy)
            self._idle, self._busy = [], set()
        for worker in busy:
            worker.kill()
        _stop_all(idle)


_pool = _Pool()


class _Concurrency:
    """How many invocations of each function run now, held under its reserved concurrency."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running: dict[tuple[str, str, str], int] = {}

    @contextmanager
    def slot(self, environment: _Environment, *, wait: bool) -> Iterator[bool]:
        """Hold one of the function's slots; yields False if the server stops while waiting.

        Over the limit: `wait` waits for a slot (asynchronous events, SQS batches), otherwise
        raises `Throttled` (a synchronous call).
        """
        key = (environment.account_id, environment.region, environment.function_name)
        limit = environment.reserved_concurrency
        taken = False
        with self._changed:
            while limit is not None and self._running.get(key, 0) >= limit:
                if not wait:
                    raise Throttled(environment.function_name, limit)
                if _stopping.is_set():
                    break
                self._changed.wait(SLOT_RECHECK_SECONDS)
            else:
                self._running[key] = self._running.get(key, 0) + 1
                taken = True
        if not taken:
            yield False
            return
        try:
            yield True
        finally:
            with self._changed:
                self._running[key] -= 1
                self._changed.notify_all()


_concurrency = _Concurrency()
