"""Settings the extensions share inside one local-AWS server process."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: The longest modelled stabilisation: a local model, not a wait anyone means to sit through.
MAX_STABILIZE_SECONDS = 600.0
STABILIZE_EXAMPLE = "AWS::EC2::Instance=10"
#: What every process of the local AWS signs with: never a real account's key.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
DEFAULT_REGION = "eu-west-1"
_RESOURCE_TYPE = re.compile(r"[A-Za-z0-9]+(::[A-Za-z0-9]+){1,2}")


@dataclass(frozen=True)
class LocalAwsConfig:
    """Where the server listens and where it keeps its files.

    `endpoint_url` is what code running "inside" the local AWS (Lambda handlers, nested
    template URLs) uses to reach the server; `ca_bundle` is a PEM bundle that trusts the local
    certificate authority as well as the system's, for HTTPS listeners such as the
    custom-resource response endpoint and other local services. `stabilize` holds the seconds
    CloudFormation waits, per resource type, before a created or deleted resource is complete
    (see `stabilize_waits`); empty, nothing waits.
    """

    endpoint_url: str
    state_dir: Path
    ca_bundle: Path | None = None
    response_url_base: str | None = None
    stabilize: Mapping[str, float] = field(default_factory=dict)


def stabilize_waits(specs: Iterable[str]) -> dict[str, float]:
    """`TYPE=SECONDS` options (`--stabilize AWS::EC2::Instance=10`), checked.

    In AWS a launch mostly waits: CloudFormation marks an instance CREATE_COMPLETE only once it
    runs, and DELETE_COMPLETE once it is terminated. The local AWS creates resources at once, so
    by default a launch is all CPU work; these waits model the stabilisation, to show whether
    anything serialises stacks that wait at the same time. Raises ValueError naming the fix.
    """
    waits: dict[str, float] = {}
    for spec in specs:
        resource_type, sep, seconds_text = spec.rpartition("=")
        if not sep:
            raise ValueError(
                f"--stabilize {spec!r}: expected TYPE=SECONDS, e.g. {STABILIZE_EXAMPLE}"
            )
        try:
            seconds = float(seconds_text)
        except ValueError:
            raise ValueError(
                f"--stabilize {spec!r}: {seconds_text!r} is not a number of seconds; "
                f"write e.g. {STABILIZE_EXAMPLE}"
            ) from None
        if resource_type in waits:
            raise ValueError(
                f"--stabilize {resource_type} is given twice: give each resource type once"
            )
        waits[resource_type] = seconds
    return check_stabilize(waits)


def check_stabilize(waits: Mapping[str, float]) -> dict[str, float]:
    """The waits, if every type is written as CloudFormation writes it and every wait is a
    number of seconds from 0 to MAX_STABILIZE_SECONDS; else ValueError naming the fix."""
    for resource_type, seconds in waits.items():
        if not _RESOURCE_TYPE.fullmatch(resource_type):
            raise ValueError(
                f"--stabilize {resource_type!r}: not a resource type; write it as in a "
                f"template, e.g. {STABILIZE_EXAMPLE}"
            )
        if not (math.isfinite(seconds) and 0 <= seconds <= MAX_STABILIZE_SECONDS):
            raise ValueError(
                f"--stabilize {resource_type}={seconds:g}: the wait must be from 0 to "
                f"{MAX_STABILIZE_SECONDS:g} seconds"
            )
    return dict(waits)


_config: LocalAwsConfig | None = None


def set_config(config: LocalAwsConfig) -> None:
    global _config
    _config = config


def get_config() -> LocalAwsConfig:
    if _config is None:
        raise RuntimeError("the local AWS is not configured in this process")
    return _config
