"""Lambda functions executed without Docker: the function's uploaded code runs in a subprocess.

moto 5.2.5 runs function code only in Docker (`LambdaFunction._invoke_lambda`). `install()`
replaces the seam every caller inside moto goes through, `LambdaFunction.invoke` (the Invoke API,
SNS, S3 notifications, CloudWatch Logs subscriptions, custom resources), and adds what moto does
not do: Lambda targets of EventBridge rules, SQS event source mappings that poll like Lambda's
(batches, visibility timeout, redrive to the queue's DLQ, FIFO groups in order), asynchronous
invocations with retries and the function's dead-letter queue, and reserved concurrency (over it
a synchronous call is throttled; an asynchronous event or an SQS batch waits for a free
environment, as Lambda's queue holds it). The local CloudFormation engine calls `invoke()` directly.

An execution environment is a process of `lambda_bootstrap.py` under the Python of the function's
runtime (`python3.13` -> a python3.13 on PATH or under ~/.pyenv/versions, else this interpreter),
started with `-I -S` so that no site-packages of the server leak in. Its `sys.path` is what
Lambda's is: the function's code, its layers, then a runtime directory holding boto3, botocore and
their pure-Python dependencies copied from this environment once ("boto3 comes with the runtime",
after the function's code so that a bundled boto3 wins). Environments are kept warm for reuse,
as Lambda does, for `keep_warm_seconds` (0 starts a fresh process for every invocation).
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import copy
import functools
import hashlib
import importlib.metadata
import inspect
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import EventSourceMapping, LambdaBackend, LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.awslambda.utils import get_backend
from moto.events import models as events_models
from moto.events.utils import EventTemplateParser
from moto.logs.models import logs_backends
from moto.s3 import notifications as s3_notifications
from moto.sns.models import sns_backends
from moto.sqs.exceptions import QueueDoesNotExist, ReceiptHandleIsInvalid
from moto.sqs.models import sqs_backends

from valohai_hybrid.localaws.config import get_config
from valohai_hybrid.localaws.locking import BACKEND_LOCK, unlocked

_LOG = logging.getLogger(__name__)

InvocationType = Literal["RequestResponse", "Event", "DryRun"]

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
# What Lambda's Python runtimes ship besides the standard library.
RUNTIME_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
DEFAULT_KEEP_WARM_SECONDS = 300.0
MAX_IDLE_ENVIRONMENTS = 16
INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit for the init phase
LOG_TAIL_BYTES = 4096  # what Invoke returns with LogType=Tail
# Lambda retries a failed asynchronous invocation after about one and two minutes; locally the
# same two retries happen after one and two seconds.
ASYNC_RETRY_DELAYS = (1.0, 2.0)
SQS_POLL_SECONDS = 1
# A queued invocation also looks at the clock this often (the server may be stopping).
SLOT_RECHECK_SECONDS = 1.0
# An idle environment exits by itself this long after the pool would have retired it: a backstop
# for a server that went away without stopping it, far enough from the pool's own limit that the
# pool never hands out an environment that is about to exit.
_IDLE_EXIT_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class InvocationResult:
    """What Lambda's Invoke API returns, plus the invocation's log text."""

    status_code: int  # 200 RequestResponse, 202 Event, 204 DryRun
    payload: bytes
    function_error: str | None  # "Unhandled" when the function failed, as in X-Amz-Function-Error
    logs: str
    duration_ms: float
    request_id: str

    @property
    def log_result(self) -> str:
        """The last 4 KB of the logs, base64: the X-Amz-Log-Result header for LogType=Tail."""
        return base64.b64encode(self.logs.encode()[-LOG_TAIL_BYTES:]).decode()


class FunctionNotRunnable(LambdaClientError):
    """The function cannot run locally (not a Python zip function, or no code)."""

    code = 502

    def __init__(self, message: str) -> None:
        super().__init__("InvalidRuntimeException", message)


class Throttled(LambdaClientError):
    """A synchronous invocation while the function's reserved concurrency is all in use."""

    code = 429

    def __init__(self, function_name: str, limit: int) -> None:
        super().__init__(
            "TooManyRequestsException",
            f"Rate Exceeded. Function {function_name} already runs {limit} invocations, its "
            "reserved concurrency (ReservedFunctionConcurrentInvocationLimitExceeded).",
        )


