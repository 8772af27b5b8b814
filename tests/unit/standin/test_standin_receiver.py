"""The stand-in's receiving logic: what Valohai would accept, refuse and remember."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from valohai_hybrid.local.standin import Fault, Receiver
from valohai_hybrid.local.standin.receiver import HeaderMap, check_tokens
from valohai_hybrid.local.standin.verify import key_id, verify_request

TOKEN = "a" * 32
OTHER = "b" * 40
STACK = "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1"


def signed(
    token: str,
    body: dict[str, Any],
    *,
    timestamp: int | None = None,
    overrides: Mapping[str, str] | None = None,
) -> tuple[HeaderMap, bytes]:
    """A request as the contract describes it (signed here independently of the functions)."""
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(token.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    headers = {
        "x-valohai-key-id": key_id(token),
        "X-VALOHAI-TIMESTAMP": stamp,
        "X-Valohai-Signature": f"v1={signature}",
        "X-Valohai-Event-Type": body.get("type", ""),
        "X-Valohai-Idempotency-Key": body.get("id", ""),
        **(overrides or {}),
    }
    return HeaderMap(headers.items()), raw


def event(
    event_type: str = "setup.created", key: str = "1" * 64, stack: str = STACK, **data: Any
) -> dict[str, Any]:
    return {"version": 2, "id": key, "type": event_type, "stack": {"id": stack}, "data": data}


@pytest.fixture
def receiver(tmp_path: Path) -> Receiver:
    return Receiver([TOKEN, OTHER], journal=tmp_path / "events.jsonl")


def test_a_signed_event_is_accepted_recorded_and_journaled(
    receiver: Receiver, tmp_path: Path
) -> None:
    status, payload, _ = receiver.receive(*signed(TOKEN, event()))

    assert (status, payload) == (202, {"status": "accepted"})
    [received] = receiver.events()
    assert (received.type, received.key_id, received.body["id"]) == (
        "setup.created",
        key_id(TOKEN),
        "1" * 64,
    )
    assert json.loads((tmp_path / "events.jsonl").read_text())["idempotency_key"] == "1" * 64


def test_a_duplicate_is_answered_2xx_and_not_recorded_again(receiver: Receiver) -> None:
    first = receiver.receive(*signed(TOKEN, event()))
    again = receiver.receive(*signed(TOKEN, event()))

    assert (first[0], again[0], again[1]) == (202, 200, {"status": "duplicate"})
    assert len(receiver.events()) == 1
    assert [a.outcome for a in receiver.attempts()] == ["accepted", "duplicate"]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ({"X-Valohai-Key-Id": "0" * 16}, "unknown X-Valohai-Key-Id"),
        ({"X-Valohai-Timestamp": "soon"}, "malformed X-Valohai-Timestamp"),
        ({"X-Valohai-Signature": "v1=" + "0" * 64}, "does not match"),
        ({"X-Valohai-Signature": "v2=abc"}, "does not match"),
        ({"X-Valohai-Signature": "v1=é"}, "does not match"),
    ],
)
def test_what_does_not_verify_is_401(
    receiver: Receiver, tamper: dict[str, str], message: str
) -> None:
    headers, body = signed(TOKEN, event(), overrides=tamper)

    status, payload, _ = receiver.receive(headers, body)

    assert status == 401
    assert message in payload["error"]
    assert receiver.events() == []


@pytest.mark.parametrize("age", [-301, 301])
def test_a_timestamp_more_than_300_s_off_is_401(receiver: Receiver, age: int) -> None:
    status, payload, _ = receiver.receive(*signed(TOKEN, event(), timestamp=int(time.time()) - age))

    assert status == 401
    assert "more than 300 s off" in payload["error"]


def test_a_changed_body_is_401(receiver: Receiver) -> None:
    headers, body = signed(TOKEN, event())

    assert receiver.receive(headers, body.replace(b"setup", b"Setup"))[0] == 401


@pytest.mark.parametrize(
    ("body", "headers", "problem"),
    [
        (event(), {"X-Valohai-Event-Type": "setup.updated"}, "must equal type and id"),
        (event(), {"X-Valohai-Idempotency-Key": "2" * 64}, "must equal type and id"),
        (event("setup.exploded"), {}, "unknown event type"),
        ({**event(), "version": 1}, {}, "unsupported contract version 1"),
    ],
)
def test_inconsistent_requests_are_400(
    receiver: Receiver, body: dict[str, Any], headers: dict[str, str], problem: str
) -> None:
    status, payload, _ = receiver.receive(*signed(TOKEN, body, overrides=headers))

    assert status == 400
    assert problem in payload["error"]


def test_a_body_that_is_not_a_json_object_is_400(receiver: Receiver) -> None:
    headers, _ = signed(TOKEN, event())
    raw = b"[1, 2]"
    stamp = headers["X-Valohai-Timestamp"]
    good = hmac.new(TOKEN.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    fixed = HeaderMap([*headers.items(), ("X-Valohai-Signature", f"v1={good}")])

    assert receiver.receive(fixed, raw)[:2] == (400, {"error": "the body is not a JSON object"})


def registration(
    token: str, key: str, ip: str, stack: str = STACK, kind: str = "registered"
) -> tuple[HeaderMap, bytes]:
    return signed(
        token,
        event(f"queue_address.{kind}", key, stack, queue_address="acme.vqueue.net", public_ip=ip),
    )


def test_an_address_bound_to_another_setup_is_409_and_stays_bound(receiver: Receiver) -> None:
    receiver.receive(*registration(TOKEN, "1" * 64, "203.0.113.10"))

    status, payload, _ = receiver.receive(*registration(OTHER, "2" * 64, "203.0.113.99"))
    same_token_other_stack = receiver.receive(
        *registration(TOKEN, "3" * 64, "203.0.113.99", stack=STACK + "x")
    )

    assert status == 409
    assert "bound to another setup" in payload["error"]
    assert same_token_other_stack[0] == 409
    assert receiver.bindings()["acme.vqueue.net"].public_ip == "203.0.113.10"


def test_the_owner_can_move_and_remove_its_binding_and_nobody_else_can_remove_it(
    receiver: Receiver,
) -> None:
    receiver.receive(*registration(TOKEN, "1" * 64, "203.0.113.10"))
    receiver.receive(*registration(TOKEN, "2" * 64, "203.0.113.20"))
    assert receiver.bindings()["acme.vqueue.net"].public_ip == "203.0.113.20"

    stranger = receiver.receive(*registration(OTHER, "3" * 64, "203.0.113.20", kind="deregistered"))
    assert stranger[0] == 202
    assert "acme.vqueue.net" in receiver.bindings()

    receiver.receive(*registration(TOKEN, "4" * 64, "203.0.113.20", kind="deregistered"))
    assert receiver.bindings() == {}


def test_injected_statuses_come_first_with_retry_after_then_normal_service(
    receiver: Receiver,
) -> None:
    receiver.inject(Fault(count=2, status=429, retry_after=5))
    receiver.inject(Fault(count=1, status=500))

    answers = [receiver.receive(*signed(TOKEN, event()))[::2] for _ in range(4)]

    assert answers == [
        (429, {"Retry-After": "5"}),
        (429, {"Retry-After": "5"}),
        (500, {}),
        (202, {}),
    ]
    assert [a.outcome for a in receiver.attempts()][:3] == ["injected fault"] * 3


def test_an_injected_delay_holds_the_answer(receiver: Receiver) -> None:
    receiver.inject(Fault(count=1, delay=0.3))

    started = time.monotonic()
    status = receiver.receive(*signed(TOKEN, event()))[0]

    assert status == 202
    assert time.monotonic() - started >= 0.3


def test_reset_forgets_everything_but_the_tokens(receiver: Receiver) -> None:
    receiver.receive(*registration(TOKEN, "1" * 64, "203.0.113.10"))
    receiver.inject(Fault(count=5, status=500))

    receiver.reset()

    assert (receiver.events(), receiver.attempts(), receiver.bindings()) == ([], [], {})
    assert receiver.receive(*signed(TOKEN, event()))[0] == 202


def test_a_request_held_by_a_delay_across_a_reset_is_not_recorded_after_it(
    receiver: Receiver,
) -> None:
    """A test that resets the stand-in must not see an earlier test's late request arrive."""
    receiver.inject(Fault(count=1, delay=30))
    answers: list[int] = []
    held = threading.Thread(
        target=lambda: answers.append(receiver.receive(*signed(TOKEN, event()))[0])
    )
    held.start()
    time.sleep(0.2)

    started = time.monotonic()
    receiver.reset()
    held.join(timeout=5)

    assert answers == [503]
    assert time.monotonic() - started < 5
    assert (receiver.events(), receiver.attempts(), receiver.bindings()) == ([], [], {})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"count": 0, "status": 500}, "count must be at least 1"),
        ({"count": 1}, "give a status"),
        ({"count": 1, "status": 200}, "HTTP error status"),
        ({"count": 1, "delay": 1, "retry_after": 3}, "retry_after needs a status"),
    ],
)
def test_a_fault_that_makes_no_sense_is_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault(**spec)


@pytest.mark.parametrize(
    ("tokens", "message"), [([], "at least one"), (["short"], "token 1 is not a setup token")]
)
def test_tokens_must_look_like_setup_tokens(tokens: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_tokens(tokens)


def test_the_verifier_returns_the_key_id_of_the_token_that_signed() -> None:
    headers, body = signed(OTHER, event())

    assert verify_request(headers, body, {key_id(TOKEN): TOKEN, key_id(OTHER): OTHER}) == key_id(
        OTHER
    )
