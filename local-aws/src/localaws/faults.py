"""Injected faults: make the next N matching API calls fail, as a throttled or broken AWS would.

Tests and the reliability suite arm a fault through the control API
(`POST /_localaws/faults` with a `Fault` as JSON); the server answers the next `count`
requests that match `service` (and `action` and `region`, when given) with the error instead of
serving them, in the error format the service's protocol uses, so SDK retry logic sees exactly
what AWS would send. With a `delay` the answer comes that many seconds late, as from an
endpoint that hangs.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from werkzeug.wrappers import Response

_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
MAX_DELAY_SECONDS = 900
JSON_SERVICES = {
    "secretsmanager",
    "ssm",
    "logs",
    "events",
    "kms",
    "servicecatalog",
    "sqs",  # awsJson
}
REST_JSON_SERVICES = {"lambda"}
REST_XML_SERVICES = {"s3"}


@dataclass
class Fault:
    """Fail the next `count` calls to `service` (optionally only `action`, only in `region`)
    with `code`, after `delay` seconds."""

    service: str
    count: int
    code: str = "ThrottlingException"
    message: str = "Rate exceeded"
    status: int = 400
    action: str | None = None
    region: str | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if not 0 <= self.delay <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay must be from 0 to {MAX_DELAY_SECONDS} seconds")


@dataclass
class Faults:
    """The armed faults, and how many calls each has failed so far."""

    armed: list[Fault] = field(default_factory=list)
    injected: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self.armed.append(fault)

    def clear(self) -> None:
        with self._lock:
            self.armed.clear()

    def take(self, call: Call) -> Fault | None:
        """The fault this call must get, if any (consuming one of its calls)."""
        with self._lock:
            for fault in self.armed:
                if (
                    fault.service == call.service
                    and fault.action in (None, call.action)
                    and fault.region in (None, call.region)
                ):
                    fault.count -= 1
                    if fault.count == 0:
                        self.armed.remove(fault)
                    self.injected.append(
                        {"service": call.service, "action": call.action, "code": fault.code}
                    )
                    return fault
        return None

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"armed": [asdict(f) for f in self.armed], "injected": list(self.injected)}


FAULTS = Faults()


class Call(NamedTuple):
    """Which API call a request is, as far as the request shows it."""

    service: str
    action: str | None
    region: str


def identify(environ: dict[str, Any], body: bytes) -> Call | None:
    """The call a signed AWS request makes; None for an unsigned request."""
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope is None:
        return None
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        action: str | None = target.rsplit(".", 1)[-1]
    elif environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode(errors="replace")).get("Action", [None])[0]
    else:
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", [None])[0]
    return Call(scope.group("service"), action, scope.group("region"))


def error_response(fault: Fault, service: str) -> Response:
    """The error as the service's protocol spells it."""
    if service in JSON_SERVICES:
        body = json.dumps({"__type": fault.code, "message": fault.message})
        return Response(body, fault.status, content_type="application/x-amz-json-1.1")
    if service in REST_JSON_SERVICES:
        return Response(
            json.dumps({"message": fault.message, "Type": "User"}),
            fault.status,
            headers={"x-amzn-errortype": fault.code},
            content_type="application/json",
        )
    error = f"<Code>{fault.code}</Code><Message>{fault.message}</Message>"
    if service == "ec2":
        body = (
            f"<Response><Errors><Error>{error}</Error></Errors>"
            "<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
        )
        return Response(body, fault.status, content_type="text/xml")
    if service in REST_XML_SERVICES:
        return Response(f"<Error>{error}</Error>", fault.status, content_type="application/xml")
    kind = "Receiver" if fault.status >= 500 else "Sender"
    body = (
        f"<ErrorResponse><Error><Type>{kind}</Type>{error}</Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return Response(body, fault.status, content_type="text/xml")
