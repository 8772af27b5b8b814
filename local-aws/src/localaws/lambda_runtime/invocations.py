"""Invocations: synchronous, asynchronous (with Lambda's retries and dead-letter queue), and the
handler's logs published to CloudWatch Logs."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.logs.models import logs_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from localaws.locking import BACKEND_LOCK, unlocked

from . import roles
from .common import (
    ASYNC_RETRY_DELAYS,
    INIT_TIMEOUT_SECONDS,
    InvocationResult,
    InvocationType,
    _now_ms,
    _stopping,
)
from .environments import _concurrency, _Environment, _Exited, _Line, _pool, _Worker

_LOG = logging.getLogger(__name__)


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
        target = environment.dead_letter_arn
        if target:
            with BACKEND_LOCK:
                refused = environment.role_arn and roles.denial(
                    environment.role_arn,
                    environment.function_name,
                    "sns:Publish" if target.split(":")[2] == "sns" else "sqs:SendMessage",
                    target,
                )
                if refused:  # Lambda drops the event (the DeadLetterErrors metric counts it)
                    _LOG.warning("Event %s not dead-lettered: %s", request_id, refused)
                else:
                    _dead_letter(target, event, request_id, result)
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
