"""Drive a stand-in in another process (the demo, integration tests) over its control API."""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path
from typing import Any


class StandInClient:
    def __init__(self, url: str, ca_bundle: Path) -> None:
        self._url = url.rstrip("/")
        self._context = ssl.create_default_context(cafile=str(ca_bundle))

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        query = f"?type={event_type}" if event_type else ""
        events: list[dict[str, Any]] = self._call("GET", f"/_standin/events{query}")["events"]
        return events

    def attempts(self) -> list[dict[str, Any]]:
        attempts: list[dict[str, Any]] = self._call("GET", "/_standin/attempts")["attempts"]
        return attempts

    def bindings(self) -> dict[str, dict[str, str]]:
        bindings: dict[str, dict[str, str]] = self._call("GET", "/_standin/bindings")["bindings"]
        return bindings

    def inject(
        self,
        count: int,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Make the next `count` requests get `status` (and Retry-After), or wait `delay` s."""
        spec = {"count": count, "status": status, "retry_after": retry_after, "delay": delay}
        self._call("POST", "/_standin/faults", spec)

    def reset(self) -> None:
        self._call("POST", "/_standin/reset", {})

    def _call(
        self, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 (an https URL we were given)
            self._url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, context=self._context, timeout=10) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
        return answer