def invoke(
    fn: LambdaFunction,
    event: Any,
    *,
    invocation_type: InvocationType = "RequestResponse",
) -> InvocationResult:
    """Invoke `fn` (a moto `LambdaFunction`, of any version) with `event`, as Lambda would.

    RequestResponse waits for the handler; Event returns 202 at once and runs the function in a
    background thread with Lambda's retries and dead-letter queue; DryRun only checks that the
    function can run. Raises `FunctionNotRunnable` before running anything when it cannot.
    """
    if invocation_type not in ("RequestResponse", "Event", "DryRun"):
        raise ValueError(
            f"unknown invocation type {invocation_type!r}: use RequestResponse, Event or DryRun"
        )
    environment = _Environment.of(fn)
    request_id = str(uuid.uuid4())
    if invocation_type == "DryRun":
        return InvocationResult(204, b"", None, "", 0.0, request_id)
    if invocation_type == "Event":
        threading.Thread(
            target=_run_async,
            args=(environment, event, request_id),
            name=f"lambda-async-{fn.function_name}",
            daemon=True,
        ).start()
        return InvocationResult(202, b"", None, "", 0.0, request_id)
    with _concurrency.slot(environment, wait=False):
        return _execute(environment, event, request_id)


def install(*, keep_warm_seconds: float = DEFAULT_KEEP_WARM_SECONDS) -> None:
    """Make moto run Lambda functions locally; call before the server serves. Idempotent.

    `keep_warm_seconds`: how long an idle execution environment is kept for reuse (0: never).
    """
    _pool.open(keep_warm_seconds)
    if _patches:
        return
    _stopping.clear()
    _patch(LambdaFunction, "invoke", _method(_invoke_method))
    _patch(LambdaFunction, "__init__", _method(_init_method))
    _patch(LambdaFunction, "update_configuration", _method(_update_configuration_method))
    _patch(LambdaFunction, "get_configuration", _method(_get_configuration_method))
    _patch(
        LambdaBackend, "create_event_source_mapping", _method(_create_event_source_mapping_method)
    )
    _patch(events_models.Rule, "send_to_targets", _method(_send_to_targets_method))
    # Callers that pass no invocation type but invoke asynchronously in AWS.
    for owner, name in (
        (LambdaBackend, "send_sns_message"),
        (LambdaBackend, "send_log_event"),
        (LambdaResponse, "invoke_async"),
        (s3_notifications, "_invoke_awslambda"),
    ):
        _patch(owner, name, _asynchronous)


def uninstall() -> None:
    """Restore stock moto; stop every execution environment and SQS poller (server stop)."""
    _stopping.set()
    while _patches:
        owner, name, original = _patches.pop()
        setattr(owner, name, original)
    _pool.close()


def is_installed() -> bool:
    return bool(_patches)


# --- patching moto ----------------------------------------------------------------------------

_patches: list[tuple[Any, str, Any]] = []
_stopping = threading.Event()
# The invocation type of calls that do not say: moto's internal callers pass no headers.
_default_invocation_type: contextvars.ContextVar[str] = contextvars.ContextVar(
    "lambda_default_invocation_type", default="RequestResponse"
)


def _patch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """Replace `owner.name` (which must be defined there: the seam moto 5.2.5 has)."""
    original = vars(owner)[name]
    _patches.append((owner, name, original))
    setattr(owner, name, wrap(original))


def _method(function: Callable[..., Any]) -> Callable[[Any], Any]:
    """Patch with `function(self, original, *args)`."""
    return lambda original: functools.partialmethod(function, original)


def _asynchronous(original: Callable[..., Any]) -> Callable[..., Any]:
    """Run `original` with Event as the invocation type of the functions it invokes."""

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _default_invocation_type.set("Event")
        try:
            return original(*args, **kwargs)
        finally:
            _default_invocation_type.reset(token)

    return wrapper


