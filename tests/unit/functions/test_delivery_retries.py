"""The sender's retry rules, with a scripted transport and a fake clock (no waiting)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from valohai_cr.delivery import Delivery, Outcome, Response, Sender, TransportError, events_url
from valohai_cr.errors import PropertyError
from valohai_cr.events import Event, EventType, build
from valohai_cr.work import Work

from valohai_hybrid.local.standin.receiver import HeaderMap
from valohai_hybrid.local.standin.verify import key_id, verify_request

TOKEN = "t" * 40
API = "https://valohai.example"


class Clock:
    """Wall clock and sleep in one: sleeping only moves the time on."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """A transport that answers from a list (an exception is raised instead of answered)."""

    def __init__(
        self, clock: Clock, answers: Sequence[Response | Exception], cost: float = 0.1
    ) -> None:
        self.clock, self.answers, self.cost = clock, list(answers), cost
        self.requests: list[tuple[str, bytes, Mapping[str, str], float]] = []
        self.sent_at: list[float] = []

    def __call__(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> Response:
        self.requests.append((url, body, headers, timeout))
        self.sent_at.append(self.clock.now)
        self.clock.now += min(self.cost, timeout)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok() -> Response:
    return Response(202, None)


def status(code: int, retry_after: str | None = None) -> Response:
    return Response(code, retry_after)


def an_event() -> Event:
    return build(
        EventType.SETUP_CREATED,
        "k" * 64,
        stack_id="arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1",
        data={},
        occurred_at=datetime.now(UTC),
    )


def deliver(
    answers: Sequence[Response | Exception], seconds: float = 60.0, cost: float = 0.1
) -> tuple[Delivery, Script, Clock]:
    """Deliver with the jitter pinned to its ceiling, so the waits are predictable."""
    clock = Clock()
    script = Script(clock, answers, cost)
    sender = Sender(script, wall_clock=clock, sleep=clock.sleep, jitter=lambda ceiling: ceiling)
    return sender.deliver(an_event(), API, TOKEN, Work(seconds, clock=clock)), script, clock


@pytest.mark.parametrize(
    "failure",
    [
        TransportError("could not connect"),
        status(408),
        status(429),
        status(500),
        status(502),
        status(503),
    ],
    ids=["connection", "408", "429", "500", "502", "503"],
)
def test_transient_failures_are_retried_with_growing_jittered_waits(
    failure: Response | Exception,
) -> None:
    result, script, clock = deliver([failure, failure, failure, ok()])

    assert result.outcome is Outcome.DELIVERED
    assert len(script.requests) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("code", [301, 400, 401, 403, 404, 409, 413, 422])
def test_other_statuses_are_final_after_one_attempt(code: int) -> None:
    result, script, clock = deliver([status(code), ok()])

    assert result.outcome is Outcome.REJECTED
    assert result.detail == f"HTTP {code}"
    assert len(script.requests) == 1
    assert clock.sleeps == []


def test_backoff_is_capped() -> None:
    _, _, clock = deliver([status(500)] * 8 + [ok()], seconds=600)

    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    clock = Clock()
    ceilings: list[float] = []

    def quarter(ceiling: float) -> float:
        ceilings.append(ceiling)
        return ceiling / 4

    sender = Sender(
        Script(clock, [status(500), status(500), ok()]),
        wall_clock=clock,
        sleep=clock.sleep,
        jitter=quarter,
    )

    sender.deliver(an_event(), API, TOKEN, Work(60, clock=clock))

    assert ceilings == [0.5, 1.0]
    assert clock.sleeps == [0.125, 0.25]


@pytest.mark.parametrize("header", ["7", "date"])
def test_retry_after_is_a_lower_bound_on_the_wait(header: str) -> None:
    clock = Clock()
    value = (
        header
        if header != "date"
        else format_datetime(datetime.fromtimestamp(clock.now + 7.1, UTC), usegmt=True)
    )

    result, _, clock = deliver([status(429, value), ok()])

    assert result.outcome is Outcome.DELIVERED
    assert clock.sleeps[0] >= 6.9


def test_a_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    result, script, clock = deliver([status(503, "120"), ok()], seconds=30)

    assert result.outcome is Outcome.UNDELIVERED
    assert "HTTP 503" in result.detail
    assert len(script.requests) == 1
    assert clock.sleeps == []


def test_attempts_and_waits_stay_within_the_budget() -> None:
    result, script, clock = deliver([TransportError("no answer")], seconds=20, cost=3.0)

    assert result.outcome is Outcome.UNDELIVERED
    assert clock.now - 1_700_000_000.0 <= 20
    assert all(timeout <= 10 for *_, timeout in script.requests)
    assert "gave up after" in result.detail


def test_a_hanging_receiver_gets_at_most_the_time_that_is_left() -> None:
    _, script, _ = deliver([TransportError("no answer")], seconds=4, cost=100)

    assert [round(timeout, 1) for *_, timeout in script.requests] == [4.0]


def test_each_attempt_is_signed_afresh_and_verifies() -> None:
    _, script, _ = deliver([status(500), status(500), status(500), ok()])

    for (url, body, headers, _), sent_at in zip(script.requests, script.sent_at, strict=True):
        assert url == API + "/api/v0/hybrid-aws/events"
        assert headers["X-Valohai-Timestamp"] == str(int(sent_at))
        verify_request(HeaderMap(headers.items()), body, {key_id(TOKEN): TOKEN}, now=sent_at)
    assert TOKEN not in str(script.requests)


@pytest.mark.parametrize(
    "url",
    [
        "https://app.valohai.com",
        "https://app.valohai.com/",
        "http://localhost:8080",
        "http://127.0.0.1:1",
        "http://[::1]:9",
    ],
)
def test_https_or_loopback_http_is_accepted(url: str) -> None:
    assert events_url(url).endswith("/api/v0/hybrid-aws/events")


@pytest.mark.parametrize(
    "url",
    [
        "http://app.valohai.com",
        "ftp://x",
        "app.valohai.com",
        "https://user@x.com",
        "https://x.com/?a=1",
        "",
    ],
)
def test_anything_else_is_refused_with_an_example(url: str) -> None:
    with pytest.raises(PropertyError, match=r"such as https://app\.valohai\.com"):
        events_url(url)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://10.0.0.5", "not a public address"),
        ("https://169.254.169.254", "not a public address"),
        ("https://192.168.1.1:8443", "not a public address"),
        ("https://100.64.0.1", "not a public address"),
        ("https://[fd00::1]", "not a public address"),
        ("https://0.0.0.0", "not a public address"),
        ("https://app.valohai.com:99999", "port is not 1-65535"),
        ("https://app.valohai.com:0", "with no path"),
        ("https://a..b", "not a public DNS name"),
        ("https://intranet", "not a public DNS name"),
        ("https://" + "a" * 3000 + ".com", "not a public DNS name"),
        ("https://app.valohai.com/api", "with no path"),
    ],
)
def test_unusable_urls_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(PropertyError, match=problem) as refused:
        events_url(url)

    assert len(refused.value.reason) < 256  # a 3,000-character host is not quoted whole


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1:8443", "http://localhost:8080", "https://[::1]", "https://x.localhost"],
)
def test_loopback_is_refused_unless_the_platform_allows_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALLOW_LOOPBACK_VALOHAI_API")

    with pytest.raises(PropertyError, match="only a development platform allows"):
        events_url(url)
