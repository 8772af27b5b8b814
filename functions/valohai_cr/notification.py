"""Custom::ValohaiNotification: hands the finished setup over to Valohai.

Sends `setup.created`, `setup.updated` and `setup.deleted` with everything Valohai's environment
tooling needs (never a secret value: the Redis secret goes by name and ARN).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent

from valohai_cr.errors import PropertyError
from valohai_cr.events import EventType, build, idempotency_key, stack_of
from valohai_cr.names import dns_name
from valohai_cr.notifier import (
    Delivery,
    Destination,
    Notifier,
    Policy,
    Stakes,
    destination_from,
    policy_from,
)
from valohai_cr.properties import Properties, shown
from valohai_cr.resource import Result
from valohai_cr.work import Work

log = logging.getLogger(__name__)

#: The resource type's properties (besides ServiceToken and ServiceTimeout), as the
#: templates set them.
PROPERTIES = ("ValohaiApiUrl", "SetupTokenSecretArn", "NotificationPolicy", "Handoff")
_ROLE = r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}"
_PRINTABLE = r"[\x20-\x7e]{1,255}"
_IPV4 = "ipv4"
_DNS = "dns"

#: Handoff key -> (event field, full-match pattern or "ipv4", an example for the error message).
HANDOFF_FIELDS: Mapping[str, tuple[str, str, str]] = {
    "AccountId": ("account_id", r"\d{12}", "123456789012"),
    "Region": ("region", r"[a-z]{2}(-[a-z]+)+-\d", "eu-west-1"),
    "ValohaiMasterRoleArn": (
        "valohai_master_role_arn",
        _ROLE,
        "arn:aws:iam::123456789012:role/ValohaiMaster",
    ),
    "WorkerRoleArn": ("worker_role_arn", _ROLE, "arn:aws:iam::123456789012:role/ValohaiWorkerRole"),
    "WorkerInstanceProfileArn": (
        "worker_instance_profile_arn",
        r"arn:aws[a-z-]*:iam::\d{12}:instance-profile/[\w+=,.@/-]{1,512}",
        "arn:aws:iam::123456789012:instance-profile/ValohaiWorkerInstanceProfile",
    ),
    "QueueRoleArn": ("queue_role_arn", _ROLE, "arn:aws:iam::123456789012:role/ValohaiQueueRole"),
    "QueuePublicIp": ("queue_public_ip", _IPV4, "203.0.113.10"),
    "QueuePrivateIp": ("queue_private_ip", _IPV4, "10.0.1.10"),
    "QueueAddress": ("queue_address", _DNS, "acme.vqueue.net"),
    "RedisSecretArn": (
        "redis_secret_arn",
        r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ValohaiRedisSecret-AbCdEf",
    ),
    "RedisSecretName": ("redis_secret_name", r"[A-Za-z0-9/_+=.@-]{1,512}", "ValohaiRedisSecret"),
    "DataBucketName": (
        "data_bucket_name",
        r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
        "valohai-data-123456789012",
    ),
    "MultipartRoleArn": (
        "multipart_role_arn",
        _ROLE,
        "arn:aws:iam::123456789012:role/ValohaiS3MultipartRole-x",
    ),
    "VpcId": ("vpc_id", r"vpc-[0-9a-f]{8,17}", "vpc-0123456789abcdef0"),
    "SubnetIds": (
        "subnet_ids",
        r"subnet-[0-9a-f]{8,17}(,subnet-[0-9a-f]{8,17})*",
        "subnet-0123abcd,subnet-4567ef01",
    ),
    "WorkerSecurityGroupId": (
        "worker_security_group_id",
        r"sg-[0-9a-f]{8,17}",
        "sg-0123456789abcdef0",
    ),
    "WorkerSecurityGroupName": ("worker_security_group_name", _PRINTABLE, "valohai-sg-workers"),
    "QueueSecurityGroupId": (
        "queue_security_group_id",
        r"sg-[0-9a-f]{8,17}",
        "sg-0123456789abcdef0",
    ),
    "KeyPairName": ("key_pair_name", _PRINTABLE, "valohai-queue"),
    "ProductVersion": ("product_version", r"[A-Za-z0-9._+-]{1,64}", "1.0.0"),
}


def parse_handoff(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The `handoff` object of a setup event, every field checked (see HANDOFF_FIELDS)."""
    unknown = sorted(str(key) for key in raw if key not in HANDOFF_FIELDS)
    if unknown:
        raise PropertyError(
            f"Handoff has unknown keys {', '.join(unknown)}: "
            f"the keys are {', '.join(HANDOFF_FIELDS)}"
        )
    handoff: dict[str, Any] = {}
    for key, (field, pattern, example) in HANDOFF_FIELDS.items():
        value = raw.get(key)
        checked = _checked(value, pattern) if isinstance(value, str) else None
        if checked is None:
            got = "it is missing" if value is None else f"got {shown(value)}"
            raise PropertyError(f"Handoff.{key} must look like {example}: {got}")
        handoff[field] = checked.split(",") if key == "SubnetIds" else checked
    return handoff


