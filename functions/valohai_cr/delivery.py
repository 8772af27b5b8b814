"""Delivering one signed event to Valohai, with retries bounded by the time the function has.

Retries: connection errors, timeouts, 408, 429 and 5xx, with exponential backoff and full jitter
(a Retry-After header is a lower bound on the wait); never other statuses, which are definitive.
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit

import urllib3

from valohai_cr.errors import PropertyError
from valohai_cr.events import EVENTS_PATH, Event, request_headers
from valohai_cr.work import Work

#: Longest single attempt; a hanging receiver costs at most this much of the budget per try.
ATTEMPT_TIMEOUT = 10.0
CONNECT_TIMEOUT = 3.0
#: An attempt with less time than this left is not worth starting.
MIN_ATTEMPT_TIME = 0.2
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
_LOOPBACK_NAMES = ("localhost",)
#: Set to "true" by the platform stack's AllowLoopbackValohaiApi (development only).
LOOPBACK_ENV = "ALLOW_LOOPBACK_VALOHAI_API"
MAX_HOST_LENGTH = 253
#: Labels of 1-63 letters, digits and inner hyphens; at least two, the last starting with a
#: letter (a top-level domain: never an IP address, never a bare intranet name).
_DNS_NAME = re.compile(
    r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE
)


class Outcome(StrEnum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    UNDELIVERED = "undelivered"


class Delivery(NamedTuple):
    """What happened; `detail` is the last answer or error, fit for a Reason."""

    outcome: Outcome
    attempts: int
    detail: str


class Response(NamedTuple):
    """What the sender uses of an answer: never its body, which is not ours to pass on."""

    status: int
    retry_after: str | None


class TransportError(Exception):
    """The request got no HTTP answer (connection refused, TLS failure, timeout)."""


class Transport(Protocol):
    def __call__(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> Response: ...


class Urllib3Transport:
    """POST with urllib3 (in the Lambda runtime via botocore): no redirects, no own retries.

    Certificates are checked against the default trust store, which honours SSL_CERT_FILE.
    """

    def __init__(self) -> None:
        self._pool = urllib3.PoolManager(num_pools=4, maxsize=1)

    def __call__(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> Response:
        try:
            response = self._pool.request(
                "POST",
                url,
                body=body,
                headers=dict(headers),
                timeout=urllib3.Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout),
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as error:
            raise TransportError(_transport_message(error, timeout)) from error
        return Response(response.status, response.headers.get("Retry-After"))


def events_url(api_url: str) -> str:
    """The events endpoint under `api_url`, refused when the URL cannot be Valohai's.

    https only; a host that is a DNS name of valid labels (at most 253 characters) or a public
    IP address literal; a port from 1 to 65535; no path, query, fragment or user. A loopback host
    (plain http allowed) only where the platform allows it, for local development
    (LOOPBACK_ENV): a function's own loopback is the Lambda runtime's, no customer's Valohai.
    """
    expected = "an https:// URL such as https://app.valohai.com"
    parts = urlsplit(api_url)
    try:
        port = parts.port
    except ValueError:
        raise PropertyError(
            f"ValohaiApiUrl must be {expected}; its port is not 1-65535: {_quoted(api_url)}"
        ) from None
    host = parts.hostname or ""
    if (
        not host
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or "@" in parts.netloc
        or port == 0
    ):
        raise PropertyError(f"ValohaiApiUrl must be {expected}, with no path: {_quoted(api_url)}")
    if _is_loopback(host):
        if not _loopback_allowed():
            raise PropertyError(
                f"ValohaiApiUrl must be {expected}: {host} is this function's own loopback "
                "address, which only a development platform allows"
            )
        if parts.scheme not in ("https", "http"):
            raise PropertyError(f"ValohaiApiUrl must be {expected}, got {_quoted(api_url)}")
    elif parts.scheme != "https":
        raise PropertyError(f"ValohaiApiUrl must be {expected}, got {_quoted(api_url)}")
    else:
        problem = _host_problem(host)
        if problem:
            raise PropertyError(f"ValohaiApiUrl must be {expected}: {problem}")
    return api_url.rstrip("/") + EVENTS_PATH


def _host_problem(host: str) -> str | None:
    """Why `host` cannot be the Valohai API's, or None when it can."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if len(host) > MAX_HOST_LENGTH or not _DNS_NAME.fullmatch(host):
            return (
                f"{_quoted(host)} is not a public DNS name (labels of 1-63 letters, digits and "
                "hyphens, at most 253 characters in all)"
            )
        return None
    if not address.is_global or address.is_multicast:
        return f"{host} is not a public address (private, link-local, reserved or internal)"
    return None


def _loopback_allowed() -> bool:
    return os.environ.get(LOOPBACK_ENV, "") == "true"


def _quoted(value: str, limit: int = 40) -> str:
    """`value` quoted for a message, shortened: a 3,000-character host must not fill a Reason."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


class Sender:
    """Signs and POSTs one event until it is accepted, definitively refused, or time runs out."""

    def __init__(
        self,
        transport: Transport,
        *,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float], float] = lambda ceiling: random.uniform(0, ceiling),  # noqa: S311
        attempt_timeout: float = ATTEMPT_TIMEOUT,
    ) -> None:
        self._transport = transport
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._jitter = jitter
        self._attempt_timeout = attempt_timeout

    def deliver(self, event: Event, api_url: str, token: str, work: Work) -> Delivery:
        url = events_url(api_url)
        attempts = 0
        detail = "no time left to try"
        while (timeout := min(self._attempt_timeout, work.remaining())) >= MIN_ATTEMPT_TIME:
            attempts += 1
            headers = request_headers(event, token, int(self._wall_clock()))
            try:
                response = self._transport(url, event.body, headers, timeout)
            except TransportError as error:
                detail = str(error)
                wait = self._backoff(attempts)
            else:
                # Only the status: the body is Valohai's text, not ours to show in stack events.
                detail = f"HTTP {response.status}"
                if 200 <= response.status < 300:
                    return Delivery(Outcome.DELIVERED, attempts, detail)
                if not _retryable(response.status):
                    return Delivery(Outcome.REJECTED, attempts, detail)
                wait = max(self._backoff(attempts), self._retry_after(response.retry_after))
            if wait >= work.remaining():
                break
            self._sleep(wait)
        return Delivery(
            Outcome.UNDELIVERED, attempts, f"{detail} (gave up after {attempts} attempts)"
        )

    def _backoff(self, attempts: int) -> float:
        return self._jitter(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempts - 1)))

    def _retry_after(self, header: str | None) -> float:
        """Seconds to wait from Retry-After (delta-seconds or an HTTP date); 0 if absent or bad."""
        if not header:
            return 0.0
        if header.strip().isdigit():
            return float(header)
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return 0.0
        return max(0.0, when.timestamp() - self._wall_clock())


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _is_loopback(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _transport_message(error: urllib3.exceptions.HTTPError, timeout: float) -> str:
    """What went wrong, in a few words (urllib3's own text repeats the pool and the URL)."""
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return f"no answer within {timeout:.1f} s"
    if isinstance(error, urllib3.exceptions.SSLError):
        return _one_line(f"TLS error: {error.args[0] if error.args else error}")
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return _one_line(f"could not connect: {str(error).rsplit(': ', 1)[-1]}")
    return _one_line(f"{type(error).__name__}: {error}")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
