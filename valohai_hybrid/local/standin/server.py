"""The stand-in as an HTTPS server on 127.0.0.1 (werkzeug, threaded), plus its control API.

POST /api/v0/hybrid-aws/events   the contract's endpoint
GET  /_standin/events[?type=T]   accepted events
GET  /_standin/attempts          every request to the endpoint and what it got
GET  /_standin/bindings          queue address -> public IP and owner
POST /_standin/faults            {"count": N, "status": 500|429|..., "retry_after": S, "delay": S}
POST /_standin/reset             forget events, attempts, bindings and faults
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from localaws import devtls
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from .receiver import EVENTS_PATH, Fault, HeaderMap, Receiver

MAX_BODY_BYTES = 1 << 20
JOURNAL_NAME = "standin-events.jsonl"


class StandIn:
    """Run with `with StandIn(tokens, state_dir) as standin:`; `standin.receiver` is the state.

    The TLS certificate comes from the local CA in `state_dir/ca` (shared with the local AWS
    when both use the same state directory), so clients trust it through `ca_bundle`.
    """

    def __init__(self, tokens: Iterable[str], state_dir: Path, *, port: int = 0) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.receiver = Receiver(tokens, journal=state_dir / JOURNAL_NAME)
        self._ca = devtls.load_or_create(state_dir / "ca")
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return f"https://127.0.0.1:{self._server.server_port}"

    @property
    def ca_bundle(self) -> Path:
        return self._ca.bundle

    def start(self) -> StandIn:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self._server = make_server(
            "127.0.0.1",
            self._port,
            self._app,
            threaded=True,
            ssl_context=self._ca.server_context(),
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.receiver.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self._route(request)
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == EVENTS_PATH and method == "POST":
            if (request.content_length or 0) > MAX_BODY_BYTES:
                return _json({"error": "body larger than 1 MiB"}, 413)
            status, payload, headers = self.receiver.receive(
                HeaderMap(request.headers.items()), request.get_data()
            )
            return _json(payload, status, headers)
        if path == "/_standin/events" and method == "GET":
            events = self.receiver.events(request.args.get("type"))
            return _json({"events": [asdict(e) for e in events]})
        if path == "/_standin/attempts" and method == "GET":
            return _json({"attempts": [asdict(a) for a in self.receiver.attempts()]})
        if path == "/_standin/bindings" and method == "GET":
            bindings = self.receiver.bindings()
            return _json({"bindings": {k: asdict(v) for k, v in bindings.items()}})
        if path == "/_standin/reset" and method == "POST":
            self.receiver.reset()
            return _json({"status": "reset"})
        if path == "/_standin/faults" and method == "POST":
            return self._inject(request)
        return _json({"error": f"no route {method} {path}"}, 404)

    def _inject(self, request: Request) -> Response:
        spec = request.get_json(silent=True)
        if not isinstance(spec, dict):
            return _json({"error": "send a JSON object: count, and status and/or delay"}, 400)
        try:
            fault = Fault(
                count=int(spec.get("count", 1)),
                status=None if spec.get("status") is None else int(spec["status"]),
                retry_after=None if spec.get("retry_after") is None else int(spec["retry_after"]),
                delay=float(spec.get("delay", 0)),
            )
        except (TypeError, ValueError) as error:
            return _json({"error": str(error)}, 400)
        self.receiver.inject(fault)
        return _json({"status": "injected", "fault": asdict(fault)})


def _json(
    payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(payload), status=status, headers=headers, mimetype="application/json"
    )
