"""Settings the extensions share inside one local-AWS server process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalAwsConfig:
    """Where the server listens and where it keeps its files.

    `endpoint_url` is what code running "inside" the local AWS (Lambda handlers, nested
    template URLs) uses to reach the server; `ca_bundle` is a PEM bundle that trusts the local
    certificate authority as well as the system's, for HTTPS listeners such as the
    custom-resource response endpoint and the Valohai stand-in.
    """

    endpoint_url: str
    state_dir: Path
    ca_bundle: Path | None = None
    response_url_base: str | None = None


_config: LocalAwsConfig | None = None


def set_config(config: LocalAwsConfig) -> None:
    global _config
    _config = config


def get_config() -> LocalAwsConfig:
    if _config is None:
        raise RuntimeError("the local AWS is not configured in this process")
    return _config
