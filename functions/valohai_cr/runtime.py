"""Lambda wiring shared by the handlers: AWS clients, logging, the notifier from environment."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from botocore.config import Config

from valohai_cr import PRODUCER
from valohai_cr.delivery import Sender, Urllib3Transport
from valohai_cr.errors import ResourceFailure
from valohai_cr.notifier import Notifier, RedeliveryQueue, SetupTokens

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

#: Bounded AWS calls: a hung endpoint must not eat the whole invocation.
CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=20,
    retries={"mode": "standard", "max_attempts": 3},
    user_agent_extra=PRODUCER,
)
REDELIVERY_QUEUE_ENV = "REDELIVERY_QUEUE_URL"
#: Loggers that would print request parameters (secret values included) at DEBUG.
_CHATTY_LIBRARIES = ("botocore", "boto3", "urllib3", "crhelper")


def logger(service: str) -> Logger:
    """A Powertools Logger that our modules and crhelper log through, never below INFO for
    the libraries that would log secrets at DEBUG."""
    powertools = Logger(service=service)
    copy_config_to_registered_loggers(source_logger=powertools, include={"valohai_cr", "crhelper"})
    for name in _CHATTY_LIBRARIES:
        library = logging.getLogger(name)
        library.setLevel(max(library.getEffectiveLevel(), logging.INFO))
    return powertools


def redelivery_queue() -> RedeliveryQueue:
    url = os.environ.get(REDELIVERY_QUEUE_ENV, "")
    if not url:
        raise ResourceFailure(
            f"{REDELIVERY_QUEUE_ENV} is not set: the platform stack sets it to its redelivery queue"
        )

    def sqs() -> SQSClient:
        return boto3.client("sqs", config=CLIENT_CONFIG)

    return RedeliveryQueue(url, sqs)


def notifier(secrets: SecretsManagerClient) -> Notifier:
    return Notifier(SetupTokens(secrets), Sender(Urllib3Transport()), redelivery_queue())
