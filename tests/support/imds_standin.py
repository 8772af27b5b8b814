"""A local stand-in for the EC2 instance metadata service, IMDSv2 only, on 127.0.0.1.

It answers what the queue machine's boot script and botocore ask EC2 for: a session token
(PUT /latest/api/token), the instance's public IPv4, the instance role's credentials, the
instance's tags (only when the instance allows tags in its metadata), and the user data. Like
EC2 with `HttpTokens: required`, it refuses every read without a valid token (401), a token
request without a TTL of 1-21600 s (400), and anything carrying X-Forwarded-For (a proxy).
It records each request, so tests can tell what the machine read and how.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"


@dataclass
class Instance:
    """What EC2 knows about the instance; tests change it as CloudFormation would."""

    user_data: bytes
    public_ipv4: str
    role_name: str
    credentials: dict[str, str]  # AccessKeyId, SecretAccessKey, Token, Expiration
    tags: dict[str, str] = field(default_factory=dict)
    metadata_tags: bool = False  # MetadataOptions.InstanceMetadataTags == enabled


@dataclass
class Request:
    method: str
    path: str
    with_token: bool


class ImdsStandIn:
    """The server; `instance` may be replaced or changed between requests."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.requests: list[Request] = []
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def paths_read(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests if r.method == "GET" and r.with_token]

    def _issue(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl
        return token

    def _valid(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and self._tokens.get(token, 0.0) > time.monotonic()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _answer(self, path: str) -> tuple[int, bytes]:
        instance = self.instance
        credentials_path = "/latest/meta-data/iam/security-credentials/"
        if path == "/latest/user-data":
            return 200, instance.user_data
        if path == "/latest/meta-data/public-ipv4":
            return 200, instance.public_ipv4.encode()
        if path == credentials_path:
            return 200, instance.role_name.encode()
        if path == credentials_path + instance.role_name:
            body: dict[str, Any] = {
                "Code": "Success",
                "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "Type": "AWS-HMAC",
                **instance.credentials,
            }
            return 200, json.dumps(body).encode()
        if path.startswith("/latest/meta-data/tags/instance") and instance.metadata_tags:
            key = path.removeprefix("/latest/meta-data/tags/instance").strip("/")
            if not key:
                return 200, "\n".join(instance.tags).encode()
            if key in instance.tags:
                return 200, instance.tags[key].encode()
        return 404, b"Not Found"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read `requests` instead."""

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                standin._record(Request("PUT", self.path, False))
                if self.path != "/latest/api/token":
                    self._send(405, b"Method Not Allowed")
                    return
                ttl = self.headers.get(TTL_HEADER, "")
                if "X-Forwarded-For" in self.headers:
                    self._send(403, b"Forbidden")
                elif not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    self._send(400, b"Bad Request")
                else:
                    self._send(200, standin._issue(int(ttl)).encode())

            def do_GET(self) -> None:
                token_ok = standin._valid(self.headers.get(TOKEN_HEADER))
                standin._record(Request("GET", self.path, token_ok))
                if not token_ok:
                    self._send(401, b"Unauthorized")
                    return
                self._send(*standin._answer(self.path))

        return Handler


@contextmanager
def running_imds(instance: Instance) -> Iterator[ImdsStandIn]:
    server = ImdsStandIn(instance)
    server.start()
    try:
        yield server
    finally:
        server.stop()
