"""Fixtures of the functions' unit tests; what they are built from is in tests.support.functions."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import boto3
import botocore.loaders
import botocore.session
import pytest
from localaws import devtls
from localaws.lambda_runtime.bootstrap import route_hosts
from moto import mock_aws

from tests.support.functions import (
    CLOUDFORMATION,
    OTHER_TOKEN,
    PLATFORM_KEY,
    RESPONSE_HOST,
    STACK_ID,
    TOKEN,
    AwsCalls,
    CloudFormationView,
    Inbox,
    Logs,
    create_token_secret,
)
from valohai_hybrid.local.standin import StandIn


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
def local_ca(state_dir: Path) -> devtls.LocalCa:
    return devtls.load_or_create(state_dir / "ca")


@pytest.fixture(autouse=True)
def trust_local_ca(local_ca: devtls.LocalCa, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer's PUT and the notifier's POST trust the local CA the way Lambda code would.

    Only the local CA, not the bundle with the system's: the tests talk to local servers only,
    and loading a hundred system certificates for every connection would slow them down."""
    monkeypatch.setenv("SSL_CERT_FILE", str(local_ca.directory / "ca.pem"))


@pytest.fixture(scope="session")
def inbox(local_ca: devtls.LocalCa) -> Iterator[Inbox]:
    server = Inbox(local_ca.server_context(*devtls.LOCAL_HOSTS, RESPONSE_HOST))
    with route_hosts({RESPONSE_HOST: ("127.0.0.1", server.port)}):
        yield server
    server.close()


@pytest.fixture
def cloudformation(aws: None) -> CloudFormationView:
    return CLOUDFORMATION


@pytest.fixture(scope="session")
def standin_server(state_dir: Path) -> Iterator[StandIn]:
    with StandIn([TOKEN, OTHER_TOKEN], state_dir) as server:
        yield server


@pytest.fixture
def standin(standin_server: StandIn) -> StandIn:
    standin_server.receiver.reset()
    return standin_server


@pytest.fixture(autouse=True)
def development_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in listens on 127.0.0.1: a platform published with AllowLoopbackValohaiApi."""
    monkeypatch.setenv("ALLOW_LOOPBACK_VALOHAI_API", "true")


#: botocore's service models, read once for the whole run. Each test gets a fresh default
#: session (so that no test's event hooks reach another), and a fresh session would parse the
#: models' JSON again for every client it makes: most of a test's set-up time.
SERVICE_MODELS = botocore.loaders.create_loader()


def fresh_default_session() -> None:
    """A new boto3 default session (new event hooks, new credentials) reading the shared
    models."""
    session = botocore.session.get_session()
    session.register_component("data_loader", SERVICE_MODELS)
    boto3.setup_default_session(botocore_session=session)
    # boto3 adds its resource models' folder to the loader's path for every new session.
    SERVICE_MODELS.search_paths[:] = list(dict.fromkeys(SERVICE_MODELS.search_paths))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto with the platform's redelivery key (a secret of the platform stack) in it, and
    CloudFormation's view of the Invoker's stacks (registered on the test's fresh default
    session, before any other hook)."""
    CLOUDFORMATION.resources.clear()
    CLOUDFORMATION.known.clear()
    CLOUDFORMATION.stacks.clear()
    with mock_aws():
        fresh_default_session()
        events = boto3._get_default_session().events
        for operation in ("DescribeStackResource", "DescribeStacks"):
            events.register_first(f"before-call.cloudformation.{operation}", CLOUDFORMATION)
        key = boto3.client("secretsmanager").create_secret(
            Name="valohai-hybrid/redelivery-key-platform", SecretString=PLATFORM_KEY
        )
        monkeypatch.setenv("REDELIVERY_KEY_SECRET_ARN", key["ARN"])
        dead_letters = boto3.client("sqs").create_queue(
            QueueName="valohai-redelivery-dlq.fifo", Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
        monkeypatch.setenv("REDELIVERY_DEAD_LETTER_QUEUE_URL", dead_letters)
        monkeypatch.setenv("REDELIVERY_MAX_RECEIVE_COUNT", "3")
        monkeypatch.setenv("REDELIVERY_INTERVAL_SECONDS", "30")
        yield


@pytest.fixture
def token_secret_arn(aws: None) -> str:
    """The product stack's setup-token secret, as cfn/main.yml creates it."""
    return create_token_secret(STACK_ID, TOKEN)


@pytest.fixture
def redelivery_queue(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    url = boto3.client("sqs").create_queue(
        QueueName="valohai-redelivery.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    monkeypatch.setenv("REDELIVERY_QUEUE_URL", url)
    return url


@pytest.fixture
def logs() -> Logs:
    return Logs()


@pytest.fixture
def aws_calls(aws: None) -> AwsCalls:
    """Installed on the default session moto gives every test (so on the handler's clients)."""
    hook = AwsCalls()
    boto3._get_default_session().events.register("before-call", hook)
    return hook


@pytest.fixture
def load_handler(aws_calls: AwsCalls, logs: Logs) -> Callable[[str], ModuleType]:
    """Import a handler module afresh inside moto, as a Lambda cold start would, capturing logs."""

    def load(name: str) -> ModuleType:
        module = importlib.reload(importlib.import_module(f"valohai_cr.handlers.{name}"))
        module.logger.registered_handler.setStream(logs.stream)
        return module

    return load


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries a few milliseconds apart, so fault tests stay fast."""
    monkeypatch.setattr("valohai_cr.delivery.BACKOFF_BASE", 0.01)
    monkeypatch.setattr("valohai_cr.delivery.BACKOFF_CAP", 0.05)
