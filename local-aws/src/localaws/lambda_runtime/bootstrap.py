"""One Lambda execution environment: the process `environments` starts for a function.

It plays the part of the Python runtime interface client inside Lambda: it imports the handler
(the init phase), then runs one event at a time with a Lambda-like context. It runs under the
function's Python (3.9 or later), with the standard library only, started with `-I -S` so that
nothing from the server's environment leaks in; `sys.path` is exactly what the first line on
stdin says (function code, layers, then the runtime's boto3), as in Lambda.

Protocol, all on the process's own pipes:
- stdin, one JSON object a line: first the set-up (`marker`, `sys_path`, `idle_exit_seconds`,
  `routes`),
  then one invocation a line (`request_id`, `deadline_ms`, `invoked_function_arn`, `event`).
- stdout and stderr (one pipe): the function's log output, and after the init phase and after each
  invocation a line `<marker>{json}`. Because the result travels after the function's own output
  on the same pipe, everything the invocation printed has been read when its result arrives.

`routes` is the environment's view of DNS: AWS host names the local AWS serves itself (such as
CloudFormation's custom-resource response bucket), each resolved to a local address and port, so
the function reaches them under the names AWS gives them, over HTTPS with their own certificate.

The process exits at end of input, after a failed init, or after `idle_exit_seconds` without an
event (a backstop for a server that went away without stopping it).
"""

from __future__ import annotations

import contextlib
import decimal
import importlib
import json
import logging
import os
import select
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

Handler = Callable[[Any, "LambdaContext"], Any]


@contextlib.contextmanager
def route_hosts(routes: Mapping[str, tuple[str, int] | list[Any]]) -> Iterator[None]:
    """Resolve each host in `routes`, on the HTTPS port, to the (address, port) it names.

    Everything that connects by name (http.client, urllib3, ssl's host name check) keeps the
    name, so certificate verification still applies: only where the name leads changes."""
    original = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        route = routes.get(host.lower()) if isinstance(host, str) else None
        if route is not None and port in (443, "443", "https"):
            return original(route[0], route[1], *args, **kwargs)
        return original(host, port, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = original


class LambdaContext:
    """The handler's `context`, with the attributes and methods of Lambda's Python runtime."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        # A string, as in Lambda (it reads the environment variable).
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message: str) -> None:
        sys.stdout.write(message)


class _RequestIdFilter(logging.Filter):
    """Stamps records with the current request id, which Lambda's log format shows."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _configure_logging() -> _RequestIdFilter:
    """A root handler like the one Lambda installs: libraries look for it."""
    request_filter = _RequestIdFilter()
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(request_filter)
    logging.getLogger().addHandler(handler)
    return request_filter


def _emit(marker: bytes, message: dict[str, Any]) -> None:
    """Write one protocol line after flushing whatever the function printed."""
    sys.stdout.flush()
    sys.stderr.flush()
    data = marker + json.dumps(message).encode() + b"\n"
    while data:
        data = data[os.write(1, data) :]


def _error(error_type: str, message: str, stack: list[str], request_id: str) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack,
    }


def _stack(tb: TracebackType | None) -> list[str]:
    """The traceback's frames without this bootstrap's and the import machinery's."""
    internal = (__file__, importlib.__file__)
    frames = [
        frame
        for frame in traceback.extract_tb(tb)
        if frame.filename not in internal and not frame.filename.startswith("<frozen ")
    ]
    return traceback.format_list(frames)


def _log_error(error: dict[str, Any]) -> None:
    """Log the error the way the Lambda runtime does: `[ERROR] Type: message` and the stack."""
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error["stackTrace"]:
        lines += ["Traceback (most recent call last):", *error["stackTrace"]]
    sys.stdout.write("\n".join(line.rstrip("\n") for line in lines) + "\n")


class _InitError(Exception):
    """The init phase failed: Lambda reports it with the first invocation."""

    def __init__(self, error_type: str, message: str, cause: BaseException | None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.cause = cause


def _load_handler(handler_name: str) -> Handler:
    """Import the handler as Lambda does; raise `_InitError` with Lambda's error types."""
    try:
        module_name, function_name = handler_name.rsplit(".", 1)
    except ValueError as exc:
        raise _InitError(
            "Runtime.MalformedHandlerName", f"Bad handler '{handler_name}': {exc}", None
        ) from exc
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}", None
        ) from exc
    except SyntaxError as exc:
        raise _InitError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", exc
        ) from exc
    except Exception as exc:
        raise _InitError(type(exc).__name__, str(exc), exc) from exc
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise _InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
            None,
        )
    return handler  # type: ignore[no-any-return]


def _json_default(value: Any) -> Any:
    # Lambda's serializer writes Decimals (as DynamoDB returns them) as numbers.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _invoke(handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
    request_id = request["request_id"]
    context = LambdaContext(request_id, request["deadline_ms"], request["invoked_function_arn"])
    try:
        result = handler(request["event"], context)
    except Exception as exc:
        error = _error(type(exc).__name__, str(exc), _stack(exc.__traceback__), request_id)
        _log_error(error)
        return {"error": error}
    try:
        return {"payload": json.dumps(result, default=_json_default)}
    except (TypeError, ValueError) as exc:
        error = _error("Runtime.MarshalError", f"Unable to marshal response: {exc}", [], request_id)
        _log_error(error)
        return {"error": error}


def _next_request(idle_exit_seconds: float) -> dict[str, Any] | None:
    readable, _, _ = select.select([sys.stdin.buffer], [], [], idle_exit_seconds)
    if not readable:
        return None
    line = sys.stdin.buffer.readline()
    return json.loads(line) if line else None


def main() -> int:
    setup = json.loads(sys.stdin.buffer.readline())
    with route_hosts(setup.get("routes") or {}):
        return _serve(setup)


def _serve(setup: dict[str, Any]) -> int:
    marker = setup["marker"].encode()
    sys.path[:0] = setup["sys_path"]
    request_filter = _configure_logging()

    started = time.perf_counter()
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except _InitError as exc:
        stack = _stack(exc.cause.__traceback__) if exc.cause is not None else []
        error = _error(exc.error_type, exc.message, stack, "")
        _log_error(error)
        _emit(marker, {"init": {"error": error}})
        return 1
    _emit(marker, {"init": {"duration_ms": (time.perf_counter() - started) * 1000}})

    while (request := _next_request(setup["idle_exit_seconds"])) is not None:
        request_filter.request_id = request["request_id"]
        _emit(marker, _invoke(handler, request))
    return 0


if __name__ == "__main__":
    sys.exit(main())
