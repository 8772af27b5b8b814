"""The platform's functions act as their own execution roles (the local AWS enforces IAM as
Lambda does): a statement removed from a role is a permission the function loses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle

from tests.support.platform import REGION
from valohai_hybrid.publish import Published

REDELIVERY_FUNCTION = "valohai-hybrid-redelivery"


def _physical_id(local_aws: LocalAwsHandle, platform: Published, logical_id: str) -> str:
    detail = local_aws.client("cloudformation", REGION).describe_stack_resource(
        StackName=platform.stack_name, LogicalResourceId=logical_id
    )["StackResourceDetail"]
    return str(detail["PhysicalResourceId"])


def _second_consumer(lambda_: Any, queue_arn: str) -> None:
    """Map the consumer to its queue once more; deleted at once if that was not refused (a
    second consumer of the queue would disturb the other tests)."""
    mapping = lambda_.create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName=REDELIVERY_FUNCTION
    )
    lambda_.delete_event_source_mapping(UUID=mapping["UUID"])


def test_the_redelivery_consumer_needs_its_queue_statement(
    local_aws: LocalAwsHandle, platform: Published
) -> None:
    """Lambda polls the redelivery queue as RedeliveryRole: without ConsumeTheRedeliveryQueue
    the event source mapping is refused ("Using Lambda with Amazon SQS" lists the three
    actions the role needs)."""
    iam = local_aws.client("iam", REGION)
    lambda_ = local_aws.client("lambda", REGION)
    role = _physical_id(local_aws, platform, "RedeliveryRole")
    queue_url = _physical_id(local_aws, platform, "RedeliveryQueue")
    queue_arn = local_aws.client("sqs", REGION).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    original: dict[str, Any] = iam.get_role_policy(RoleName=role, PolicyName="redelivery")[
        "PolicyDocument"
    ]
    statements = original["Statement"]
    assert "ConsumeTheRedeliveryQueue" in [s.get("Sid") for s in statements]
    trimmed = {
        **original,
        "Statement": [s for s in statements if s.get("Sid") != "ConsumeTheRedeliveryQueue"],
    }
    enforcing = local_aws.control("iam-enforcement")["enforce"]
    local_aws.control("iam-enforcement", {"enforce": True})  # even in a run with it off
    iam.put_role_policy(RoleName=role, PolicyName="redelivery", PolicyDocument=json.dumps(trimmed))
    try:
        with pytest.raises(ClientError) as refused:
            _second_consumer(lambda_, queue_arn)
    finally:
        iam.put_role_policy(
            RoleName=role, PolicyName="redelivery", PolicyDocument=json.dumps(original)
        )
        local_aws.control("iam-enforcement", {"enforce": enforcing})
    assert refused.value.response["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "The provided execution role does not have permissions to call "
        "ReceiveMessage on SQS",
    }
