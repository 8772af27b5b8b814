"""Receiver-side verification of a Valohai Hybrid event: the recipe the contract documents.

docs/valohai-event-contract.md shows the code below (everything after this docstring and the
__future__ import) verbatim, and a test keeps the two identical: the stand-in runs exactly
what an outside receiver is told to run.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping

TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """Not signed by a known setup token, or signed too long ago: answer 401."""


def key_id(token: str) -> str:
    """X-Valohai-Key-Id of a token: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def verify_request(
    headers: Mapping[str, str],
    body: bytes,
    tokens_by_key_id: Mapping[str, str],
    now: float | None = None,
) -> str:
    """Check the signature and timestamp of a request; return the key id that signed it.

    `headers` must look names up case-insensitively (every web framework's header object
    does); `body` is the raw request body, byte for byte as received, before any JSON parsing.
    """
    token = tokens_by_key_id.get(headers.get("X-Valohai-Key-Id") or "")
    if token is None:
        raise SignatureError("unknown X-Valohai-Key-Id")
    timestamp = headers.get("X-Valohai-Timestamp") or ""
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise SignatureError("missing or malformed X-Valohai-Timestamp")
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_SECONDS:
        raise SignatureError(f"X-Valohai-Timestamp is more than {TOLERANCE_SECONDS} s off")
    message = timestamp.encode() + b"." + body
    expected = "v1=" + hmac.new(token.encode(), message, hashlib.sha256).hexdigest()
    offered = headers.get("X-Valohai-Signature") or ""
    if not hmac.compare_digest(offered.encode(), expected.encode()):
        raise SignatureError("X-Valohai-Signature does not match")
    return key_id(token)
