"""What an attacker can do with requests taken off the wire of a real launch: replay them,
change them, or sign their own. Valohai's side (the stand-in, which runs the verification code
docs/valohai-event-contract.md publishes) accepts each event once and refuses the rest.

The recipe itself, the 300 s window and forged signatures of every shape are proven against
the documented code in tests/unit/functions/test_event_contract.py and
tests/unit/standin/test_standin_receiver.py; this adds the same checks on requests the
deployed functions really sent, over HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import urllib3

from tests.support.reliability import Launcher
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.local.standin.receiver import EVENTS_PATH, Answer
from valohai_hybrid.local.standin.verify import key_id

Captured = tuple[dict[str, str], bytes]
ATTACKER_TOKEN = "attacker-token-9bQ4xZ7mW2kP5rT8vN3c"


@pytest.fixture
def captured(
    launcher: Launcher, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[Captured]]:
    """The requests the functions sent for one launch that Valohai accepted, as received."""
    requests: list[Captured] = []
    receive = standin.receiver.receive

    def recording(headers: Mapping[str, str], body: bytes) -> Answer:
        answer = receive(headers, body)
        if answer[0] == 202:
            requests.append(({k: headers[k] for k in headers}, body))
        return answer

    monkeypatch.setattr(standin.receiver, "receive", recording)
    workers = launcher.launch(launcher.parameters(standin))
    assert workers.succeeded, workers.errors
    assert [json.loads(body)["type"] for _, body in requests] == [
        "queue_address.registered",
        "setup.created",
    ]
    yield requests
    assert launcher.terminate(workers).succeeded


def _post(standin: StandIn, headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
    pool = urllib3.PoolManager(ca_certs=str(standin.ca_bundle))
    response = pool.request(
        "POST", standin.url + EVENTS_PATH, body=body, headers=dict(headers), retries=False
    )
    return response.status, json.loads(response.data)


def test_a_replayed_request_is_answered_as_a_duplicate_and_not_recorded_again(
    standin: StandIn, captured: list[Captured]
) -> None:
    received = standin.receiver.events()

    answers = [_post(standin, headers, body) for headers, body in captured]

    assert answers == [(200, {"status": "duplicate"})] * len(captured)
    assert standin.receiver.events() == received


def _changed_body(captured: list[Captured]) -> Captured:
    headers, body = captured[0]
    event = json.loads(body)
    event["data"]["public_ip"] = "198.51.100.66"  # the attacker's address
    return headers, json.dumps(event).encode()


def _swapped_bodies(captured: list[Captured]) -> Captured:
    return captured[0][0], captured[1][1]


def _moved_timestamp(captured: list[Captured]) -> Captured:
    headers, body = captured[0]
    stamp = int(headers["x-valohai-timestamp"]) + 1
    return {**headers, "x-valohai-timestamp": str(stamp)}, body


def _signed_by_attacker(captured: list[Captured]) -> Captured:
    """The real key id, with a signature made with a token that is not the setup's."""
    headers, body = _changed_body(captured)
    message = headers["x-valohai-timestamp"].encode() + b"." + body
    signature = hmac.new(ATTACKER_TOKEN.encode(), message, hashlib.sha256).hexdigest()
    return {**headers, "x-valohai-signature": f"v1={signature}"}, body


def _attackers_key(captured: list[Captured]) -> Captured:
    headers, body = _signed_by_attacker(captured)
    return {**headers, "x-valohai-key-id": key_id(ATTACKER_TOKEN)}, body


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_changed_body, "X-Valohai-Signature does not match"),
        (_swapped_bodies, "X-Valohai-Signature does not match"),
        (_moved_timestamp, "X-Valohai-Signature does not match"),
        (_signed_by_attacker, "X-Valohai-Signature does not match"),
        (_attackers_key, "unknown X-Valohai-Key-Id"),
    ],
    ids=["changed-body", "another-events-body", "moved-timestamp", "forged", "unknown-key"],
)
def test_a_changed_or_forged_request_is_refused(
    standin: StandIn, captured: list[Captured], tamper: Any, problem: str
) -> None:
    received = standin.receiver.events()

    status, answer = _post(standin, *tamper(captured))

    assert (status, answer) == (401, {"error": problem})
    assert standin.receiver.events() == received
    registration = json.loads(captured[0][1])["data"]
    bound = standin.receiver.bindings()[registration["queue_address"]]
    assert bound.public_ip == registration["public_ip"]