def _invoke_method(
    self: LambdaFunction,
    original: Callable[..., Any],
    body: str | bytes | None,
    request_headers: Any,
    response_headers: dict[str, Any],
) -> bytes:
    """`LambdaFunction.invoke`, which the Invoke API and moto's internal callers go through."""
    headers = {str(k).lower(): v for k, v in dict(request_headers or {}).items()}
    invocation_type = headers.get("x-amz-invocation-type") or _default_invocation_type.get()
    try:
        event = json.loads(body) if body else {}
    except ValueError as exc:
        raise LambdaClientError(
            "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
        ) from exc
    result = invoke(self, event, invocation_type=cast(InvocationType, invocation_type))
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    if invocation_type == "RequestResponse":
        response_headers["x-amz-log-result"] = result.log_result
        response_headers["x-amz-executed-version"] = str(self.version)
    return result.payload


# Function settings moto drops and the executor needs: the log group, where failed asynchronous
# events go. Kept on the function and shown by GetFunctionConfiguration.
_KEPT_SETTINGS = ("LoggingConfig", "DeadLetterConfig")
_SETTINGS = "localaws_settings"


def _init_method(
    self: LambdaFunction, original: Callable[..., Any], *args: Any, **kwargs: Any
) -> None:
    original(self, *args, **kwargs)
    spec = inspect.signature(original).bind(self, *args, **kwargs).arguments["spec"]
    setattr(self, _SETTINGS, {key: spec[key] for key in _KEPT_SETTINGS if spec.get(key)})


def _update_configuration_method(
    self: LambdaFunction, original: Callable[..., Any], updates: dict[str, Any]
) -> dict[str, Any]:
    settings = getattr(self, _SETTINGS, {})
    settings.update({key: updates[key] for key in _KEPT_SETTINGS if key in updates})
    setattr(self, _SETTINGS, settings)
    return original(self, updates)  # type: ignore[no-any-return]


def _get_configuration_method(
    self: LambdaFunction, original: Callable[..., Any], *args: Any, **kwargs: Any
) -> dict[str, Any]:
    configuration: dict[str, Any] = original(self, *args, **kwargs)
    configuration.update(getattr(self, _SETTINGS, {}))
    return configuration


def _create_event_source_mapping_method(
    self: LambdaBackend, original: Callable[..., Any], spec: dict[str, Any]
) -> EventSourceMapping:
    """SQS sources are polled as Lambda does, instead of moto's call inside SendMessage."""
    mapping: EventSourceMapping = original(self, spec)
    _, _, service, region, account, name = mapping.event_source_arn.split(":")
    if service == "sqs":
        source = sqs_backends[account][region].queues.get(name)
        if source is not None:
            source.lambda_event_source_mappings.pop(mapping.function_arn, None)
        threading.Thread(
            target=_poll_sqs, args=(mapping,), name=f"lambda-sqs-{mapping.uuid}", daemon=True
        ).start()
    return mapping


def _send_to_targets_method(
    self: Any,
    original: Callable[..., Any],
    original_event: dict[str, Any],
    transform_input: bool = True,
) -> None:
    """EventBridge rules: moto has no Lambda targets; EventBridge invokes them asynchronously."""
    lambda_targets = [t for t in self.targets if t["Arn"].split(":")[2] == "lambda"]
    if lambda_targets and self.event_pattern.matches_event(original_event):
        for target in lambda_targets:
            if "Input" in target:
                event = json.loads(target["Input"])
            elif transform_input and "InputTransformer" in target:
                transformer = target["InputTransformer"]
                event = EventTemplateParser.parse(
                    input_template=transformer.get("InputTemplate"),
                    input_paths_map=transformer.get("InputPathsMap", {}),
                    event=cast(Any, original_event),
                )
            else:
                event = dict(original_event)
            _, _, _, region, account, *_ = target["Arn"].split(":")
            try:
                fn = get_backend(account, region).get_function(target["Arn"])
                invoke(fn, event, invocation_type="Event")
            except LambdaClientError as exc:  # EventBridge drops what it cannot deliver
                _LOG.warning("Rule %s cannot invoke %s: %s", self.name, target["Arn"], exc)
    if len(lambda_targets) < len(self.targets):
        others = copy.copy(self)
        others.targets = [t for t in self.targets if t not in lambda_targets]
        original(others, original_event, transform_input)


# --- execution environments -------------------------------------------------------------------


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
        runtime_dir = str(_runtime_dir(cache / "runtime"))
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
        )


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


