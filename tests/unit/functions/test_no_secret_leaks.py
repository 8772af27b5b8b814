"""With a known setup token and the real Redis passwords, nothing the functions emit holds them:
not the responses (Reason, Data), the logs, the events Valohai receives, nor the queued events."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.support.functions import (
    HANDOFF,
    PLATFORM_KEY,
    STACK_ID,
    TOKEN,
    FakeContext,
    Inbox,
    Invoker,
    Logs,
    sqs_event,
)
from valohai_hybrid.local.standin import Fault, StandIn

pytestmark = pytest.mark.usefixtures("fast_backoff")


def test_no_password_or_token_in_anything_the_functions_emit(
    load_handler: Any,
    inbox: Inbox,
    standin: StandIn,
    token_secret_arn: str,
    redelivery_queue: str,
    logs: Logs,
) -> None:
    secret = Invoker(load_handler("redis_secret").handler, inbox, "Custom::ValohaiRedisSecret")
    queue = Invoker(load_handler("queue_address").handler, inbox, "Custom::ValohaiQueueAddress")
    notify = Invoker(load_handler("notification").handler, inbox, "Custom::ValohaiNotification")
    consume = load_handler("redelivery").handler
    common = {"ValohaiApiUrl": standin.url, "SetupTokenSecretArn": token_secret_arn}
    queue_props = {**common, "QueueAddress": "acme.vqueue.net", "PublicIp": "203.0.113.10"}
    notify_props = {**common, "Handoff": HANDOFF}
    moved_props = {**common, "Handoff": {**HANDOFF, "QueuePublicIp": "203.0.113.11"}}
    responses: list[dict[str, Any]] = []
    queued: list[Any] = []

    arn = secret("Create", {"RotationToken": "1"})["PhysicalResourceId"]
    responses.append(
        secret(
            "Update", {"RotationToken": "2"}, physical_id=arn, old_properties={"RotationToken": "1"}
        )
    )
    responses.append(secret("Create", {"SecretName": "bad name"}))
    responses.append(queue("Create", queue_props))
    responses.append(notify("Create", notify_props))
    standin.receiver.inject(Fault(count=1000, status=500))
    responses.append(
        notify.send(
            notify.event("Update", moved_props, physical_id="n", old_properties=notify_props),
            seconds=3.5,
        ).body
    )
    responses.append(
        notify.send(
            notify.event("Create", {**notify_props, "NotificationPolicy": "Required"}), seconds=3.5
        ).body
    )
    standin.receiver.reset()
    standin.receiver.inject(Fault(count=1, status=401))
    responses.append(
        queue(
            "Update",
            {**queue_props, "PublicIp": "203.0.113.11"},
            physical_id="acme.vqueue.net",
            old_properties=queue_props,
        )
    )
    messages = boto3.client("sqs").receive_message(
        QueueUrl=redelivery_queue, MaxNumberOfMessages=10
    )["Messages"]
    queued.extend(messages)
    offered_again = [
        {**m, "Attributes": {"MessageGroupId": STACK_ID, "ApproximateReceiveCount": "2"}}
        for m in messages
    ]
    responses.append(consume(sqs_event(offered_again), FakeContext(10)))
    secrets = boto3.client("secretsmanager")
    passwords = [
        secrets.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]
        for stage in ("AWSCURRENT", "AWSPREVIOUS")
    ]
    responses.append(secret("Delete", {"RecoveryWindowInDays": "0"}, physical_id=arn))
    responses.append(queue("Delete", queue_props, physical_id="acme.vqueue.net"))
    responses.append(notify("Delete", notify_props, physical_id="n"))

    emitted = "\n".join(
        [
            json.dumps([r.body for r in inbox.everything()]),
            json.dumps(responses),
            logs.text,
            json.dumps([m["Body"] for m in queued]),
            json.dumps([e.body for e in standin.receiver.events()]),
            json.dumps([a.__dict__ for a in standin.receiver.attempts()]),
        ]
    )
    assert len(set(passwords)) == 2
    assert standin.receiver.events()
    assert queued
    for secret_value in (TOKEN, PLATFORM_KEY, *passwords):
        assert secret_value not in emitted
