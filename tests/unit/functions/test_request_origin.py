"""A custom-resource function acts only on CloudFormation's requests (docs/security.md).

Each test invokes a handler directly with a forged event, as anyone allowed to invoke the
function could, and checks what that changed: AWS resources, Valohai's inbox, the answers.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import boto3
import pytest

from tests.support.functions import (
    HANDOFF,
    OTHER_STACK_ID,
    OTHER_TOKEN,
    RESPONSE_HOST,
    STACK_ID,
    CloudFormationView,
    Inbox,
    Invoker,
    Logs,
    create_token_secret,
)
from valohai_hybrid.local.standin import StandIn

pytestmark = pytest.mark.usefixtures("fast_backoff")


@pytest.fixture
def secret(load_handler: Any, inbox: Inbox) -> Invoker:
    return Invoker(load_handler("redis_secret").handler, inbox, "Custom::ValohaiRedisSecret")


@pytest.fixture
def notify(load_handler: Any, inbox: Inbox, redelivery_queue: str) -> Invoker:
    return Invoker(load_handler("notification").handler, inbox, "Custom::ValohaiNotification")


@pytest.fixture
def queue(load_handler: Any, inbox: Inbox, redelivery_queue: str) -> Invoker:
    return Invoker(load_handler("queue_address").handler, inbox, "Custom::ValohaiQueueAddress")


def secret_names() -> list[str]:
    """The secrets in the account but the platform's redelivery key, which the fixture makes."""
    secrets = boto3.client("secretsmanager").list_secrets()["SecretList"]
    return [s["Name"] for s in secrets if s["ARN"] != os.environ["REDELIVERY_KEY_SECRET_ARN"]]


def scheduled_for_deletion(arn: str) -> bool:
    return "DeletedDate" in boto3.client("secretsmanager").describe_secret(SecretId=arn)


def test_a_forged_delete_leaves_another_stacks_redis_secret_alone(
    secret: Invoker, inbox: Inbox
) -> None:
    """The other stack's secret exists and its resource is complete: CloudFormation is not
    deleting it, so a Delete naming it (answered to CloudFormation's host or to the caller's)
    deletes nothing."""
    arn = secret("Create", {}, stack_id=OTHER_STACK_ID, logical_id="RedisSecret")[
        "PhysicalResourceId"
    ]
    props = {"ForceDeleteWithoutRecovery": "true"}
    forged = secret.event("Delete", props, physical_id=arn, stack_id=OTHER_STACK_ID)
    forged["LogicalResourceId"] = "RedisSecret"
    to_caller = {**forged, "ResponseURL": f"https://127.0.0.1:{inbox.port}/attacker"}

    [answer] = secret.forge(forged)
    nothing = secret.forge(to_caller)

    assert answer.body["Status"] == "FAILED"
    assert answer.body["Reason"] == (
        "Refused: CloudFormation is not waiting for a Delete of RedisSecret in stack "
        "other-setup (the resource is CREATE_COMPLETE); a replayed or forged request changes "
        "nothing"
    )
    assert nothing == []
    assert not scheduled_for_deletion(arn)


def test_a_forged_notification_signs_nothing_with_another_setups_token(
    notify: Invoker, standin: StandIn, aws: None, inbox: Inbox
) -> None:
    """Another setup's token secret, the caller's URL for Valohai and for the answer: nothing
    is signed or sent, whether or not the answer would go to CloudFormation's host."""
    other_token = create_token_secret(OTHER_STACK_ID, OTHER_TOKEN)
    props = {"ValohaiApiUrl": standin.url, "SetupTokenSecretArn": other_token, "Handoff": HANDOFF}
    forged = notify.event("Create", props, stack_id=OTHER_STACK_ID)

    [answer] = notify.forge(forged)
    nothing = notify.forge({**forged, "ResponseURL": f"https://127.0.0.1:{inbox.port}/me"})

    assert answer.body["Status"] == "FAILED"
    assert answer.body["Reason"].startswith("Refused: stack other-setup has no resource")
    assert nothing == []
    assert standin.receiver.attempts() == []