def _runtime_dir(root: Path) -> Path:
    """boto3 and its pure-Python dependencies, copied from this environment once."""
    key, distributions = _runtime_distributions()
    target = root / key
    if not target.is_dir():
        with _staging(root, target) as staging:
            for distribution in distributions:
                for file in distribution.files or ():
                    if file.parts[0] == ".." or "__pycache__" in file.parts:
                        continue  # console scripts; bytecode of this interpreter
                    destination = staging / file
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(Path(str(distribution.locate_file(file))), destination)
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
    from valohai_hybrid.localaws.cloudformation.custom_resources import routes

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
            env=dict(environment.variables, AWS_LAMBDA_LOG_STREAM_NAME=self.log_stream),
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
        self._close_stdin()

    def stop(self) -> None:
        """End of input makes the bootstrap exit; kill it if it does not."""
        self._close_stdin()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_stdin(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            assert self.process.stdin is not None
            self.process.stdin.close()


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
        for worker in retired:
            worker.stop()
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
        for stale in retired:
            stale.stop()

    def close(self) -> None:
        """Stop every environment, busy ones too; later ones are not kept."""
        with self._lock:
            self._open = False
            idle, busy = self._idle, list(self._busy)
            self._idle, self._busy = [], set()
        for worker in busy:
            worker.kill()
        for worker in idle:
            worker.stop()


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


# --- invocations ------------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Outcome:
    payload: bytes
    failed: bool
    status: str = ""  # REPORT's Status: timeout or error, when the environment was lost
    reusable: bool = True


def _failure(error_type: str, message: str, status: str) -> _Outcome:
    payload = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return _Outcome(payload, failed=True, status=status, reusable=False)


def _execute(environment: _Environment, event: Any, request_id: str) -> InvocationResult:
    """Run one invocation in an execution environment and record its logs."""
    lines: list[_Line] = []
    with unlocked():  # the handler calls back into the server: let its requests through
        outcome, worker, duration_ms = _run_in_worker(environment, event, request_id, lines)
    with BACKEND_LOCK:
        _publish_logs(environment, worker.log_stream, lines)
    return InvocationResult(
        status_code=200,
        payload=outcome.payload,
        function_error="Unhandled" if outcome.failed else None,
        logs="".join(f"{line.text}\n" for line in lines),
        duration_ms=duration_ms,
        request_id=request_id,
    )


def _run_in_worker(
    environment: _Environment, event: Any, request_id: str, lines: list[_Line]
) -> tuple[_Outcome, _Worker, float]:
    worker = _pool.take(environment)
    outcome = _Outcome(b"", failed=True, reusable=False)
    try:
        init_ms: float | None = None
        init_failure: _Outcome | None = None
        if not worker.initialised:
            init_ms, init_failure = _initialise(worker, lines)
        started = time.monotonic()
        lines.append(
            _Line(_now_ms(), f"START RequestId: {request_id} Version: {environment.version}")
        )
        outcome = init_failure or _run_handler(worker, event, request_id, lines)
        duration_ms = (time.monotonic() - started) * 1000
        report = [
            f"REPORT RequestId: {request_id}",
            f"Duration: {duration_ms:.2f} ms",
            f"Billed Duration: {math.ceil(duration_ms)} ms",
            f"Memory Size: {environment.memory_mb} MB",
        ]
        if (memory := worker.max_memory_mb()) is not None:
            report.append(f"Max Memory Used: {memory} MB")
        if init_ms is not None:
            report.append(f"Init Duration: {init_ms:.2f} ms")
        if outcome.status:
            report.append(f"Status: {outcome.status}")
        lines += [
            _Line(_now_ms(), f"END RequestId: {request_id}"),
            _Line(_now_ms(), "\t".join(report)),
        ]
    finally:
        _pool.give_back(worker, outcome.reusable)
    return outcome, worker, duration_ms


def _initialise(worker: _Worker, lines: list[_Line]) -> tuple[float | None, _Outcome | None]:
    """Wait for a new environment's init phase: (its duration, or the failure to report)."""
    lines.append(
        _Line(_now_ms(), f"INIT_START Runtime Version: python:{worker.environment.python_version}")
    )
    try:
        message = worker.receive(time.monotonic() + INIT_TIMEOUT_SECONDS, lines)
    except _Exited as exc:
        return None, _failure("Runtime.ExitError", f"Runtime exited with error: {exc}", "error")
    if message is None:
        worker.kill()
        text = f"Init phase timed out after {INIT_TIMEOUT_SECONDS:.2f} seconds"
        return None, _failure("Sandbox.Timedout", text, "timeout")
    init = message["init"]
    if "error" in init:  # the bootstrap has logged it and exits
        return None, _Outcome(json.dumps(init["error"]).encode(), True, "error", reusable=False)
    worker.initialised = True
    return float(init["duration_ms"]), None


def _run_handler(worker: _Worker, event: Any, request_id: str, lines: list[_Line]) -> _Outcome:
    timeout = worker.environment.timeout_seconds
    deadline = time.monotonic() + timeout
    worker.send(
        {
            "request_id": request_id,
            "deadline_ms": _now_ms() + int(timeout * 1000),
            "invoked_function_arn": worker.environment.function_arn,
            "event": event,
        }
    )
    try:
        answer = worker.receive(deadline, lines)
    except _Exited as exc:
        message = f"RequestId: {request_id} Error: Runtime exited with error: {exc}"
        lines.append(_Line(_now_ms(), message))
        return _failure("Runtime.ExitError", message, "error")
    if answer is None:
        worker.kill()
        now = datetime.now(UTC)
        text = f"Task timed out after {timeout:.2f} seconds"
        lines.append(
            _Line(
                _now_ms(),
                f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}Z {request_id} {text}",
            )
        )
        return _failure("Sandbox.Timedout", f"RequestId: {request_id} Error: {text}", "timeout")
    if "error" in answer:
        return _Outcome(json.dumps(answer["error"]).encode(), failed=True)
    return _Outcome(answer["payload"].encode(), failed=False)


