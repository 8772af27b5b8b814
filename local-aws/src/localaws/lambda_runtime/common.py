"""What every part of the Lambda runtime shares: Lambda's limits as modelled here, the result
of an invocation, its errors, and the flag that tells background work the server is stopping."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from moto.awslambda.exceptions import LambdaClientError

InvocationType = Literal["RequestResponse", "Event", "DryRun"]

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
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


class RoleNotAssumable(LambdaClientError):
    """The function's execution role does not exist or does not trust Lambda: CreateFunction,
    UpdateFunctionConfiguration (Lambda API Reference) and, here, an invocation refuse it."""

    code = 400

    def __init__(self) -> None:
        super().__init__(
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        )


class Throttled(LambdaClientError):
    """A synchronous invocation while the function's reserved concurrency is all in use."""

    code = 429

    def __init__(self, function_name: str, limit: int) -> None:
        super().__init__(
            "TooManyRequestsException",
            f"Rate Exceeded. Function {function_name} already runs {limit} invocations, its "
            "reserved concurrency (ReservedFunctionConcurrentInvocationLimitExceeded).",
        )


# Set while the server stops: pollers and queued invocations give up.
_stopping = threading.Event()

# Function settings moto drops and the executor needs: the log group, where failed asynchronous
# events go. Kept on the function and shown by GetFunctionConfiguration.
_KEPT_SETTINGS = ("LoggingConfig", "DeadLetterConfig")
_SETTINGS = "localaws_settings"


def _now_ms() -> int:
    return int(time.time() * 1000)