def test_the_instance_metadata_address_is_never_a_response_url(
    secret: Invoker, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    connected: list[Any] = []
    original = socket.create_connection

    def spy(address: Any, *args: Any, **kwargs: Any) -> Any:
        connected.append(address)
        return original(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    for url in (metadata, metadata.replace("http:", "https:")):
        event = secret.event("Create", {})
        secret.forge({**event, "ResponseURL": url})

    assert not [a for a in connected if "169.254" in str(a)]
    assert "its ResponseURL is not CloudFormation's response bucket in eu-west-1" in logs.text
    assert secret_names() == []


def test_a_create_replayed_after_its_stack_rolled_back_creates_nothing(
    secret: Invoker,
    queue: Invoker,
    standin: StandIn,
    token_secret_arn: str,
    cloudformation: CloudFormationView,
) -> None:
    """Lambda used to retry a Create that timed out; by then the stack had rolled back."""
    secret_create = secret.event("Create", {}, logical_id="RedisSecret")
    props = {
        "QueueAddress": "acme.vqueue.net",
        "PublicIp": "203.0.113.10",
        "ValohaiApiUrl": standin.url,
        "SetupTokenSecretArn": token_secret_arn,
    }
    queue_create = queue.event("Create", props, logical_id="QueueAddress")
    for logical_id in ("RedisSecret", "QueueAddress"):
        cloudformation.set(STACK_ID, logical_id, "DELETE_COMPLETE")

    [secret_answer] = secret.forge(secret_create)
    [queue_answer] = queue.forge(queue_create)

    assert secret_answer.body["Status"] == queue_answer.body["Status"] == "FAILED"
    assert "(the resource is DELETE_COMPLETE)" in secret_answer.body["Reason"]
    assert secret_names() == ["valohai-hybrid/setup-token/valohai-setup"]
    parameters = boto3.client("ssm").describe_parameters()["Parameters"]
    assert parameters == []
    assert standin.receiver.attempts() == []


def test_an_update_must_name_the_resource_cloudformation_is_updating(
    secret: Invoker, cloudformation: CloudFormationView
) -> None:
    mine = secret("Create", {})["PhysicalResourceId"]
    other = secret("Create", {"SecretName": "OtherRedisSecret"}, logical_id="Other")[
        "PhysicalResourceId"
    ]
    cloudformation.resources[(STACK_ID, "Resource")]["ResourceStatus"] = "UPDATE_IN_PROGRESS"
    # CloudFormation updates `Resource` (whose id is `mine`); the event names the other secret.
    update = secret.event("Update", {"RotationToken": "1"}, physical_id=other, old_properties={})

    [answer] = secret.forge(update)

    assert answer.body["Status"] == "FAILED"
    assert answer.body["Reason"].startswith(
        "Refused: CloudFormation is not waiting for an Update of Resource in stack valohai-setup"
    )
    values = boto3.client("secretsmanager")
    assert values.get_secret_value(SecretId=other)["VersionId"]
    assert len(values.list_secret_version_ids(SecretId=other)["Versions"]) == 1
    assert mine != other


def test_a_delete_of_a_replaced_resource_during_cleanup_goes_ahead(
    secret: Invoker, cloudformation: CloudFormationView
) -> None:
    """After an update returned a new id, CloudFormation deletes the old one while the stack
    cleans up; the logical id then already names the new, complete resource."""
    old = secret("Create", {})["PhysicalResourceId"]
    new = secret("Create", {"SecretName": "NewRedisSecret"})["PhysicalResourceId"]
    cloudformation.stacks[STACK_ID] = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    delete = secret.event("Delete", {}, physical_id=old)

    [answer] = secret.forge(delete)

    assert answer.body["Status"] == "SUCCESS"
    assert scheduled_for_deletion(old)
    assert not scheduled_for_deletion(new)


def test_only_cloudformations_response_bucket_in_this_region_is_answered() -> None:
    from valohai_cr.origin import answerable_url

    def event(url: str) -> dict[str, str]:
        return {"ResponseURL": url}

    good = [
        f"https://{RESPONSE_HOST}/arn%3Aaws%3Acloudformation?X-Amz-Signature=abc",
        "https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/k",
        "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/k",
        "https://cloudformation-custom-resource-response-euwest1.s3.dualstack.eu-west-1"
        ".amazonaws.com/k",
        f"https://{RESPONSE_HOST}:443/k",
    ]
    bad = [
        f"http://{RESPONSE_HOST}/k",  # not TLS
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/k",  # region
        f"https://{RESPONSE_HOST}.attacker.example/k",
        f"https://attacker.example/{RESPONSE_HOST}/k",
        f"https://user:pw@{RESPONSE_HOST}/k",
        f"https://{RESPONSE_HOST}:8443/k",
        f"https://{RESPONSE_HOST}:99999/k",
        "https://s3.eu-west-1.amazonaws.com/cloudformation-custom-resource-response-euwest1/k",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1/k",
        "",
        "not a url",
    ]

    assert [answerable_url(event(url), "eu-west-1") for url in good] == good
    assert [answerable_url(event(url), "eu-west-1") for url in bad] == [None] * len(bad)
    assert answerable_url({"ResponseURL": 5}, "eu-west-1") is None
    assert answerable_url(["not", "a", "map"], "eu-west-1") is None
    china = (
        "https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/k"
    )
    assert answerable_url(event(china), "cn-north-1", "aws-cn") == china
