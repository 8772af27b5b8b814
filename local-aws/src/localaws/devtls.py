"""One certificate authority for every local HTTPS listener (the local AWS and the services
tested with it).

Local servers speak TLS because the code under test insists on it (a custom resource PUTs its
answer to CloudFormation's bucket over HTTPS; code calling services outside AWS may accept
HTTPS only). Clients trust them through a bundle of the system's CAs plus this one, passed as
SSL_CERT_FILE; nothing is added to the machine's trust store.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

LOCAL_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class LocalCa:
    """A CA kept in `directory` (ca.pem, ca-key.pem) and a trust bundle next to it."""

    directory: Path
    ca: trustme.CA

    @property
    def bundle(self) -> Path:
        """System CAs plus the local CA: the value for SSL_CERT_FILE / AWS_CA_BUNDLE."""
        return self.directory / "bundle.pem"

    def server_context(self, *hosts: str) -> ssl.SSLContext:
        """A server-side TLS context with a fresh certificate for `hosts` (loopback by default)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*(hosts or LOCAL_HOSTS)).configure_cert(context)
        return context


def load_or_create(directory: Path) -> LocalCa:
    """Reuse the CA in `directory`, or create it; either way (re)write the trust bundle."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        ca = trustme.CA.from_pem(cert_path.read_bytes(), key_path.read_bytes())
    else:
        ca = trustme.CA(organization_name="localaws development CA")
        _write_private(key_path, ca.private_key_pem.bytes())
        _write_private(cert_path, ca.cert_pem.bytes())
    local = LocalCa(directory, ca)
    system = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    system_pem = system.read_bytes() if system.exists() else b""
    _write_private(local.bundle, system_pem + b"\n" + ca.cert_pem.bytes())
    return local


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600, so concurrent starts never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
