"""Custom resources with CloudFormation's semantics: invoke the function, wait for its answer.

The engine sends the request to the ServiceToken's Lambda function (asynchronously, as
CloudFormation does) with a ResponseURL on the local HTTPS listener, then waits up to the
resource's ServiceTimeout for exactly that request's response. The response is validated
as CloudFormation validates it; every response received is kept, with the time from the request
to the response, so tests can check that a provider answers exactly once and benchmarks can
measure how long it takes.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda.models import lambda_backends

from localaws.config import get_config
from localaws.locking import unlocked

from .base import (
    Provisioned,
    Provisioner,
    ProvisionError,
    ResourceContext,
    register,
)

MAX_RESPONSE_BYTES = 4096
MAX_PHYSICAL_ID_BYTES = 1024
DEFAULT_SERVICE_TIMEOUT = 3600


@dataclass
class _Pending:
    request: dict[str, Any]
    opened: float = field(default_factory=time.monotonic)
    arrived: threading.Event = field(default_factory=threading.Event)
    response: dict[str, Any] | None = None
    problem: str | None = None


@dataclass
class ReceivedResponse:
    """A response as it reached the ResponseURL (kept for inspection by tests)."""

    request_id: str
    logical_id: str
    resource_type: str
    request_type: str
    body: dict[str, Any] | None
    accepted: bool
    problem: str | None
    #: From the moment the request was sent to the provider until this response arrived.
    seconds: float


class ResponseBroker:
    """Hands out ResponseURLs and matches the PUTs that arrive on them to waiting requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self.received: list[ReceivedResponse] = []

    def open(self, request: dict[str, Any]) -> tuple[str, _Pending]:
        token = secrets.token_urlsafe(24)
        pending = _Pending(request)
        with self._lock:
            self._pending[token] = pending
        base = get_config().response_url_base
        if not base:
            raise ProvisionError("the local AWS has no HTTPS response listener configured")
        return f"{base.rstrip('/')}/cfn-response/{token}", pending

    def close(self, token_url: str) -> None:
        with self._lock:
            self._pending.pop(token_url.rsplit("/", 1)[-1], None)

    def deliver(self, token: str, raw: bytes) -> tuple[int, str]:
        """Called by the listener for `PUT /cfn-response/<token>`; returns (HTTP status, text)."""
        with self._lock:
            pending = self._pending.get(token)
        if pending is None:
            return 403, "AccessDenied: this response URL has expired or was never issued"
        seconds = time.monotonic() - pending.opened
        request = pending.request
        body, problem = _validate(raw, request)
        with self._lock:
            self.received.append(
                ReceivedResponse(
                    request_id=request["RequestId"],
                    logical_id=request["LogicalResourceId"],
                    resource_type=request["ResourceType"],
                    request_type=request["RequestType"],
                    body=body,
                    accepted=pending.response is None and pending.problem is None,
                    problem=problem,
                    seconds=seconds,
                )
            )
            if pending.response is None and pending.problem is None:
                pending.response, pending.problem = body, problem
                pending.arrived.set()
        return 200, ""


