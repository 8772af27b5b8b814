"""SQS queues and queue policies.

moto's Queue model updates only VisibilityTimeout and ReceiveMessageWaitTimeSeconds (a changed
RedrivePolicy, retention or key is silently kept as it was); it has no QueuePolicy type.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from moto.sqs.models import Queue as MotoQueue
from moto.sqs.models import SQSBackend, sqs_backends

from .base import Provisioned, ResourceContext, register
from .common import MotoProvisioner, as_bool, generated_name, json_text, resource_tags, sync_tags

# Queue attributes a template may set, with the value AWS uses when it names none.
_DEFAULTS: dict[str, Any] = {
    "ContentBasedDeduplication": False,
    "DeduplicationScope": "queue",
    "DelaySeconds": 0,
    "FifoThroughputLimit": "perQueue",
    "KmsDataKeyReusePeriodSeconds": 300,
    "KmsMasterKeyId": None,
    "MaximumMessageSize": 262144,
    "MessageRetentionPeriod": 345600,
    "ReceiveMessageWaitTimeSeconds": 0,
    "RedrivePolicy": "",
    "RedriveAllowPolicy": None,
    "SqsManagedSseEnabled": True,
    "VisibilityTimeout": 30,
}


def sqs_backend(ctx: ResourceContext) -> SQSBackend:
    return sqs_backends[ctx.account_id][ctx.region]


def queue_url(ctx: ResourceContext, name: str) -> str:
    """The URL AWS gives a queue; moto's SQS takes any URL and reads the name at its end."""
    return f"https://sqs.{ctx.region}.amazonaws.com/{ctx.account_id}/{name}"


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _attributes(props: dict[str, Any]) -> dict[str, Any]:
    attributes = {key: props[key] for key in _DEFAULTS if key in props}
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):  # JSON objects in templates
        if attributes.get(key):
            attributes[key] = json_text(attributes[key])
    if as_bool(props.get("FifoQueue")):
        attributes["FifoQueue"] = "true"
    return attributes


@register
class Queue(MotoProvisioner):
    """Ref is the queue URL; GetAtt Arn, QueueName and QueueUrl."""

    resource_type = "AWS::SQS::Queue"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        name = props.get("QueueName")
        if not name:
            fifo = as_bool(props.get("FifoQueue"))
            name = generated_name(ctx, 75 if fifo else 80) + (".fifo" if fifo else "")
        queue = sqs_backend(ctx).create_queue(
            name, tags=resource_tags(ctx, props), **_attributes(props)
        )
        url = queue_url(ctx, queue.name)
        return Provisioned(url, {"Arn": queue.queue_arn, "QueueName": queue.name, "QueueUrl": url})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        backend = sqs_backend(ctx)
        queue: MotoQueue = backend.get_queue(_queue_name(current.physical_id))
        dropped = {key: _DEFAULTS[key] for key in _attributes(old_props) if key in _DEFAULTS}
        # moto clears the queue policy unless it is passed along (a QueuePolicy owns it).
        attributes = {**dropped, **_attributes(new_props), "Policy": queue.policy}
        backend.set_queue_attributes(queue.name, attributes)
        sync_tags(
            resource_tags(ctx, new_props),
            queue.tags,
            partial(backend.untag_queue, queue.name),
            partial(backend.tag_queue, queue.name),
        )
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = sqs_backend(ctx)
        name = _queue_name(current.physical_id)
        if name in backend.queues:
            backend.delete_queue(name)


@register
class QueuePolicy(MotoProvisioner):
    """The access policy of one or more queues (given by URL); Ref is a generated id."""

    resource_type = "AWS::SQS::QueuePolicy"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        self._set(ctx, props["Queues"], json_text(props["PolicyDocument"]))
        policy_id = generated_name(ctx, 128)
        return Provisioned(policy_id, {"Id": policy_id})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        dropped = set(old_props["Queues"]) - set(new_props["Queues"])
        self._set(ctx, sorted(dropped), "")
        self._set(ctx, new_props["Queues"], json_text(new_props["PolicyDocument"]))
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = sqs_backend(ctx)
        existing = [url for url in props["Queues"] if _queue_name(url) in backend.queues]
        self._set(ctx, existing, "")

    @staticmethod
    def _set(ctx: ResourceContext, urls: list[str], policy: str) -> None:
        backend = sqs_backend(ctx)
        for url in urls:
            backend.set_queue_attributes(_queue_name(url), {"Policy": policy})