def _publish_logs(environment: _Environment, stream: str, lines: list[_Line]) -> None:
    """Write the invocation's lines to CloudWatch Logs, in order, as Lambda does."""
    backend = logs_backends[environment.account_id][environment.region]
    backend.ensure_log_group(environment.log_group)
    backend.ensure_log_stream(environment.log_group, stream)
    events, latest = [], 0
    for line in lines:  # output read before START by another thread may carry an earlier time
        latest = max(latest, line.timestamp_ms)
        events.append({"timestamp": latest, "message": line.text})
    backend.put_log_events(environment.log_group, stream, events)


def _queued(environment: _Environment, event: Any, request_id: str) -> InvocationResult | None:
    """Run once a slot of the function's reserved concurrency is free; None if the server
    stopped first."""
    with _concurrency.slot(environment, wait=True) as free:
        return _execute(environment, event, request_id) if free else None


def _run_async(environment: _Environment, event: Any, request_id: str) -> None:
    """An Event invocation: retried like Lambda's asynchronous queue, then dead-lettered."""
    try:
        result = _queued(environment, event, request_id)
        for delay in ASYNC_RETRY_DELAYS[: environment.retry_attempts]:
            if result is None or result.function_error is None or _stopping.wait(delay):
                return
            result = _queued(environment, event, request_id)
        if result is None or result.function_error is None:
            return
        _LOG.warning(
            "Asynchronous invocation %s of %s failed after %d attempts: %s",
            request_id,
            environment.function_name,
            environment.retry_attempts + 1,
            result.payload.decode(errors="replace"),
        )
        if environment.dead_letter_arn:
            with BACKEND_LOCK:
                _dead_letter(environment.dead_letter_arn, event, request_id, result)
    except Exception:
        _LOG.exception(
            "Asynchronous invocation %s of %s broke", request_id, environment.function_arn
        )


def _dead_letter(arn: str, event: Any, request_id: str, result: InvocationResult) -> None:
    """Send a failed event to the function's DeadLetterConfig target (an SQS queue or SNS topic)."""
    _, _, service, region, account, name = arn.split(":")
    message = json.loads(result.payload).get("errorMessage", "")
    attributes = {"RequestID": request_id, "ErrorCode": "200", "ErrorMessage": message}
    kinds = {"RequestID": "String", "ErrorCode": "Number", "ErrorMessage": "String"}
    if service == "sqs":
        sqs_backends[account][region].send_message(
            name,
            json.dumps(event),
            message_attributes={
                k: {"DataType": kinds[k], "StringValue": v} for k, v in attributes.items()
            },
        )
    elif service == "sns":
        sns_backends[account][region].publish(
            json.dumps(event),
            arn=arn,
            message_attributes={k: {"Type": kinds[k], "Value": v} for k, v in attributes.items()},
        )
    else:
        _LOG.warning("Dead-letter target %s is neither an SQS queue nor an SNS topic", arn)


