"""The receiving side of the Valohai event contract, without the HTTP plumbing.

Verifies, deduplicates, records, keeps the queue-address bindings, and plays the faults it is
told to (an error status or a delay for the next N requests), so tests and the demo can see
what Valohai would see and make it misbehave on purpose.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .verify import SignatureError, key_id, verify_request

EVENTS_PATH = "/api/v0/hybrid-aws/events"
#: The version of docs/valohai-event-contract.md this receiver implements.
CONTRACT_VERSION = 2
EVENT_TYPES = frozenset(
    {
        "setup.created",
        "setup.updated",
        "setup.deleted",
        "queue_address.registered",
        "queue_address.deregistered",
        "stack.status_changed",
    }
)
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{32,256}")

Answer = tuple[int, dict[str, Any], dict[str, str]]


@dataclass(frozen=True)
class ReceivedEvent:
    """An accepted event (duplicates are not recorded again)."""

    received_at: float
    key_id: str
    type: str
    idempotency_key: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    """Every request to the events endpoint, with the status it got."""

    received_at: float
    event_type: str
    idempotency_key: str
    status: int
    outcome: str
    #: Which release sent it (the contract's User-Agent).
    user_agent: str = ""


@dataclass(frozen=True)
class Binding:
    public_ip: str
    key_id: str
    stack_id: str


@dataclass
class Fault:
    """Answer `status` (with Retry-After when given), or wait `delay` s first, `count` times."""

    count: int
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.status is None and self.delay <= 0:
            raise ValueError("give a status to answer, or a delay in seconds, or both")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if self.retry_after is not None and (self.status is None or self.retry_after < 0):
            raise ValueError("retry_after needs a status and must not be negative")


class HeaderMap(Mapping[str, str]):
    """Request headers looked up case-insensitively, as the verification recipe requires."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = {name.lower(): value for name, value in items}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def check_tokens(tokens: Iterable[str]) -> dict[str, str]:
    """Tokens by key id; ValueError names a token that could not have come from Valohai."""
    by_key: dict[str, str] = {}
    for number, token in enumerate(tokens, start=1):
        if not TOKEN_PATTERN.fullmatch(token):
            raise ValueError(
                f"token {number} is not a setup token: 32-256 letters, digits or ._~- expected"
            )
        by_key[key_id(token)] = token
    if not by_key:
        raise ValueError("give at least one setup token")
    return by_key


class Receiver:
    def __init__(
        self,
        tokens: Iterable[str],
        journal: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = check_tokens(tokens)
        self._journal = journal
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        #: Set when reset() ends the era a request began in: what it delayed is then dropped.
        self._era = threading.Event()
        self._events: list[ReceivedEvent] = []
        self._attempts: list[Attempt] = []
        self._bindings: dict[str, Binding] = {}
        self._faults: deque[Fault] = deque()

    def receive(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """Handle one POST to the events endpoint: (status, JSON answer, extra headers)."""
        event_type = headers.get("X-Valohai-Event-Type") or ""
        idempotency_key = headers.get("X-Valohai-Idempotency-Key") or ""

        def answer(status: int, outcome: str, payload: dict[str, Any], **extra: str) -> Answer:
            with self._lock:
                self._attempts.append(
                    Attempt(
                        self._clock(),
                        event_type,
                        idempotency_key,
                        status,
                        outcome,
                        headers.get("User-Agent") or "",
                    )
                )
            return status, payload, extra

        with self._lock:
            era = self._era
        fault = self._take_fault()
        if fault is not None and fault.delay:
            era.wait(fault.delay)
            if era.is_set() and not self._stopping.is_set():
                # Reset while it waited: it belongs to before, and must not show up after.
                return 503, {"error": "the stand-in was reset"}, {}
        if fault is not None and fault.status is not None:
            extra = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return answer(fault.status, "injected fault", {"error": "injected fault"}, **extra)
        try:
            signer = verify_request(headers, body, self._tokens, now=self._clock())
        except SignatureError as error:
            return answer(401, f"unauthorized: {error}", {"error": str(error)})
        problem, event = _parse(body, event_type, idempotency_key)
        if problem:
            return answer(400, f"bad request: {problem}", {"error": problem})
        with self._lock:
            status, outcome, payload = self._accept(signer, event)
        return answer(status, outcome, payload)

    def events(self, event_type: str | None = None) -> list[ReceivedEvent]:
        with self._lock:
            return [e for e in self._events if event_type in (None, e.type)]

    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def bindings(self) -> dict[str, Binding]:
        with self._lock:
            return dict(self._bindings)

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def reset(self) -> None:
        """Forget events, attempts, bindings and pending faults (the tokens stay); a request
        still held by a delay is answered 503 at once and not recorded."""
        with self._lock:
            self._era.set()
            self._era = threading.Event()
            self._events.clear()
            self._attempts.clear()
            self._bindings.clear()
            self._faults.clear()

    def stop(self) -> None:
        """End delayed answers at once (used when the server stops)."""
        self._stopping.set()
        with self._lock:
            self._era.set()

    def _take_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.count -= 1
            if fault.count == 0:
                self._faults.popleft()
            return fault

    def _accept(self, signer: str, event: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
        """Record a verified event once; 409 when its queue address is another setup's."""
        key = event["id"]
        if any(e.idempotency_key == key for e in self._events):
            return 200, "duplicate", {"status": "duplicate"}
        conflict = self._apply_binding(signer, event)
        if conflict is not None:
            return 409, f"conflict: {conflict}", {"error": conflict}
        received = ReceivedEvent(self._clock(), signer, event["type"], key, event)
        self._events.append(received)
        self._write_journal(received)
        return 202, "accepted", {"status": "accepted"}

    def _apply_binding(self, signer: str, event: dict[str, Any]) -> str | None:
        """Bind or unbind a queue address; a message when another setup holds it."""
        if event["type"] not in ("queue_address.registered", "queue_address.deregistered"):
            return None
        data, stack = event.get("data") or {}, event.get("stack") or {}
        address, owner = str(data.get("queue_address")), (signer, str(stack.get("id")))
        current = self._bindings.get(address)
        if event["type"] == "queue_address.registered":
            if current is not None and (current.key_id, current.stack_id) != owner:
                return f"queue address {address} is bound to another setup"
            self._bindings[address] = Binding(str(data.get("public_ip")), *owner)
        elif current is not None and (current.key_id, current.stack_id) == owner:
            del self._bindings[address]
        return None

    def _write_journal(self, received: ReceivedEvent) -> None:
        if self._journal is not None:
            with self._journal.open("a", encoding="utf-8") as journal:
                journal.write(json.dumps(asdict(received), sort_keys=True) + "\n")


def _parse(body: bytes, event_type: str, idempotency_key: str) -> tuple[str | None, dict[str, Any]]:
    try:
        event = json.loads(body)
    except ValueError:
        return "the body is not JSON", {}
    if not isinstance(event, dict):
        return "the body is not a JSON object", {}
    if event.get("type") != event_type or event.get("id") != idempotency_key:
        return "X-Valohai-Event-Type and X-Valohai-Idempotency-Key must equal type and id", {}
    if event_type not in EVENT_TYPES:
        return f"unknown event type {event_type!r}", {}
    if event.get("version") != CONTRACT_VERSION:
        return (
            f"unsupported contract version {event.get('version')!r} (this is {CONTRACT_VERSION})",
            {},
        )
    return None, event
