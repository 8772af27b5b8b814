"""The stand-in over HTTPS: the events endpoint, the control API, and the command line."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from valohai_cr.events import EventType, build, request_headers

from valohai_hybrid.local.standin import StandIn, StandInClient

TOKEN = "stand-in-token-0123456789abcdefghijklmnop"
STACK = "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1"


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    with StandIn([TOKEN], tmp_path_factory.mktemp("standin")) as server:
        yield server


@pytest.fixture
def client(standin: StandIn) -> StandInClient:
    control = StandInClient(standin.url, standin.ca_bundle)
    control.reset()
    return control


def post(
    url: str, ca_bundle: Path, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], dict[str, object]]:
    request = urllib.request.Request(
        url + "/api/v0/hybrid-aws/events", data=body, headers=headers, method="POST"
    )
    context = ssl.create_default_context(cafile=str(ca_bundle))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def send(
    standin: StandIn, key: str = "a" * 64, token: str = TOKEN
) -> tuple[int, dict[str, str], dict[str, object]]:
    event = build(
        EventType.SETUP_CREATED, key, stack_id=STACK, data={}, occurred_at=datetime.now(UTC)
    )
    return post(
        standin.url, standin.ca_bundle, event.body, request_headers(event, token, int(time.time()))
    )


def test_signed_events_are_accepted_once_over_https(
    standin: StandIn, client: StandInClient
) -> None:
    assert send(standin)[0] == 202
    assert send(standin)[0] == 200

    [event] = client.events()
    assert event["type"] == "setup.created"
    assert client.events("queue_address.registered") == []
    assert [a["outcome"] for a in client.attempts()] == ["accepted", "duplicate"]


def test_an_unknown_token_is_401(standin: StandIn, client: StandInClient) -> None:
    status, _, payload = send(standin, token="x" * 40)

    assert (status, payload) == (401, {"error": "unknown X-Valohai-Key-Id"})


def test_faults_are_injected_through_the_control_api(
    standin: StandIn, client: StandInClient
) -> None:
    client.inject(1, status=429, retry_after=7)
    client.inject(1, delay=0.2, status=503)

    first, second, third = send(standin, "1" * 64), send(standin, "2" * 64), send(standin, "3" * 64)

    assert (first[0], first[1]["Retry-After"]) == (429, "7")
    assert second[0] == 503
    assert third[0] == 202


def test_a_nonsensical_fault_and_an_unknown_route_are_refused(
    standin: StandIn, client: StandInClient
) -> None:
    with pytest.raises(urllib.error.HTTPError) as bad_fault:
        client.inject(0, status=500)
    context = ssl.create_default_context(cafile=str(standin.ca_bundle))
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(f"{standin.url}/_standin/nothing", context=context, timeout=10)

    assert bad_fault.value.code == 400
    assert unknown.value.code == 404


def test_a_huge_body_is_413(standin: StandIn, client: StandInClient) -> None:
    status, _, _ = post(
        standin.url, standin.ca_bundle, b"x" * ((1 << 20) + 1), {"Content-Type": "application/json"}
    )

    assert status == 413


def test_bindings_are_visible(standin: StandIn, client: StandInClient) -> None:
    event = build(
        EventType.QUEUE_ADDRESS_REGISTERED,
        "b" * 64,
        stack_id=STACK,
        data={"queue_address": "acme.vqueue.net", "public_ip": "203.0.113.10"},
        occurred_at=datetime.now(UTC),
    )
    post(
        standin.url, standin.ca_bundle, event.body, request_headers(event, TOKEN, int(time.time()))
    )

    assert client.bindings()["acme.vqueue.net"]["public_ip"] == "203.0.113.10"


def test_the_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "valohai_hybrid.local.standin",
            "--token",
            TOKEN,
            "--state-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert json.loads((tmp_path / "standin.json").read_text()) == info
        assert info["url"].startswith("https://127.0.0.1:")
        assert Path(info["ca_bundle"]) == tmp_path / "ca" / "bundle.pem"
        assert StandInClient(info["url"], Path(info["ca_bundle"])).events() == []
    finally:
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert not (tmp_path / "standin.json").exists()


def test_the_command_line_refuses_a_token_that_is_not_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "valohai_hybrid.local.standin",
            "--token",
            "short",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "token 1 is not a setup token" in result.stderr
