"""Lambda functions executed without Docker: the function's uploaded code runs in a subprocess.

moto 5.2.5 runs function code only in Docker (`LambdaFunction._invoke_lambda`). `install()`
replaces the seam every caller inside moto goes through, `LambdaFunction.invoke` (the Invoke API,
SNS, S3 notifications, CloudWatch Logs subscriptions, custom resources), and adds what moto does
not do: Lambda targets of EventBridge rules, SQS event source mappings that poll like Lambda's
(batches, visibility timeout, redrive to the queue's DLQ, FIFO groups in order), asynchronous
invocations with retries and the function's dead-letter queue, and reserved concurrency (over it
a synchronous call is throttled; an asynchronous event or an SQS batch waits for a free
environment, as Lambda's queue holds it). The local CloudFormation engine calls `invoke()` directly.

An execution environment is a process of `bootstrap.py` under the Python of the function's
runtime (`python3.13` -> a python3.13 on PATH or under ~/.pyenv/versions, else this interpreter),
started with `-I -S` so that no site-packages of the server leak in. Its `sys.path` is what
Lambda's is: the function's code, its layers, then a runtime directory holding boto3, botocore and
their pure-Python dependencies copied from this environment once ("boto3 comes with the runtime",
after the function's code so that a bundled boto3 wins). Environments are kept warm for reuse,
as Lambda does, for `keep_warm_seconds` (0 starts a fresh process for every invocation).

While IAM is enforced, a function runs as its execution role: each environment gets a session
of the role that Lambda's principal starts (`roles`, `localaws.iam.execution_roles`).

The parts: `common` (limits, results, errors), `environments` (worker processes, the warm pool,
reserved concurrency), `invocations`, `sqs` (event source mappings), `roles` (what Lambda does
as the execution role) and `patches` (the seams of moto replaced by `install`).
"""

from .common import (
    BOOTSTRAP,
    DEFAULT_KEEP_WARM_SECONDS,
    RUNTIME_DISTRIBUTIONS,
    FunctionNotRunnable,
    InvocationResult,
    InvocationType,
    Throttled,
)
from .invocations import invoke
from .patches import install, is_installed, uninstall

__all__ = [
    "BOOTSTRAP",
    "DEFAULT_KEEP_WARM_SECONDS",
    "RUNTIME_DISTRIBUTIONS",
    "FunctionNotRunnable",
    "InvocationResult",
    "InvocationType",
    "Throttled",
    "install",
    "invoke",
    "is_installed",
    "uninstall",
]
