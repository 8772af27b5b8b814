"""DNS names and IPv4 addresses given as properties, checked strictly with a clear message."""

from __future__ import annotations

import ipaddress
import re

from valohai_cr.errors import PropertyError
from valohai_cr.properties import shown

EXAMPLE_ADDRESS = "acme.vqueue.net"
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def dns_name(value: str, prop: str = "QueueAddress") -> str:
    """The lower-cased host name, or a PropertyError that says what is wrong and what is right."""
    problem = _dns_problem(value)
    if problem:
        raise PropertyError(
            f"{prop} {shown(value)} {problem}: "
            f"use the DNS name Valohai gave you, such as {EXAMPLE_ADDRESS}"
        )
    return value.lower()


def _dns_problem(value: str) -> str | None:
    if not value:
        return "is empty"
    if value != value.strip() or " " in value:
        return "contains spaces"
    if "://" in value:
        return "is a URL: drop the scheme"
    if "/" in value or ":" in value:
        return "contains a port or a path: drop it"
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return "is an IP address, not a DNS name"
    if value.endswith("."):
        return "ends with a dot: drop it"
    if len(value) > 253:
        return "is longer than 253 characters"
    labels = value.lower().split(".")
    if len(labels) < 2:
        return "is not a fully qualified name (it needs a domain, like the .vqueue.net part)"
    for label in labels:
        if not label:
            return "has an empty label (two dots in a row, or a leading dot)"
        if len(label) > 63:
            return f"has a label longer than 63 characters ({label[:20]}...)"
        if not _LABEL.fullmatch(label):
            return (
                f"has an invalid label {label!r} (only letters, digits and inner hyphens; "
                "no *, _ or other characters)"
            )
    if labels[-1].isdigit():
        return "ends with a numeric label, which no top-level domain is"
    return None


def public_ipv4(value: str, prop: str = "PublicIp") -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise PropertyError(
            f"{prop} must be an IPv4 address such as 203.0.113.10 (the queue's Elastic IP), "
            f"got {shown(value)}"
        ) from None
