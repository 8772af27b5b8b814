"""SQS provisioners: the notification delivery queue, its dead-letter queue and policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from localaws.cloudformation.provisioners import sqs
from localaws.cloudformation.provisioners.base import (
    Provisioned,
    ProvisionError,
    ResourceContext,
)

Ctx = Callable[..., ResourceContext]


@pytest.fixture
def client() -> Any:
    return boto3.client("sqs")


@pytest.fixture
def dead_letters(make_ctx: Ctx) -> Provisioned:
    return sqs.Queue().create(
        make_ctx("AWS::SQS::Queue", "DeadLetters"), {"QueueName": "notifications-dlq"}
    )


def attributes(client: Any, url: str) -> dict[str, str]:
    return dict(client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def test_queue_lifecycle(make_ctx: Ctx, client: Any, dead_letters: Provisioned) -> None:
    ctx = make_ctx("AWS::SQS::Queue", "Notifications")
    props = {
        "QueueName": "notifications",
        "VisibilityTimeout": "120",
        "MessageRetentionPeriod": 1209600,
        "KmsMasterKeyId": "alias/aws/sqs",
        "RedrivePolicy": {"deadLetterTargetArn": dead_letters.get_att("Arn"), "maxReceiveCount": 5},
        "Tags": [{"Key": "Name", "Value": "notifications"}],
    }
    made = sqs.Queue().create(ctx, props)

    assert (
        made.physical_id
        == ("https://sqs.eu-west-1.amazonaws.com/123456789012/notifications")
        == made.get_att("QueueUrl")
    )
    assert made.get_att("QueueName") == "notifications"
    found = attributes(client, made.physical_id)
    assert made.get_att("Arn") == found["QueueArn"]
    assert (found["VisibilityTimeout"], found["MessageRetentionPeriod"]) == ("120", "1209600")
    assert found["KmsMasterKeyId"] == "alias/aws/sqs"
    redrive = json.loads(found["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dead_letters.get_att("Arn"), "maxReceiveCount": 5}
    # SQS queues get the stack's own tags but not CloudFormation's aws:* tags.
    assert client.list_queue_tags(QueueUrl=made.physical_id)["Tags"] == {
        "Name": "notifications",
        "example": "1",
    }

    client.set_queue_attributes(
        QueueUrl=made.physical_id, Attributes={"Policy": json.dumps(policy_document(made))}
    )
    updated = {"QueueName": "notifications", "VisibilityTimeout": 60, "SqsManagedSseEnabled": False}
    sqs.Queue().update(ctx, made, props, updated)

    found = attributes(client, made.physical_id)
    assert (found["VisibilityTimeout"], found["MessageRetentionPeriod"]) == ("60", "345600")
    assert found["SqsManagedSseEnabled"] == "false"
    assert "RedrivePolicy" not in found
    assert "KmsMasterKeyId" not in found
    assert "Policy" in found  # a policy set by others survives the queue's own update
    assert client.list_queue_tags(QueueUrl=made.physical_id).get("Tags", {}) == {"example": "1"}

    for _ in range(2):
        sqs.Queue().delete(ctx, made, updated)
    with pytest.raises(ClientError, match="NonExistentQueue"):
        client.get_queue_url(QueueName="notifications")


def test_generated_fifo_queue_name(make_ctx: Ctx, client: Any) -> None:
    made = sqs.Queue().create(
        make_ctx("AWS::SQS::Queue", "Ordered"),
        {"FifoQueue": "true", "ContentBasedDeduplication": True},
    )

    assert made.get_att("QueueName").startswith("unit-stack-Ordered-")
    assert made.get_att("QueueName").endswith(".fifo")
    assert attributes(client, made.physical_id)["FifoQueue"] == "true"


def test_named_fifo_queues_keep_their_order_rules(make_ctx: Ctx, client: Any) -> None:
    """As template.yaml's redelivery queues: FIFO with a FIFO DLQ; dedup ids are honoured."""
    dead = sqs.Queue().create(
        make_ctx("AWS::SQS::Queue", "Dead"), {"QueueName": "ordered-dlq.fifo", "FifoQueue": True}
    )
    made = sqs.Queue().create(
        make_ctx("AWS::SQS::Queue", "Ordered"),
        {
            "QueueName": "ordered.fifo",
            "FifoQueue": True,
            "RedrivePolicy": {"deadLetterTargetArn": dead.get_att("Arn"), "maxReceiveCount": 3},
        },
    )
    content = sqs.Queue().create(
        make_ctx("AWS::SQS::Queue", "Content"),
        {"QueueName": "content.fifo", "FifoQueue": "true", "ContentBasedDeduplication": True},
    )

    assert made.get_att("QueueName") == "ordered.fifo"
    found = attributes(client, made.physical_id)
    assert (found["FifoQueue"], found["ContentBasedDeduplication"]) == ("true", "false")
    assert attributes(client, content.physical_id)["ContentBasedDeduplication"] == "true"
    for body in ("one", "one again", "two"):
        client.send_message(
            QueueUrl=made.physical_id,
            MessageBody=body,
            MessageGroupId="setup",
            MessageDeduplicationId=body.split()[0],
        )
        client.send_message(QueueUrl=content.physical_id, MessageBody=body, MessageGroupId="g")
    client.send_message(QueueUrl=content.physical_id, MessageBody="two", MessageGroupId="g")
    received = client.receive_message(QueueUrl=made.physical_id, MaxNumberOfMessages=10)
    assert [m["Body"] for m in received["Messages"]] == ["one", "two"]
    received = client.receive_message(QueueUrl=content.physical_id, MaxNumberOfMessages=10)
    assert [m["Body"] for m in received["Messages"]] == ["one", "one again", "two"]
    with pytest.raises(ClientError, match="MessageDeduplicationId"):
        client.send_message(QueueUrl=made.physical_id, MessageBody="x", MessageGroupId="setup")
    with pytest.raises(ClientError, match="MessageGroupId"):
        client.send_message(QueueUrl=made.physical_id, MessageBody="x")
    with pytest.raises(ProvisionError, match=r"must end in \.fifo"):
        sqs.Queue().create(
            make_ctx("AWS::SQS::Queue", "Misnamed"), {"QueueName": "plain", "FifoQueue": True}
        )


