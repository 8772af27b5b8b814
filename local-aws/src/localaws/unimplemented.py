"""What the local AWS answers for an operation it does not implement: AWS's error for an
operation it does not know, in the service's protocol, never moto's HTML page with HTTP 500.

moto raises NotImplementedError for an action its response class lacks, botocore's
OperationNotFoundError for one its model lacks, and werkzeug's NotFound for a REST path no
route matches; its Flask apps turn each into an HTML 500 (or 404) that SDKs retry, then
cannot parse (S3, which answers unknown sub-resources with another operation, is made to
raise NotImplementedError by `s3_operations`). Each backend app gets handlers answering as AWS
does:

- query protocol (an `Action` parameter: EC2, IAM, STS, CloudFormation, SQS's query form):
  InvalidAction, HTTP 400 (AWS's Common Errors: "The action or operation requested is
  invalid. Verify that the action is typed correctly.");
- JSON protocols (an `X-Amz-Target` header): UnknownOperationException, HTTP 400, the code
  and status AWS's JSON services answer for a target they do not know;
- REST protocols (the operation is the method and path): UnknownOperationException,
  HTTP 404, the answer AWS gives for a path no operation of the service serves.

Anything else the local AWS raises is its own fault: InternalFailure, HTTP 500 (Common
Errors), in the same shapes, with the traceback in the server's log.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import OperationNotFoundError
from botocore.session import get_session
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, NotFound

log = logging.getLogger(__name__)

FIX = "run it against AWS, or add it to the local AWS (local-aws/src/localaws)"
#: moto's backend names that are not botocore's service names.
_NAMES = {"awslambda": "lambda"}


def install_on(app: Flask, service: str) -> Flask:
    """Give moto's Flask app for `service` the handlers above; returns the app."""
    app.register_error_handler(NotImplementedError, functools.partial(_unimplemented, service))
    app.register_error_handler(OperationNotFoundError, functools.partial(_unimplemented, service))
    app.register_error_handler(NotFound, functools.partial(_unimplemented, service))
    app.register_error_handler(Exception, functools.partial(_internal, service))
    return app


def _unimplemented(service: str, exc: Exception) -> Response:
    detail = str(exc) if isinstance(exc, NotImplementedError) else ""
    # moto's "The x action has not been implemented" says no more than the message does.
    shown = f" ({detail})" if detail and not detail.endswith("has not been implemented") else ""
    name = _NAMES.get(service, service)
    message = f"{name} {_operation()} is not implemented by the local AWS{shown}: {FIX}"
    protocol = _protocol(service)
    if protocol == "query":
        return _error(service, protocol, 400, "InvalidAction", message)
    status = 400 if protocol == "json" else 404
    return _error(service, protocol, status, "UnknownOperationException", message)


def _internal(service: str, exc: Exception) -> Any:
    if isinstance(exc, HTTPException):
        return exc  # moto's own AWS-shaped errors (RESTError) answer as they are
    log.error("%s %s failed in the local AWS", service, _operation(), exc_info=exc)
    name = _NAMES.get(service, service)
    message = f"The local AWS failed on {name} {_operation()}: {type(exc).__name__}: {exc}"
    return _error(service, _protocol(service), 500, "InternalFailure", message)


def _operation() -> str:
    target = request.headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    action = request.values.get("Action")
    if action:
        return action
    return f"{request.method} {request.path}"


def _protocol(service: str) -> str:
    """The request's protocol: query or json from the request itself, else the service's."""
    if request.headers.get("X-Amz-Target"):
        return "json"
    if request.values.get("Action"):
        return "query"
    return _service_protocol(service)


@functools.cache
def _service_protocol(service: str) -> str:
    try:
        protocol = str(get_session().get_service_model(_NAMES.get(service, service)).protocol)
    except Exception:  # a moto backend with no botocore model of the same name
        return "rest-json"
    return {"ec2": "query"}.get(protocol, protocol)


def _error(service: str, protocol: str, status: int, code: str, message: str) -> Response:
    request_id = str(uuid.uuid4())
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message})
        return Response(
            body,
            status=status,
            headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id},
            mimetype="application/x-amz-json-1.1" if protocol == "json" else "application/json",
        )
    code_x, message_x = escape(code), escape(message)
    if service == "ec2":
        xml = (
            f"<Response><Errors><Error><Code>{code_x}</Code><Message>{message_x}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
    elif protocol == "query":
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code_x}</Code>"
            f"<Message>{message_x}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        )
    else:
        xml = (
            f"<Error><Code>{code_x}</Code><Message>{message_x}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?>\n{xml}', status=status, mimetype="text/xml"
    )