def _checked(value: str, pattern: str) -> str | None:
    """`value` in its canonical form when it matches `pattern`, else None."""
    try:
        if pattern == _IPV4:
            return str(ipaddress.IPv4Address(value))
        if pattern == _DNS:
            return dns_name(value)
    except (ValueError, PropertyError):
        return None
    return value if re.fullmatch(pattern, value) else None


class NotificationSettings(NamedTuple):
    destination: Destination
    policy: Policy
    handoff: dict[str, Any]

    @classmethod
    def parse(cls, raw: Any) -> NotificationSettings:
        props = Properties(raw, PROPERTIES)
        destination = destination_from(props)
        policy = policy_from(props)
        handoff = parse_handoff(
            props.mapping("Handoff", expected=f"a map with the keys {', '.join(HANDOFF_FIELDS)}")
        )
        return cls(destination, policy, handoff)


def _old_handoff(event: CloudFormationCustomResourceEvent) -> dict[str, Any] | None:
    """The hand-off the previous properties sent; None when they did not hold a valid one."""
    raw = (event.old_resource_properties or {}).get("Handoff")
    if not isinstance(raw, Mapping):
        return None
    try:
        return parse_handoff(raw)
    except PropertyError:
        return None


class NotificationProvider:
    def __init__(
        self, notifier: Notifier, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._notifier = notifier
        self._now = now

    def create(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result:
        stable_id = "-".join(
            (
                stack_of(event.stack_id)["name"],
                event.logical_resource_id,
                hashlib.sha256(
                    f"{event.stack_id}\n{event.logical_resource_id}".encode()
                ).hexdigest()[:12],
            )
        )
        return self._send(EventType.SETUP_CREATED, stable_id, event, work)

    def update(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result:
        settings = NotificationSettings.parse(event.resource_properties)
        if settings.handoff == _old_handoff(event):
            # Only NotificationPolicy, ValohaiApiUrl or the token secret changed: Valohai
            # already has this hand-off, and setup.updated means the hand-off changed.
            log.info("The hand-off is unchanged: no setup.updated to send")
            return Result(
                event.physical_resource_id, {"EventId": "", "Delivery": Delivery.UNCHANGED.value}
            )
        return self._send(EventType.SETUP_UPDATED, event.physical_resource_id, event, work)

    def delete(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result:
        try:
            return self._send(EventType.SETUP_DELETED, event.physical_resource_id, event, work)
        except PropertyError as error:
            log.warning("Not telling Valohai about the deletion: %s", error.reason)
            return Result(event.physical_resource_id, {})

    def _send(
        self,
        event_type: EventType,
        physical_id: str,
        event: CloudFormationCustomResourceEvent,
        work: Work,
    ) -> Result:
        settings = NotificationSettings.parse(event.resource_properties)
        key = idempotency_key(
            event_type, event.stack_id, event.logical_resource_id, event.request_id
        )
        message = build(
            event_type,
            key,
            stack_id=event.stack_id,
            data={"handoff": settings.handoff},
            occurred_at=self._now(),
        )
        delivery = self._notifier.notify(
            message, settings.destination, work, Stakes.of(event.request_type, settings.policy)
        )
        return Result(physical_id, {"EventId": key, "Delivery": delivery.value})