# --- SQS event source mappings ----------------------------------------------------------------


def _poll_sqs(mapping: EventSourceMapping) -> None:
    """Lambda's SQS poller for one mapping, until the mapping is deleted or moto is reset."""
    while not _stopping.is_set() and _still_mapped(mapping):
        try:
            if mapping.enabled:
                _deliver_sqs_batch(mapping)
            else:
                _stopping.wait(SQS_POLL_SECONDS)
        except Exception:
            _LOG.exception("SQS event source mapping %s failed", mapping.uuid)
            _stopping.wait(SQS_POLL_SECONDS)


def _still_mapped(mapping: EventSourceMapping) -> bool:
    with BACKEND_LOCK:
        backend = get_backend(mapping.account_id, mapping.region)
        return backend.get_event_source_mapping(mapping.uuid) is mapping


def _deliver_sqs_batch(mapping: EventSourceMapping) -> None:
    """Receive a batch, invoke the function with it, delete what it processed.

    A failed batch stays in flight until the queue's visibility timeout, then is received again
    (and moved to the queue's dead-letter queue by its redrive policy), as in Lambda.
    """
    queue_arn = mapping.event_source_arn
    _, _, _, region, account, name = queue_arn.split(":")
    sqs = sqs_backends[account][region]
    # Short polls under the lock, waits outside it: moto's long poll would hold the server.
    with BACKEND_LOCK:
        try:
            source = sqs.get_queue(name)
        except QueueDoesNotExist:
            source = None
        if source is not None:
            _release_timed_out(source)
            messages = sqs.receive_message(
                name, mapping.batch_size, 0, int(source.attributes["VisibilityTimeout"])
            )
        else:
            messages = []
        if messages:
            fn = get_backend(mapping.account_id, mapping.region).get_function(mapping.function_arn)
            event = {"Records": [_sqs_record(m, queue_arn, region) for m in messages]}
            environment = _Environment.of(fn)
    if not messages:
        _stopping.wait(SQS_POLL_SECONDS)
        return
    result = _queued(environment, event, str(uuid.uuid4()))
    if result is None or result.function_error:
        return
    failed = _batch_item_failures(mapping, result.payload, [m.id for m in messages])
    with BACKEND_LOCK:
        for message in messages:
            if message.id not in failed and message.receipt_handle:
                with contextlib.suppress(ReceiptHandleIsInvalid):
                    sqs.delete_message(name, message.receipt_handle)


def _release_timed_out(queue: Any) -> None:
    """Forget the in-flight state of messages whose visibility timeout has passed.

    moto's receive_message skips a FIFO group while one of its messages is in flight, but
    releases timed-out messages one at a time as it meets them: of a failed batch that times
    out together, the group's first message is skipped (its later ones still count as in
    flight) and the last is received first, out of order. Released beforehand, the group is
    received from its first message, as SQS does.
    """
    for message in [m for m in queue.pending_messages if m.visible]:
        queue.pending_messages.discard(message)


def _batch_item_failures(mapping: EventSourceMapping, payload: bytes, ids: list[str]) -> set[str]:
    """The messages a ReportBatchItemFailures function reported; an unreadable report fails all."""
    if "ReportBatchItemFailures" not in (mapping.function_response_types or []):
        return set()
    try:
        response = json.loads(payload) or {}
        return {item["itemIdentifier"] for item in response.get("batchItemFailures") or []}
    except (ValueError, TypeError, KeyError, AttributeError):
        return set(ids)


def _sqs_record(message: Any, queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": message.sender_id,
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if message.group_id:
        attributes |= {
            "MessageGroupId": message.group_id,
            "MessageDeduplicationId": message.deduplication_id,
            "SequenceNumber": message.sequence_number,
        }
    record = {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {
            name: {
                "dataType": value["DataType"],
                "stringListValues": [],
                "binaryListValues": [],
                **{
                    key[0].lower() + key[1:]: value[key]
                    for key in ("StringValue", "BinaryValue")
                    if key in value
                },
            }
            for name, value in message.message_attributes.items()
        },
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.message_attributes:
        record["md5OfMessageAttributes"] = message.attribute_md5
    return record
