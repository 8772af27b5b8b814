"""The local AWS server: moto on 127.0.0.1 with our extensions, and an HTTPS side listener.

`python -m localaws.server --port 0 --state-dir DIR` starts it in the
foreground, writes `DIR/server.json` (endpoint, pid, CA bundle) once it accepts requests, and
stops cleanly on SIGTERM or SIGINT. `--stabilize TYPE=SECONDS` (repeatable) makes CloudFormation
wait that long for each resource of the type it creates or deletes (see `stabilize_waits`).
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from localaws import devtls

from . import access, faults, unimplemented
from .config import LocalAwsConfig, check_stabilize, set_config, stabilize_waits
from .iam import authorization as iam_authorization
from .iam import engine as iam_engine
from .locking import BACKEND_LOCK

log = logging.getLogger(__name__)
ENFORCE_IAM_VARIABLE = "LOCALAWS_ENFORCE_IAM"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Locked:
    """Every moto request holds BACKEND_LOCK; our control routes answer without moto."""

    def __init__(self, moto_app: WsgiApp) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/_localaws/"):
            return _control(Request(environ))(environ, start_response)
        if faults.FAULTS.armed:
            injected = _injected_fault(environ)
            if injected is not None:
                return injected(environ, start_response)
        with BACKEND_LOCK:
            return list(self.moto_app(environ, start_response))


def _injected_fault(environ: dict[str, Any]) -> Response | None:
    """An armed fault's error for this request, if one matches (the body is kept for moto);
    a delayed one is held here, outside the backend lock."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    call = faults.identify(environ, body)
    fault = faults.FAULTS.take(call) if call else None
    if fault is None or call is None:
        return None
    if fault.delay:
        time.sleep(fault.delay)
    return faults.error_response(fault, call.service)


def _control(request: Request) -> Response:
    from .cloudformation.provisioners.custom import BROKER

    if request.path == "/_localaws/health":
        return _json({"status": "ok"})
    if request.path == "/_localaws/faults":
        if request.method == "POST":
            try:
                faults.FAULTS.arm(faults.Fault(**request.get_json(force=True)))
            except (TypeError, ValueError) as exc:
                return _json({"message": f"bad fault: {exc}"}, status=400)
        elif request.method == "DELETE":
            faults.FAULTS.clear()
        return _json(faults.FAULTS.state())
    if request.path == "/_localaws/iam-enforcement":
        if request.method == "POST":
            enforce = request.get_json(force=True).get("enforce")
            if not isinstance(enforce, bool):
                return _json({"message": 'send {"enforce": true} or {"enforce": false}'}, 400)
            (iam_authorization.install if enforce else iam_authorization.uninstall)()
        return _json({"enforce": iam_authorization.enforcing()})
    if request.path == "/_localaws/iam-engine":
        # What the engine has done since the server started (for benchmarks).
        return _json(asdict(iam_engine.get_engine().stats))
    if request.path == "/_localaws/custom-resource-responses":
        return _json([asdict(r) for r in BROKER.received])
    if request.path == "/_localaws/accesses/judge" and request.method == "POST":
        return _judged(request)
    if request.path == "/_localaws/accesses":
        if request.method == "DELETE":
            access.clear()
        return _json(access.recorded())
    return _json({"message": f"no control route {request.path}"}, status=404)


def _judged(request: Request) -> Response:
    """`{"operations": [[access, ...], ...]}` -> `{"denials": [message or null, ...]}`: each
    operation's accesses judged again against the policies as they are now."""
    body = request.get_json(force=True, silent=True)
    operations = body.get("operations") if isinstance(body, dict) else None
    if not isinstance(operations, list) or not all(isinstance(o, list) for o in operations):
        return _json({"message": 'send {"operations": [[access, ...], ...]}'}, 400)
    try:
        parsed = [[access.Access.from_api(a) for a in operation] for operation in operations]
        return _json({"denials": access.judge(parsed)})
    except ValueError as error:
        return _json({"message": f"bad access: {error}"}, 400)
    except access.NotJudging as error:
        return _json({"message": str(error)}, 409)


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value, default=str), status=status, mimetype="application/json")


def _responses_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The HTTPS listener serving CloudFormation's response buckets: providers PUT here."""
    from .cloudformation.provisioners.custom import BROKER

    request = Request(environ)
    if request.method == "PUT":
        status, text = BROKER.deliver(request.host.split(":")[0], request.url, request.get_data())
        response = Response(text, status=status)
    else:
        response = Response("not found", status=404)
    return response(environ, start_response)


