"""The events sent to Valohai: envelope, deterministic idempotency keys, signed request headers.

docs/valohai-event-contract.md is the specification; docs/schemas/ holds one JSON Schema per
event type, and the tests validate everything built here against them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from valohai_cr import __version__

#: 2: one final event per setup; a 4xx other than 408/429 (401 too) is never retried; a Delete
#: waits at most 5 s; setup.updated only for a changed hand-off.
CONTRACT_VERSION = 2
#: Set by the platform stack to the release it was published as (the first of its Releases).
RELEASE_ENV = "VALOHAI_HYBRID_RELEASE"
EVENTS_PATH = "/api/v0/hybrid-aws/events"

_STACK_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):cloudformation:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"stack/(?P<name>[A-Za-z][A-Za-z0-9-]*)/[A-Za-z0-9-]+"
)


class EventType(StrEnum):
    SETUP_CREATED = "setup.created"
    SETUP_UPDATED = "setup.updated"
    SETUP_DELETED = "setup.deleted"
    QUEUE_ADDRESS_REGISTERED = "queue_address.registered"
    QUEUE_ADDRESS_DEREGISTERED = "queue_address.deregistered"
    STACK_STATUS_CHANGED = "stack.status_changed"


class Event(NamedTuple):
    """One event, ready to sign: the body bytes are exactly what the signature covers.

    `stack_id` is the setup it concerns (`stack.id` of the body): its events are redelivered in
    the order they were queued."""

    type: EventType
    key: str
    body: bytes
    stack_id: str


def idempotency_key(event_type: EventType, *parts: str) -> str:
    """Hex SHA-256 of the event type and `parts`, newline-separated: same input, same key."""
    return hashlib.sha256("\n".join((event_type.value, *parts)).encode()).hexdigest()


def stack_of(stack_id: str) -> dict[str, str]:
    """The `stack` object of every event, from a CloudFormation stack ARN."""
    match = _STACK_ARN.fullmatch(stack_id)
    if match is None:
        raise ValueError(f"not a CloudFormation stack ARN: {stack_id!r}")
    return {
        "id": stack_id,
        "name": match["name"],
        "account_id": match["account"],
        "region": match["region"],
    }


def build(
    event_type: EventType,
    key: str,
    *,
    stack_id: str,
    data: Mapping[str, Any],
    occurred_at: datetime,
) -> Event:
    """The envelope around `data`, serialised once (compact, sorted keys): retries send the
    same bytes."""
    body = {
        "version": CONTRACT_VERSION,
        "id": key,
        "type": event_type.value,
        "occurred_at": occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "producer": producer(),
        "stack": stack_of(stack_id),
        "data": dict(data),
    }
    serialised = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return Event(event_type, key, serialised, stack_id)


def producer() -> str:
    """`valohai-hybrid-aws/<release>`: the release that sends, as the platform stack says (the
    package's own version is the fallback, outside a published platform)."""
    return f"valohai-hybrid-aws/{os.environ.get(RELEASE_ENV) or __version__}"


def key_id(token: str) -> str:
    """Names the token without revealing it: the receiver looks up which setup signed."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def signature(token: str, timestamp: int, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 keyed with the token over `"<timestamp>."` followed by the body."""
    digest = hmac.new(token.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def request_headers(event: Event, token: str, timestamp: int) -> dict[str, str]:
    """Every header of a delivery attempt; each attempt signs with its own timestamp."""
    return {
        "Content-Type": "application/json",
        "User-Agent": producer(),
        "X-Valohai-Event-Type": event.type.value,
        "X-Valohai-Idempotency-Key": event.key,
        "X-Valohai-Key-Id": key_id(token),
        "X-Valohai-Signature": signature(token, timestamp, event.body),
        "X-Valohai-Timestamp": str(timestamp),
    }