def _validate(raw: bytes, request: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    if len(raw) > MAX_RESPONSE_BYTES:
        return None, f"Response object is too long ({len(raw)} bytes; the limit is 4096)."
    try:
        body = json.loads(raw)
    except ValueError:
        return None, "Invalid response object: the body is not JSON"
    if not isinstance(body, dict):
        return None, "Invalid response object: the body is not a JSON object"
    status = body.get("Status")
    if status not in ("SUCCESS", "FAILED"):
        return body, f"Invalid response object: Status must be SUCCESS or FAILED, got {status!r}"
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        if body.get(key) != request[key]:
            return body, f"Invalid response object: {key} does not match the request"
    physical_id = body.get("PhysicalResourceId")
    if not isinstance(physical_id, str) or not physical_id:
        return body, "Invalid PhysicalResourceId: it must be a non-empty string"
    if len(physical_id.encode()) > MAX_PHYSICAL_ID_BYTES:
        return body, "Invalid PhysicalResourceId: longer than 1 KB"
    data = body.get("Data", {})
    if data is not None and not isinstance(data, dict):
        return body, "Invalid response object: Data must be a JSON object"
    return body, None


BROKER = ResponseBroker()


@register
class CustomResourceProvisioner(Provisioner):
    """Lambda-backed `Custom::*` and `AWS::CloudFormation::CustomResource`."""

    resource_type = "Custom::*"
    aliases = ("AWS::CloudFormation::CustomResource",)

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        return self._send(ctx, "Create", props)

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        if old_props.get("ServiceToken") != new_props.get("ServiceToken"):
            raise ProvisionError("Modifying service token is not allowed.")
        return self._send(ctx, "Update", new_props, current.physical_id, old_props)

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        self._send(ctx, "Delete", props, current.physical_id)

    def _send(
        self,
        ctx: ResourceContext,
        request_type: str,
        props: dict[str, Any],
        physical_id: str | None = None,
        old_props: dict[str, Any] | None = None,
    ) -> Provisioned:
        token = props.get("ServiceToken")
        if not isinstance(token, str) or not token:
            raise ProvisionError("ServiceToken is required for a custom resource")
        timeout = _service_timeout(props)
        function = _function(token, ctx)
        request: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": token,
            "StackId": ctx.stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": ctx.logical_id,
            "ResourceType": ctx.resource_type,
            "ResourceProperties": props,
        }
        if physical_id is not None:
            request["PhysicalResourceId"] = physical_id
        if old_props is not None:
            request["OldResourceProperties"] = old_props
        url, pending = BROKER.open(request)
        request["ResponseURL"] = url
        try:
            from localaws.lambda_runtime import invoke

            invoke(function, request, invocation_type="Event")
            with unlocked():
                arrived = pending.arrived.wait(timeout)
        finally:
            BROKER.close(url)
        if not arrived:
            raise ProvisionError(
                f"CloudFormation did not receive a response from your Custom Resource within "
                f"its ServiceTimeout of {timeout} seconds. Please check your logs for requestId "
                f"[{request['RequestId']}]."
            )
        if pending.problem:
            raise ProvisionError(pending.problem)
        body = pending.response or {}
        returned_id = str(body.get("PhysicalResourceId"))
        if body.get("Status") == "FAILED":
            reason = body.get("Reason") or "See the details in CloudWatch Log Stream"
            raise ProvisionError(
                f"Received response status [FAILED] from custom resource. Message returned: "
                f"{reason} (RequestId: {request['RequestId']})",
                physical_id=returned_id,
            )
        return Provisioned(returned_id, dict(body.get("Data") or {}))


def _service_timeout(props: dict[str, Any]) -> int:
    raw = props.get("ServiceTimeout", DEFAULT_SERVICE_TIMEOUT)
    try:
        timeout = int(raw)
    except (TypeError, ValueError):
        timeout = 0
    if not 1 <= timeout <= 3600:
        raise ProvisionError(f"ServiceTimeout must be an integer from 1 to 3600, got {raw!r}")
    return timeout


def _function(token: str, ctx: ResourceContext) -> Any:
    parts = token.split(":")
    if len(parts) < 7 or parts[2] != "lambda":
        raise ProvisionError(
            f"Invalid service token {token!r}: the local AWS supports Lambda function ARNs"
        )
    if parts[3] != ctx.region:
        raise ProvisionError(
            f"Invalid service token {token!r}: the function must be in the stack's region "
            f"({ctx.region})"
        )
    try:
        return lambda_backends[parts[4]][parts[3]].get_function(token)
    except Exception as exc:
        raise ProvisionError(f"Invalid service token {token!r}: {exc}") from exc


def as_strings(value: Any) -> Any:
    """Custom resources receive every scalar as a string (true -> "true", 8 -> "8")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {k: as_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_strings(v) for v in value]
    return value