def _response_buckets_tls(ca: devtls.LocalCa) -> Any:
    """TLS for the response listener: each response bucket's host name gets a certificate of
    its own (by SNI, issued by the local CA), as S3 presents one for the name asked for."""
    from .cloudformation.provisioners.custom import RESPONSE_HOST

    context = ca.server_context()
    issued = functools.cache(ca.server_context)

    def choose(connection: Any, server_name: str | None, _: Any) -> None:
        if server_name and RESPONSE_HOST.fullmatch(server_name):
            connection.context = issued(server_name)

    context.sni_callback = choose
    return context


class LocalAws:
    """The server, in this process (tests, demo) or as the main program.

    `stabilize` maps resource types to the seconds their creation and deletion take (see
    `stabilize_waits`); a bad one raises ValueError naming the fix. `enforce_iam` authorizes
    requests signed by IAM users and assumed roles (`localaws.iam.authorization`).
    """

    def __init__(
        self,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        stabilize: Mapping[str, float] | None = None,
        enforce_iam: bool = True,
    ) -> None:
        self.enforce_iam = enforce_iam
        self.state_dir = state_dir
        self.host = host
        self.port = port
        self.stabilize = _known_types(check_stabilize(stabilize or {}))
        self._servers: list[BaseWSGIServer] = []
        self._threads: list[threading.Thread] = []
        self.config: LocalAwsConfig | None = None

    def start(self) -> LocalAwsConfig:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        from . import extensions

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ca = devtls.load_or_create(self.state_dir / "ca")
        responses = make_server(
            self.host, 0, _responses_app, threaded=True, ssl_context=_response_buckets_tls(ca)
        )

        def backend_app(service: Any) -> Any:
            return unimplemented.install_on(create_backend_app(service), str(service))

        dispatcher = DomainDispatcherApplication(backend_app)
        # moto finds a request's service by listing its own package directory, on every
        # request (a tenth of the server's CPU while stacks launch): the answer for a host
        # never changes.
        dispatcher.get_backend_for_host = functools.cache(  # type: ignore[method-assign]
            dispatcher.get_backend_for_host
        )
        api = make_server(
            self.host,
            self.port,
            _Locked(dispatcher),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self.config = LocalAwsConfig(
            endpoint_url=f"http://{self.host}:{api.server_port}",
            state_dir=self.state_dir,
            ca_bundle=ca.bundle,
            response_url_base=f"https://{self.host}:{responses.server_port}",
            stabilize=self.stabilize,
        )
        set_config(self.config)
        extensions.install()
        if self.enforce_iam:
            iam_authorization.install()
        for server in (responses, api):
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self.config

    def stop(self) -> None:
        from . import extensions

        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()
        extensions.uninstall()
        iam_authorization.uninstall()
        iam_engine.shutdown()


def _known_types(waits: dict[str, float]) -> dict[str, float]:
    """A wait for a type the local AWS cannot create would never happen: refuse the typo."""
    from .cloudformation.engine import provisioner_for

    for resource_type in waits:
        if provisioner_for(resource_type) is None:
            raise ValueError(
                f"--stabilize {resource_type}: the local AWS has no such resource type; check "
                "its spelling (as in a template, e.g. AWS::EC2::Instance)"
            )
    return waits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the local AWS in the foreground.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--state-dir", type=Path, default=Path(".localaws"))
    parser.add_argument(
        "--stabilize",
        action="append",
        default=[],
        metavar="TYPE=SECONDS",
        help="wait this long for each resource of TYPE created or deleted, as CloudFormation "
        "waits for AWS (repeatable; e.g. AWS::EC2::Instance=10; default: no waits)",
    )
    parser.add_argument(
        "--enforce-iam",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get(ENFORCE_IAM_VARIABLE, "1") != "0",
        help="authorize requests signed by IAM users and assumed roles (Lambda functions act "
        "as their execution roles) with the IAM policy engine (default: on; "
        f"--no-enforce-iam or {ENFORCE_IAM_VARIABLE}=0 turns it off, for speed comparisons "
        "only: nothing is then refused)",
    )
    args = parser.parse_args(argv)
    if args.host not in devtls.LOCAL_HOSTS:
        parser.error("the local AWS binds to loopback only (127.0.0.1 or localhost)")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    try:
        stabilize = stabilize_waits(args.stabilize)
        server = LocalAws(
            args.state_dir.resolve(), args.host, args.port, stabilize, args.enforce_iam
        )
    except ValueError as exc:
        parser.error(str(exc))
    config = server.start()
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    info = {
        "endpoint_url": config.endpoint_url,
        "pid": os.getpid(),
        "ca_bundle": str(config.ca_bundle),
        "response_url_base": config.response_url_base,
        "stabilize": stabilize,  # shown by `local-aws status`: these waits slow every stack
        "enforce_iam": args.enforce_iam,
    }
    status_file = args.state_dir / "server.json"
    status_file.write_text(json.dumps(info))
    print(json.dumps(info), flush=True)
    stopped.wait()
    server.stop()
    status_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
