"""What the doctor tests share: the setup's names, and a real queue machine's port.

A real `redis-server` plays the queue machine: TLS only on 127.0.0.1, a certificate for the
setup's QueueAddress from a CA made here (trustme), and the password the setup's secret holds.
Doctor reaches it with --connect-to and trusts the CA with --ca-bundle; --resolve answers DNS
for the QueueAddress.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from tests.support import common
from valohai_hybrid.catalog import Outcome
from valohai_hybrid.local.standin import StandIn

# A region no other test package uses: the platform's names are fixed per account and region.
REGION = "ap-southeast-2"
SETUP_TOKEN = "doctor-it-setup-token-Hw3Kd8Pq2Zm6Tr9Lx4"
QUEUE_ADDRESS = "doctor-it.vqueue.net"
VALOHAI_PRINCIPAL = "arn:aws:iam::905675611115:user/valohai-customer-acme"
EXTERNAL_ID = "valohai-acme-doctor-7c1d"
KEY_PAIR = "doctor-queue-key"
WORKERS = "doctor-workers"
COMMAND = str(Path(sys.executable).parent / "valohai-hybrid")


@dataclass
class Launched:
    """The setup doctor checks: its provisioned product, stack and outputs."""

    name: str
    outcome: Outcome

    @property
    def outputs(self) -> dict[str, str]:
        return self.outcome.outputs


class QueuePort:
    """redis-server as the queue machine runs it: TLS only, password required."""

    def __init__(self, directory: Path, ca: trustme.CA, password: str) -> None:
        self.directory = directory
        self.password = password
        self.ca_bundle = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        self.port = common.free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.serve(ca.issue_cert(QUEUE_ADDRESS))

    def serve(self, certificate: trustme.LeafCert) -> None:
        """(Re)start with `certificate`, as the machine does after a renewal."""
        self.stop()
        certificate.cert_chain_pems[0].write_to_path(str(self.directory / "cert.pem"))
        certificate.private_key_pem.write_to_path(str(self.directory / "key.pem"))
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError(
                "the doctor tests need redis-server (with TLS, as Debian builds it): "
                "apt-get install redis-server, as .ci/run does"
            )
        self.process = subprocess.Popen(
            [
                server,
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.directory / "cert.pem"),
                "--tls-key-file",
                str(self.directory / "key.pem"),
                "--tls-ca-cert-file",
                str(self.ca_bundle),
                "--tls-auth-clients",
                "no",
                "--requirepass",
                self.password,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def client(self) -> Any:
        import redis

        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            ssl=True,
            ssl_ca_certs=str(self.ca_bundle),
            ssl_check_hostname=False,
        )

    def _answers(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        context.check_hostname = False
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw,
                context.wrap_socket(raw),
            ):
                return True
        except OSError:
            return False


def workers_parameters(master: str, standin: StandIn, suffix: str) -> dict[str, str]:
    return common.workers_parameters(
        master_role_arn=master,
        valohai_url=standin.url,
        setup_token=SETUP_TOKEN,
        key_pair=KEY_PAIR,
        suffix=suffix,
    )


def expiring(ca: trustme.CA, name: str, days: float) -> trustme.LeafCert:
    return ca.issue_cert(name, not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=days))
