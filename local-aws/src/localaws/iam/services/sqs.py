"""SQS: a queue by ARN, with its queue policy and tags; AWS's denial in SQS's own shape."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.sqs.models import sqs_backends
from moto.utilities.utils import get_partition

from localaws.iam.engine import Decision, Policy, Request
from localaws.iam.targets import Service, Target, request_tags, tags


class SqsAccessDenied(JsonRESTError):
    """SQS's denial: its JSON protocol keeps the query API's code through the
    x-amzn-query-error header (SDKs report AccessDenied, HTTP 403 as the query API answered),
    and its message writes the action in lower case ("sqs:sendmessage")."""

    code = 403

    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message)


def _denial(response: Any, request: Request, decision: Decision) -> Exception:
    # moto answers an authorization error with the response's own headers.
    response.response_headers["x-amzn-query-error"] = "AccessDenied;Sender"
    return SqsAccessDenied(decision.message(replace(request, action=request.action.lower())))


def _targets(response: Any, action: str) -> list[Target]:
    account, region = response.current_account, response.region
    partition = get_partition(region)
    url = response._get_param("QueueUrl")
    name = url.rstrip("/").rsplit("/", 1)[-1] if url else response._get_param("QueueName")
    if not name:
        return [Target("*", account)]
    arn = f"arn:{partition}:sqs:{region}:{account}:{name}"
    queue = sqs_backends[account][region].queues.get(name)
    if queue is None:
        context = request_tags(response._get_param("tags")) if action == "CreateQueue" else {}
        return [Target(arn, account, context=context)]
    policy = Policy("queue policy", queue.policy) if queue.policy else None
    context = tags(queue.tags, "aws:ResourceTag/")
    if action == "TagQueue":
        context.update(request_tags(response._get_param("Tags")))
    return [Target(arn, account, policy, context)]


def queue_policy(queue_arn: str) -> Policy | None:
    """The queue policy of a queue named by ARN (None if it has none, or is gone), for
    accesses the local AWS makes on a principal's behalf (Lambda polling as a role)."""
    _, _, _, region, account, name = queue_arn.split(":", 5)
    queue = sqs_backends[account][region].queues.get(name)
    return Policy("queue policy", queue.policy) if queue is not None and queue.policy else None


# Batch operations need the single-message action (Service Authorization Reference).
SERVICE = Service(
    _targets,
    _denial,
    {
        "SendMessageBatch": "SendMessage",
        "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    },
)
