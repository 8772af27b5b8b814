"""One launched setup for the doctor tests, and a real queue machine's port for it.

Module scope: in a directory without __init__.py, "package" fixtures last the whole session,
and the IAM product's names are account-wide, so it must be gone when these tests end. The
platform is published in a region of its own (publish, as a maintainer does), both products
are launched through Service Catalog, and a real `redis-server` plays the queue machine (see
tests.support.doctor.QueuePort). Each test breaks one thing and puts it back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from localaws.harness import LocalAwsHandle

from tests.support.common import publish_release
from tests.support.doctor import (
    EXTERNAL_ID,
    KEY_PAIR,
    QUEUE_ADDRESS,
    REGION,
    SETUP_TOKEN,
    VALOHAI_PRINCIPAL,
    WORKERS,
    Launched,
    QueuePort,
    workers_parameters,
)
from valohai_hybrid import products
from valohai_hybrid.catalog import Catalog
from valohai_hybrid.local.platform import delete_platform
from valohai_hybrid.local.standin import StandIn


@pytest.fixture(scope="module")
def aws(local_aws: LocalAwsHandle) -> Any:
    def client(service: str) -> Any:
        return local_aws.client(service, REGION)

    return client


@pytest.fixture(scope="module")
def environment(local_aws: LocalAwsHandle) -> dict[str, str]:
    """The shell of the admin running doctor: the local AWS, the setup's region."""
    return {**os.environ, "AWS_ENDPOINT_URL": local_aws.endpoint_url, "AWS_REGION": REGION}


@pytest.fixture(scope="module")
def catalog(local_aws: LocalAwsHandle, aws: Any) -> Iterator[Catalog]:
    """The platform, published as a maintainer does; Service Catalog as the account's admin."""
    published = publish_release(
        local_aws,
        REGION,
        # The shortest redelivery interval: a queued hand-off arrives within a test.
        parameters={"RedeliveryIntervalSeconds": "30"},
    )
    aws("ec2").create_key_pair(KeyName=KEY_PAIR)
    yield Catalog(aws, poll_seconds=0.1, timeout=120)
    delete_platform(local_aws, published)


@pytest.fixture(scope="module")
def standin(local_aws: LocalAwsHandle) -> Iterator[StandIn]:
    with StandIn([SETUP_TOKEN], local_aws.state_dir) as server:
        yield server


@pytest.fixture(scope="module")
def master_role(catalog: Catalog) -> Iterator[str]:
    """The IAM product (one per account), launched for the package."""
    outcome = catalog.wait(
        catalog.launch(
            products.IAM.name,
            "doctor-iam",
            {"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": EXTERNAL_ID},
        )
    )
    assert outcome.succeeded, outcome.errors
    yield outcome.outputs["ValohaiMasterRoleARN"]
    assert catalog.wait(catalog.terminate("doctor-iam")).succeeded


@pytest.fixture(scope="module")
def setup(catalog: Catalog, master_role: str, standin: StandIn) -> Iterator[Launched]:
    """The Workers product as a customer launched it, shared by every test."""
    values = workers_parameters(master_role, standin, "doctor-it")
    outcome = catalog.wait(catalog.launch(products.WORKERS.name, WORKERS, values))
    assert outcome.succeeded, outcome.errors
    yield Launched(WORKERS, outcome)
    assert catalog.wait(catalog.terminate(WORKERS)).succeeded


@pytest.fixture(scope="module")
def queue_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def queue(
    tmp_path_factory: pytest.TempPathFactory, queue_ca: trustme.CA, setup: Launched, aws: Any
) -> Iterator[QueuePort]:
    """The queue machine's Redis, with the password the setup's secret holds."""
    secret = aws("secretsmanager").get_secret_value(SecretId=setup.outputs["RedisSecretArn"])
    port = QueuePort(tmp_path_factory.mktemp("queue"), queue_ca, secret["SecretString"])
    yield port
    port.stop()


@pytest.fixture
def fresh_certificate(queue: QueuePort, queue_ca: trustme.CA) -> Iterator[QueuePort]:
    """A test that serves another certificate: the right one is served again afterwards."""
    yield queue
    queue.serve(queue_ca.issue_cert(QUEUE_ADDRESS))