def policy_document(queue: Provisioned) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue.get_att("Arn"),
            }
        ],
    }


def test_queue_policy_lifecycle(make_ctx: Ctx, client: Any, dead_letters: Provisioned) -> None:
    other = sqs.Queue().create(make_ctx("AWS::SQS::Queue"), {"QueueName": "other"})
    ctx = make_ctx("AWS::SQS::QueuePolicy", "DlqPolicy")
    props = {"Queues": [dead_letters.physical_id], "PolicyDocument": policy_document(dead_letters)}
    made = sqs.QueuePolicy().create(ctx, props)

    found = json.loads(attributes(client, dead_letters.physical_id)["Policy"])
    assert found == policy_document(dead_letters)
    assert made.get_att("Id") == made.physical_id

    moved = {"Queues": [other.physical_id], "PolicyDocument": policy_document(other)}
    sqs.QueuePolicy().update(ctx, made, props, moved)
    assert "Policy" not in attributes(client, dead_letters.physical_id)
    assert json.loads(attributes(client, other.physical_id)["Policy"]) == policy_document(other)

    for _ in range(2):
        sqs.QueuePolicy().delete(ctx, made, moved)
    assert "Policy" not in attributes(client, other.physical_id)


# Canaries: stock moto CloudFormation behaviour this module replaces.


def test_canary_moto_queue_update_keeps_old_settings(client: Any) -> None:
    def template(retention: int) -> str:
        queue = {"QueueName": "canary", "MessageRetentionPeriod": retention}
        return json.dumps(
            {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": queue}}}
        )

    cfn = boto3.client("cloudformation")
    cfn.create_stack(StackName="canary", TemplateBody=template(600))
    cfn.update_stack(StackName="canary", TemplateBody=template(1200))
    url = client.get_queue_url(QueueName="canary")["QueueUrl"]
    assert attributes(client, url)["MessageRetentionPeriod"] == "600"


def test_canary_moto_has_no_queue_policy_type(stock_stack: Any, client: Any) -> None:
    stock_stack(
        {
            "Resources": {
                "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "canary"}},
                "Policy": {
                    "Type": "AWS::SQS::QueuePolicy",
                    "Properties": {
                        "Queues": [{"Ref": "Queue"}],
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Principal": "*",
                                    "Action": "sqs:SendMessage",
                                    "Resource": "*",
                                }
                            ],
                        },
                    },
                },
            }
        },
        skipped=("AWS::SQS::QueuePolicy",),
    )
    url = client.get_queue_url(QueueName="canary")["QueueUrl"]
    assert "Policy" not in attributes(client, url)
