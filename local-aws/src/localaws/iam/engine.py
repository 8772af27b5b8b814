"""Authorization decisions from a real IAM policy engine, run as one long-lived Node process.

The engine is `@cloud-copilot/iam-simulate` (pinned in `node/package-lock.json`, installed by
`make install`); `node/decide.mjs` answers JSON lines. This module starts that process lazily,
talks to it from any thread, restarts it if it dies, and caches decisions: a request is keyed by
its principal, action, resource, context and the digests of every policy it is judged against,
so a changed policy (a new document, hence a new digest) is never answered from the cache.
A policy document crosses the pipe once per process; later checks name it by digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).parent / "node"
SCRIPT = NODE_DIR / "decide.mjs"
#: Longest wait for the engine's answer: a hung engine must not hang the server with it.
ANSWER_TIMEOUT = 30.0
START_TIMEOUT = 30.0

ContextValue = str | tuple[str, ...]


class EngineError(RuntimeError):
    """The engine could not run, or could not judge a request (e.g. an action it does not know)."""


@dataclass(frozen=True, eq=False)
class Policy:
    """A policy document as IAM stores it, and the name denials report (a managed policy's ARN,
    or the inline policy's name)."""

    name: str
    document: str | Mapping[str, Any]

    @cached_property
    def parsed(self) -> Any:
        if isinstance(self.document, str):
            return json.loads(self.document)
        return self.document

    @cached_property
    def digest(self) -> str:
        text = (
            self.document
            if isinstance(self.document, str)
            else json.dumps(self.document, sort_keys=True)
        )
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Request:
    """One authorization check: who asks to do what to which resource, with which policies.

    `principal` is the caller as AWS names it (a user ARN, an assumed-role session ARN);
    `resource_account` owns the resource (cross-account requests need both sides' consent);
    `resource` is `*` for actions that take no resource.
    """

    principal: str
    action: str
    resource: str
    resource_account: str
    identity_policies: tuple[Policy, ...] = ()
    resource_policy: Policy | None = None
    permission_boundary: Policy | None = None
    context: tuple[tuple[str, ContextValue], ...] = ()

    @staticmethod
    def context_of(
        values: Mapping[str, str | Iterable[str]],
    ) -> tuple[tuple[str, ContextValue], ...]:
        """A request context in the hashable form `Request.context` takes."""
        return tuple(
            sorted(
                (key, value if isinstance(value, str) else tuple(value))
                for key, value in values.items()
            )
        )

    @cached_property
    def key(self) -> tuple[Any, ...]:
        return (
            self.principal,
            self.action,
            self.resource,
            self.resource_account,
            self.context,
            tuple((p.name, p.digest) for p in self.identity_policies),
            self.resource_policy.digest if self.resource_policy else None,
            self.permission_boundary.digest if self.permission_boundary else None,
        )

    def policies(self) -> Iterable[Policy]:
        yield from self.identity_policies
        if self.resource_policy:
            yield self.resource_policy
        if self.permission_boundary:
            yield self.permission_boundary

    def wire(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "account": self.resource_account,
            "context": {k: list(v) if isinstance(v, tuple) else v for k, v in self.context},
            "identity": [[p.name, p.digest] for p in self.identity_policies],
            "resourcePolicy": self.resource_policy.digest if self.resource_policy else None,
            "boundary": (
                [[self.permission_boundary.name, self.permission_boundary.digest]]
                if self.permission_boundary
                else []
            ),
        }


# How AWS's AccessDenied messages name each kind of policy ("Troubleshoot access denied error
# messages", IAM User Guide).
_POLICY_TYPES = {
    "identity": "identity-based policy",
    "resource": "resource-based policy",
    "pb": "permissions boundary",
    "session": "session policy",
    "scp": "service control policy",
    "rcp": "resource control policy",
    "vpce": "VPC endpoint policy",
}
# Which denial a message names when several apply: guardrails first, as AWS reports them.
_ORDER = ("scp", "rcp", "vpce", "pb", "session", "identity", "resource")


@dataclass(frozen=True)
class Denial:
    """Why a request was denied: the kind of policy, explicit or not, and (for an explicit
    deny) the policy's name and the statement's Sid."""

    policy_type: str
    explicit: bool
    policy: str | None = None
    statement_id: str | None = None


@dataclass(frozen=True)
class Decision:
    """The engine's answer: Allowed, ExplicitlyDenied or ImplicitlyDenied, and why."""

    result: str
    denials: tuple[Denial, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"

    @property
    def reason(self) -> Denial | None:
        """The denial an AWS error message names: an explicit deny wins over a missing allow."""
        if not self.denials:
            return None
        return min(
            self.denials,
            key=lambda d: (not d.explicit, _ORDER.index(d.policy_type)),
        )

    def message(self, request: Request) -> str:
        """AWS's AccessDenied message for this decision (IAM User Guide, "Troubleshoot access
        denied error messages"), e.g. "User: ARN is not authorized to perform: ACTION on
        resource: ARN because no identity-based policy allows the ACTION action"."""
        on = "" if request.resource == "*" else f" on resource: {request.resource}"
        text = f"User: {request.principal} is not authorized to perform: {request.action}{on}"
        reason = self.reason
        if reason is None:
            return text
        kind = _POLICY_TYPES[reason.policy_type]
        if not reason.explicit:
            return f"{text} because no {kind} allows the {request.action} action"
        article = "an" if kind[0] in "aeiou" else "a"
        named = f": {reason.policy}" if reason.policy and reason.policy.startswith("arn:") else ""
        return f"{text} with an explicit deny in {article} {kind}{named}"


def _decision(answer: Mapping[str, Any]) -> Decision:
    denials = tuple(
        Denial(
            policy_type=d["policyType"],
            explicit=d["denialType"] == "Explicit",
            policy=d.get("policyIdentifier") or d.get("identifier"),
            statement_id=d.get("statementId"),
        )
        for d in answer["denials"]
        if d["policyType"] in _POLICY_TYPES
    )
    return Decision(answer["result"], denials)


@dataclass
class EngineStats:
    """Counters for benchmarks: how many checks the cache answered, and how many went out."""

    hits: int = 0
    misses: int = 0
    round_trips: int = 0
    starts: int = 0


class PolicyEngine:
    """The process and its decision cache. Thread-safe; `close()` stops the process."""

    def __init__(self, cache_size: int = 100_000) -> None:
        self.cache_size = cache_size
        self.stats = EngineStats()
        self._cache: OrderedDict[tuple[Any, ...], Decision] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._sent: set[str] = set()
        self._next_id = 0

    def decide(self, request: Request) -> Decision:
        return self.decide_all([request])[0]

    def decide_all(self, requests: Sequence[Request]) -> list[Decision]:
        """Decisions for every request, the uncached ones in one round trip. Raises
        EngineError when the engine cannot judge one (an unknown action, a malformed policy)."""
        decisions: list[Decision | None] = []
        missing: dict[tuple[Any, ...], Request] = {}
        with self._cache_lock:
            for request in requests:
                cached = self._cache.get(request.key)
                if cached is not None:
                    self._cache.move_to_end(request.key)
                    self.stats.hits += 1
                else:
                    missing.setdefault(request.key, request)
                    self.stats.misses += 1
                decisions.append(cached)
        if missing:
            answers = self._ask(list(missing.values()))
            with self._cache_lock:
                for key, decision in zip(missing, answers, strict=True):
                    self._cache[key] = decision
                    self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            fresh = dict(zip(missing, answers, strict=True))
            decisions = [d or fresh[r.key] for d, r in zip(decisions, requests, strict=True)]
        return [d for d in decisions if d is not None]

    def close(self) -> None:
        with self._io_lock:
            self._stop()

    def _ask(self, requests: list[Request]) -> list[Decision]:
        with self._io_lock:
            try:
                answers = self._round_trip(requests)
            except OSError:
                # The process died: once more with a fresh one, then give up loudly.
                try:
                    answers = self._round_trip(requests)
                except OSError as again:
                    raise EngineError(f"the IAM engine failed twice: {again}") from None
        decisions = []
        for request, answer in zip(requests, answers, strict=True):
            if "error" in answer:
                raise EngineError(
                    f"the IAM engine cannot judge {request.action} on {request.resource} "
                    f"for {request.principal}: {answer['error']}"
                )
            decisions.append(_decision(answer))
        return decisions

    def _round_trip(self, requests: list[Request]) -> list[dict[str, Any]]:
        process = self._running()
        policies = {}
        for request in requests:
            for policy in request.policies():
                if policy.digest not in self._sent:
                    policies[policy.digest] = policy.parsed
        self._next_id += 1
        line = json.dumps(
            {"id": self._next_id, "policies": policies, "checks": [r.wire() for r in requests]}
        )
        assert process.stdin is not None
        try:
            process.stdin.write(line.encode() + b"\n")
            process.stdin.flush()
            answer = json.loads(self._read_line(ANSWER_TIMEOUT))
        except (OSError, ValueError):
            self._stop()
            raise OSError("the IAM engine stopped answering") from None
        self.stats.round_trips += 1
        if answer.get("id") != self._next_id:
            self._stop()
            raise EngineError(f"the IAM engine answered out of turn: {answer}")
        self._sent.update(policies)
        decisions: list[dict[str, Any]] = answer["decisions"]
        return decisions

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._stop()
        node = shutil.which("node")
        if node is None:
            raise EngineError(
                "the local AWS's IAM engine needs Node.js 20 or later on PATH: install it "
                "(e.g. apt-get install nodejs) and run `make install`"
            )
        if not (NODE_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
            raise EngineError(
                f"the IAM engine's packages are not installed in {NODE_DIR}: run `make install` "
                "(it runs `npm ci` there)"
            )
        self._process = subprocess.Popen(
            [node, str(SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=NODE_DIR,
        )
        self.stats.starts += 1
        self._buffer = b""
        self._sent = set()
        try:
            ready = json.loads(self._read_line(START_TIMEOUT))
        except (OSError, ValueError):
            ready = {}
        if not ready.get("ready"):
            error = self._stderr_tail()
            self._stop()
            raise EngineError(f"the IAM engine did not start: {error or 'no output'}")
        return self._process

    def _read_line(self, timeout: float) -> bytes:
        assert self._process is not None
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OSError(f"the IAM engine gave no answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise OSError(f"the IAM engine exited: {self._stderr_tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _stderr_tail(self) -> str:
        process = self._process
        if process is None or process.stderr is None or process.poll() is None:
            return ""
        return process.stderr.read().decode(errors="replace")[-2000:].strip()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin:
            with suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


_engine: PolicyEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> PolicyEngine:
    """The server's one engine (its process starts at the first check)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = PolicyEngine()
        return _engine


def shutdown() -> None:
    """Stop the server's engine process, if it ever started."""
    global _engine
    with _engine_lock:
        engine, _engine = _engine, None
    if engine is not None:
        engine.close()
