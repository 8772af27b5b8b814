"""What a launch does when Valohai cannot be told: BestEffort queues and redelivers, Required
fails the launch with the reason and rolls back without leftovers.

Valohai is "down" the way a service under maintenance is: it answers 503 with Retry-After one
hour, longer than a function may wait, so each attempt ends at once (a refused connection would
make every notification retry for its whole 30 s budget).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle

from tests.support.common import REDELIVERY_WAIT, events_of, eventually
from tests.support.platform import (
    REGION,
    WORKERS_PRODUCT,
    EndUser,
    Record,
    validate,
    workers_parameters,
)
from valohai_hybrid.local.standin import Fault, ReceivedEvent, StandIn
from valohai_hybrid.publish import Published

#: Enough answers for every attempt of a launch and of the redeliveries meanwhile.
DOWN = Fault(count=10_000, status=503, retry_after=3600)


@pytest.mark.usefixtures("platform")
def test_a_launch_succeeds_while_valohai_is_down_and_valohai_gets_the_events_later(
    end_user: EndUser,
    own_standin: StandIn,
    iam_launch: Record,
    key_pair: str,
    launches: list[Record],
) -> None:
    own_standin.receiver.inject(DOWN)
    workers = end_user.provision(
        WORKERS_PRODUCT, None, workers_parameters(iam_launch, own_standin, key_pair)
    )
    launches.append(workers)

    assert workers.status == "SUCCEEDED", workers.errors
    assert workers.outputs["ValohaiNotificationDelivery"] == "queued"
    refused = {(a.event_type, a.status) for a in own_standin.receiver.attempts()}
    assert refused == {("queue_address.registered", 503), ("setup.created", 503)}
    assert own_standin.receiver.events() == []

    # The redelivery function tries too, and is refused: SQS offers the events again once
    # their visibility timeout (the redelivery interval) is over.
    eventually(
        lambda: len(own_standin.receiver.attempts()) >= 4,
        timeout=REDELIVERY_WAIT,
        what="a refused redelivery of both events",
    )
    own_standin.receiver.reset()  # Valohai is back
    delivered = eventually(
        lambda: (
            {e.type: e for e in events_of(own_standin, workers.stack_id)}.keys()
            >= {"queue_address.registered", "setup.created"}
            and events_of(own_standin, workers.stack_id)
        ),
        timeout=REDELIVERY_WAIT,
        what="the redelivery of both events",
    )
    for event in delivered:
        validate(event)
    (created,) = [e for e in delivered if e.type == "setup.created"]
    assert created.body["data"]["handoff"]["queue_public_ip"] == workers.outputs["QueuePublicIp"]


def test_a_setup_terminated_while_valohai_is_down_reaches_valohai_whole_and_in_order(
    local_aws: LocalAwsHandle,
    end_user: EndUser,
    own_standin: StandIn,
    iam_launch: Record,
    key_pair: str,
    launches: list[Record],
) -> None:
    """The deletion's events wait in the setup's FIFO group; the final one, queued last, is
    redelivered last, and only then is the setup token deleted: nothing is left unsignable."""
    workers = end_user.provision(
        WORKERS_PRODUCT, None, workers_parameters(iam_launch, own_standin, key_pair)
    )
    launches.append(workers)
    assert workers.status == "SUCCEEDED", workers.errors
    secrets = local_aws.client("secretsmanager", REGION)
    (token,) = [
        s["ARN"]
        for s in secrets.list_secrets()["SecretList"]
        if {"Key": "valohai-hybrid:stack-id", "Value": workers.stack_id} in s.get("Tags", [])
    ]
    own_standin.receiver.reset()

    own_standin.receiver.inject(DOWN)
    assert end_user.terminate(workers).status == "SUCCEEDED"
    final_refused = eventually(
        lambda: (
            ("stack.status_changed", 503)
            in {(a.event_type, a.status) for a in own_standin.receiver.attempts()}
        ),
        what="the final event refused and queued",
    )
    assert final_refused
    own_standin.receiver.reset()  # Valohai is back

    def token_gone_after_every_event() -> list[ReceivedEvent] | None:
        gone = token not in {s["ARN"] for s in secrets.list_secrets()["SecretList"]}
        events = events_of(own_standin, workers.stack_id)
        assert not gone or len(events) == 3, f"token deleted with only {events} in"
        return events if gone else None

    delivered = eventually(
        token_gone_after_every_event, timeout=REDELIVERY_WAIT, what="the token's deletion"
    )
    assert [e.type for e in delivered] == [
        "setup.deleted",
        "queue_address.deregistered",
        "stack.status_changed",
    ]
    assert delivered[-1].body["data"]["status"] == "DELETE_COMPLETE"
    assert [a.outcome for a in own_standin.receiver.attempts()] == ["accepted"] * 3
    sqs = local_aws.client("sqs", REGION)

    def waiting(queue: str) -> dict[str, str]:
        counts = sqs.get_queue_attributes(
            QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return dict(counts)

    # The event source deletes the last message once the function that deleted the token returns.
    eventually(
        lambda: set(waiting("valohai-hybrid-redelivery.fifo").values()) == {"0"},
        timeout=REDELIVERY_WAIT,
        what="the redelivery queue emptied",
    )
    assert set(waiting("valohai-hybrid-redelivery-dlq.fifo").values()) == {"0"}


def _gone(call: Any, **request: Any) -> bool:
    try:
        call(**request)
    except ClientError:
        return True
    return False


def test_a_required_notification_valohai_refuses_fails_the_launch_and_leaves_nothing(
    local_aws: LocalAwsHandle,
    platform: Published,
    end_user: EndUser,
    own_standin: StandIn,
    iam_launch: Record,
    key_pair: str,
    launches: list[Record],
) -> None:
    own_standin.receiver.inject(DOWN)
    parameters = workers_parameters(
        iam_launch, own_standin, key_pair, NotificationPolicy="Required"
    )
    failed = end_user.provision(WORKERS_PRODUCT, None, parameters)
    launches.append(failed)

    assert failed.status == "FAILED"
    assert "Valohai did not accept the queue_address.registered event: HTTP 503" in failed.errors
    own_standin.receiver.reset()  # Valohai is back, to hear why the setup failed
    product = end_user.servicecatalog.describe_provisioned_product(
        Id=failed.provisioned_product_id
    )["ProvisionedProductDetail"]
    assert product["Status"] == "ERROR"
    cloudformation = local_aws.client("cloudformation", REGION)
    stack_name = f"SC-{platform.account_id}-{failed.provisioned_product_id}"
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"

    # Nothing the launch made is left: the network, the machine, its address, the roles, the
    # records, the secrets, and the data bucket too (retained on deletion, but not when the
    # launch that created it rolls back: DeletionPolicy RetainExceptOnCreate).
    launch_tag = [
        {
            "Name": "tag:aws:servicecatalog:provisionedProductArn",
            "Values": [product["Arn"]],
        }
    ]
    ec2 = local_aws.client("ec2", REGION)
    assert ec2.describe_vpcs(Filters=launch_tag)["Vpcs"] == []
    assert ec2.describe_addresses(Filters=launch_tag)["Addresses"] == []
    assert ec2.describe_security_groups(Filters=launch_tag)["SecurityGroups"] == []
    machines = ec2.describe_instances(Filters=launch_tag)["Reservations"]
    assert {i["State"]["Name"] for r in machines for i in r["Instances"]} <= {"terminated"}
    iam = local_aws.client("iam")
    assert _gone(iam.get_role, RoleName=f"ValohaiS3MultipartRole-{parameters['Suffix']}")
    ssm = local_aws.client("ssm", REGION)
    record = f"/valohai-hybrid/queue-address/{parameters['QueueAddress']}"
    assert _gone(ssm.get_parameter, Name=record)
    secrets = local_aws.client("secretsmanager", REGION)
    live = {s["Name"] for s in secrets.list_secrets()["SecretList"]}
    assert parameters["RedisSecretName"] not in live
    s3 = local_aws.client("s3", REGION)
    bucket = f"valohai-data-{parameters['Suffix']}"
    assert _gone(s3.head_bucket, Bucket=bucket)

    # Valohai learns why the setup failed (at once, or once redelivered), and the spent token
    # is removed.
    (status,) = eventually(
        lambda: events_of(own_standin, stack["StackId"], "stack.status_changed"),
        timeout=REDELIVERY_WAIT,
        what="the ROLLBACK_COMPLETE forwarded",
    )
    validate(status)
    assert status.body["data"]["status"] == "ROLLBACK_COMPLETE"
    assert [r["logical_resource_id"] for r in status.body["data"]["failed_resources"]] == [
        "QueueAddressRegistration"
    ]
    token = f"valohai-hybrid/setup-token/{stack_name}"
    eventually(
        lambda: token not in {s["Name"] for s in secrets.list_secrets()["SecretList"]},
        timeout=REDELIVERY_WAIT,
        what="the setup token's removal",
    )


@pytest.mark.usefixtures("platform")
def test_messages_forged_onto_the_redelivery_queue_sign_send_and_delete_nothing(
    local_aws: LocalAwsHandle, own_standin: StandIn
) -> None:
    """Whoever can write to the redelivery queue (the local AWS, like an identity policy
    granting sqs:*, lets this one) tries to have a setup's token sign an event of their own and
    send it to their server, and to delete the token: the platform's consumer drops it all."""
    secrets = local_aws.client("secretsmanager", REGION)
    victim_stack = (
        f"arn:aws:cloudformation:{REGION}:123456789012:stack/victim/"
        "1b2c3d4e-0000-4000-8000-00000000f00d"
    )
    token = secrets.create_secret(
        Name="valohai-hybrid/setup-token/victim",
        SecretString="victim-token-0123456789abcdefghijklmnopqrstuvwxyz",
        Tags=[
            {"Key": "valohai-hybrid:purpose", "Value": "setup-token"},
            {"Key": "valohai-hybrid:stack-id", "Value": victim_stack},
        ],
    )["ARN"]
    body = json.dumps(
        {
            "version": 2,
            "id": "f" * 64,
            "type": "queue_address.registered",
            "occurred_at": "2026-01-01T00:00:00Z",
            "producer": "valohai-hybrid-aws/0.1.0",
            "stack": {
                "id": victim_stack,
                "name": "victim",
                "account_id": "123456789012",
                "region": REGION,
            },
            "data": {"queue_address": "acme.vqueue.net", "public_ip": "198.51.100.66"},
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    event = {
        "kind": "event",
        "api_url": own_standin.url,
        "stack_id": victim_stack,
        "event_type": "queue_address.registered",
        "idempotency_key": "f" * 64,
        "body": body,
    }
    payload = json.dumps(event, sort_keys=True, separators=(",", ":"))
    forgeries = [
        {**event, "format": 2, "token_secret_arn": token},
        {"format": 2, "kind": "token_cleanup", "stack_id": victim_stack, "token_secret_arn": token},
        {"format": 3, "payload": payload, "mac": "0" * 64},
    ]
    sqs = local_aws.client("sqs", REGION)
    queue = sqs.get_queue_url(QueueName="valohai-hybrid-redelivery.fifo")["QueueUrl"]
    sent = {
        sqs.send_message(
            QueueUrl=queue,
            MessageBody=json.dumps(forged),
            MessageGroupId=victim_stack,
            MessageDeduplicationId=f"forged-{number}",
        )["MessageId"]
        for number, forged in enumerate(forgeries)
    }
    logs = local_aws.client("logs", REGION)

    def dropped() -> bool:
        """Each forged message logged as dropped by the consumer (which SQS then deletes): its
        own messages, whatever other setups' messages the shared queue holds."""
        lines = logs.filter_log_events(logGroupName="/aws/lambda/valohai-hybrid-redelivery")
        records = [json.loads(e["message"]) for e in lines["events"] if e["message"][:1] == "{"]
        return sent <= {
            r.get("message_id")
            for r in records
            if r.get("message", "").startswith("Dropped a message the platform did not write")
        }

    eventually(dropped, timeout=REDELIVERY_WAIT, what="the forged messages dropped")
    assert own_standin.receiver.attempts() == []  # nothing signed, nothing sent
    secrets.describe_secret(SecretId=token)  # not deleted
    secrets.delete_secret(SecretId=token, ForceDeleteWithoutRecovery=True)
