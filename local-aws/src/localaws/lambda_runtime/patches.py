"""The seams of moto this runtime replaces (`install`) and restores (`uninstall`)."""

from __future__ import annotations

import contextvars
import copy
import functools
import inspect
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, cast

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import EventSourceMapping, LambdaBackend, LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.awslambda.utils import get_backend
from moto.events import models as events_models
from moto.events.utils import EventTemplateParser
from moto.s3 import notifications as s3_notifications
from moto.sqs.models import sqs_backends

from . import roles
from .common import _KEPT_SETTINGS, _SETTINGS, DEFAULT_KEEP_WARM_SECONDS, InvocationType, _stopping
from .environments import _pool
from .invocations import invoke
from .sqs import _poll_sqs

_LOG = logging.getLogger(__name__)

_patches: list[tuple[Any, str, Any]] = []
# The invocation type of calls that do not say: moto's internal callers pass no headers.
_default_invocation_type: contextvars.ContextVar[str] = contextvars.ContextVar(
    "lambda_default_invocation_type", default="RequestResponse"
)


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
    _patch(LambdaBackend, "create_function", _method(_create_function_method))
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


def _init_method(
    self: LambdaFunction, original: Callable[..., Any], *args: Any, **kwargs: Any
) -> None:
    original(self, *args, **kwargs)
    spec = inspect.signature(original).bind(self, *args, **kwargs).arguments["spec"]
    setattr(self, _SETTINGS, {key: spec[key] for key in _KEPT_SETTINGS if spec.get(key)})


def _create_function_method(
    self: LambdaBackend, original: Callable[..., Any], spec: dict[str, Any]
) -> LambdaFunction:
    roles.check_role(spec.get("Role"))
    return original(self, spec)  # type: ignore[no-any-return]


def _update_configuration_method(
    self: LambdaFunction, original: Callable[..., Any], updates: dict[str, Any]
) -> dict[str, Any]:
    if "Role" in updates:
        roles.check_role(updates["Role"])
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
    """SQS sources are polled as Lambda does (as the function's execution role, which must be
    allowed to poll), instead of moto's call inside SendMessage."""
    source_arn = str(spec.get("EventSourceArn") or "")
    if source_arn.split(":")[2:3] == ["sqs"] and spec.get("FunctionName"):
        fn = self.get_function(spec["FunctionName"])
        roles.check_sqs_poller(fn.role, fn.function_name, source_arn)
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
