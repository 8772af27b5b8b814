"""Custom resources with CloudFormation's semantics: invoke the function, wait for its answer.

The engine sends the request to the ServiceToken's Lambda function (asynchronously, as
CloudFormation does) with a ResponseURL shaped as AWS shapes it: a presigned PUT to the
region's response bucket (`response_host`), which the local HTTPS listener serves and the local
Lambda environments resolve to it (`routes`); then it waits up to the
resource's ServiceTimeout for exactly that request's response. The response is validated
as CloudFormation validates it; every response received is kept, with the time from the request
to the response, so tests can check that a provider answers exactly once and benchmarks can
measure how long it takes.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

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
#: Presigned URLs CloudFormation hands out are valid for two hours.
RESPONSE_URL_SECONDS = 7200
#: Any region's response bucket, in the virtual-hosted regional form AWS's URLs use.
RESPONSE_HOST = re.compile(
    r"cloudformation-custom-resource-response-[a-z0-9]+\.s3\.[a-z]{2}(-[a-z]+)+-[0-9]\.amazonaws\.com"
)


def response_host(region: str) -> str:
    """CloudFormation's custom-resource response bucket in `region`, as its ResponseURLs name it
    (the bucket is `cloudformation-custom-resource-response-<region without dashes>`)."""
    bucket = f"cloudformation-custom-resource-response-{region.replace('-', '')}"
    return f"{bucket}.s3.{region}.amazonaws.com"


def routes(region: str) -> dict[str, tuple[str, int]]:
    """Where the response bucket's name leads inside the local AWS: its HTTPS listener."""
    base = get_config().response_url_base
    if not base:
        return {}
    listener = urlsplit(base)
    assert listener.hostname is not None
    assert listener.port is not None
    return {response_host(region): (listener.hostname, listener.port)}


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

    def open(self, request: dict[str, Any], region: str) -> tuple[str, _Pending]:
        """A presigned-style URL for `request`; its signature is the key it is matched by."""
        if not get_config().response_url_base:
            raise ProvisionError("the local AWS has no HTTPS response listener configured")
        token = secrets.token_hex(32)
        pending = _Pending(request)
        with self._lock:
            self._pending[token] = pending
        key = quote(
            f"{request['StackId']}|{request['LogicalResourceId']}|{request['RequestId']}", safe=""
        )
        query = (
            f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={RESPONSE_URL_SECONDS}"
            f"&X-Amz-SignedHeaders=host&X-Amz-Signature={token}"
        )
        return f"https://{response_host(region)}/{key}?{query}", pending

    def close(self, url: str) -> None:
        with self._lock:
            self._pending.pop(_signature(url), None)

    def deliver(self, host: str, url: str, raw: bytes) -> tuple[int, str]:
        """Called by the listener for a PUT to a response bucket; returns (HTTP status, text)."""
        with self._lock:
            pending = self._pending.get(_signature(url)) if RESPONSE_HOST.fullmatch(host) else None
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


def _signature(url: str) -> str:
    for pair in urlsplit(url).query.split("&"):
        name, _, value = pair.partition("=")
        if name == "X-Amz-Signature":
            return value
    return ""


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
        url, pending = BROKER.open(request, ctx.region)
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
