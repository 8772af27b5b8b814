"""Custom::ValohaiQueueAddress: binds the queue's DNS name to its Elastic IP.

Valohai creates the DNS record for the address, so it is told the binding (a signed
`queue_address.registered` event); the account keeps a record of it in SSM Parameter Store,
which is also the proof of ownership: Delete deregisters only an address whose record names
this stack and resource.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent

from valohai_cr.errors import PropertyError, ResourceFailure
from valohai_cr.events import EventType, build, idempotency_key, stack_of
from valohai_cr.names import EXAMPLE_ADDRESS, dns_name, public_ipv4
from valohai_cr.notifier import Destination, Notifier, Policy, Stakes, destination_from, policy_from
from valohai_cr.properties import Properties
from valohai_cr.resource import Result
from valohai_cr.tags import owned_tags
from valohai_cr.work import Work

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

log = logging.getLogger(__name__)

RECORD_PREFIX = "/valohai-hybrid/queue-address/"
#: The template offers up to 900 s; the wait also ends before the Lambda deadline.
MAX_DNS_WAIT = 900
DNS_POLL_INTERVAL = 5.0
#: Time kept back from a DNS wait to undo a failed Create before the deadline.
UNDO_RESERVE = 3.0
#: The resource type's properties (besides ServiceToken and ServiceTimeout), as the
#: templates set them.
PROPERTIES = (
    "QueueAddress",
    "PublicIp",
    "ValohaiApiUrl",
    "SetupTokenSecretArn",
    "NotificationPolicy",
    "WaitForDns",
    "DnsWaitSeconds",
)

Resolver = Callable[[str], Collection[str]]


def _address(value: Any) -> str | None:
    """`value` as a queue address, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return dns_name(value)
    except PropertyError:
        return None


def resolve_ipv4(name: str) -> set[str]:
    """The A records of `name` as the Lambda's resolver sees them (none while it fails)."""
    try:
        answers = socket.getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except OSError:
        return set()
    return {str(answer[4][0]) for answer in answers}


class QueueAddressSettings(NamedTuple):
    address: str
    public_ip: str
    destination: Destination
    policy: Policy
    wait_for_dns: bool
    dns_wait_seconds: int

    @classmethod
    def parse(cls, raw: Any) -> QueueAddressSettings:
        props = Properties(raw, PROPERTIES)
        address = dns_name(
            props.text("QueueAddress", expected=f"a DNS name such as {EXAMPLE_ADDRESS}")
        )
        public_ip = public_ipv4(props.text("PublicIp", expected="the queue's Elastic IP address"))
        destination = destination_from(props)
        policy = policy_from(props)
        wait = props.flag("WaitForDns", default=False)
        seconds = props.integer("DnsWaitSeconds", default=300, minimum=1, maximum=MAX_DNS_WAIT)
        return cls(address, public_ip, destination, policy, wait, seconds)


class Record(NamedTuple):
    """The account's record of a binding: SSM parameter RECORD_PREFIX + address."""

    address: str
    public_ip: str
    stack_id: str
    logical_resource_id: str

    @property
    def parameter(self) -> str:
        return RECORD_PREFIX + self.address

    def to_json(self) -> str:
        return json.dumps(
            {
                "address": self.address,
                "public_ip": self.public_ip,
                "stack_id": self.stack_id,
                "logical_resource_id": self.logical_resource_id,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Record | None:
        """None when the parameter was not written by this function."""
        try:
            fields = json.loads(text)
            return cls(
                str(fields["address"]),
                str(fields["public_ip"]),
                str(fields["stack_id"]),
                str(fields["logical_resource_id"]),
            )
        except (ValueError, TypeError, KeyError):
            return None

    def belongs_to(self, event: CloudFormationCustomResourceEvent) -> bool:
        return (self.stack_id, self.logical_resource_id) == (
            event.stack_id,
            event.logical_resource_id,
        )


class QueueAddressProvider:
    def __init__(
        self,
        ssm: SSMClient,
        notifier: Notifier,
        *,
        resolver: Resolver = resolve_ipv4,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = DNS_POLL_INTERVAL,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ssm = ssm
        self._notifier = notifier
        self._resolver = resolver
        self._sleep = sleep
        self._poll_interval = poll_interval
        self._now = now

    def create(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result:
        settings = QueueAddressSettings.parse(event.resource_properties)
        record = self._claim(settings, event, work)
        try:
            self._register(settings, event, work)
            if settings.wait_for_dns:
                self._wait_for_dns(settings, work)
        except ResourceFailure:
            # Undo here: the rollback Delete will not carry this address as its physical id.
            # Deregistered even when the registration seemed to fail: Valohai may have accepted
            # an attempt whose answer never came (or came too late), and deregistering a binding
            # it does not have changes nothing.
            self._release(record, settings.destination, event, work, deregister=True)
            raise
        return self._result(record)

    def update(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result:
        settings = QueueAddressSettings.parse(event.resource_properties)
        if settings.address != event.physical_resource_id:
            # A new address replaces the binding; CloudFormation then deletes the old one.
            return self.create(event, work)
        old = event.old_resource_properties
        record = self._claim(settings, event, work)
        if (settings.public_ip, settings.destination.api_url) != (
            old.get("PublicIp"),
            old.get("ValohaiApiUrl"),
        ):
            self._register(settings, event, work)
        if settings.wait_for_dns:
            self._wait_for_dns(settings, work)
        return self._result(record)

    def delete(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result:
        result = Result(event.physical_resource_id, {})
        address = _address(event.physical_resource_id) or _address(
            event.resource_properties.get("QueueAddress")
        )
        if address is None:
            log.info("Nothing to delete: the Create never bound an address")
            return result
        # Without the address as its id, the Create ended before answering (its deadline came):
        # it may have claimed and registered the address in its properties, and the record
        # says whether it did.
        record = self._read(address, work)
        if record is None or not record.belongs_to(event):
            log.info("Not deregistering %s: this resource did not register it", address)
            return result
        try:
            destination: Destination | None = QueueAddressSettings.parse(
                event.resource_properties
            ).destination
        except PropertyError as error:
            log.warning("Not telling Valohai about the deregistration: %s", error.reason)
            destination = None
        self._release(record, destination, event, work, deregister=destination is not None)
        return result

    def _claim(
        self, settings: QueueAddressSettings, event: CloudFormationCustomResourceEvent, work: Work
    ) -> Record:
        """Write this resource's record, unless the address is another stack's (then refuse)."""
        record = Record(
            settings.address, settings.public_ip, event.stack_id, event.logical_resource_id
        )
        existing = self._read(settings.address, work)
        if existing is None:
            with work.step(f"recording the queue address in {record.parameter}"):
                try:
                    self._ssm.put_parameter(
                        Name=record.parameter,
                        Value=record.to_json(),
                        Type="String",
                        Description="Queue address binding registered with Valohai",
                        Tags=[{"Key": k, "Value": v} for k, v in owned_tags(event.stack_id)],
                    )
                    return record
                except self._ssm.exceptions.ParameterAlreadyExists:
                    existing = self._read(settings.address, work)
        if existing is None or not existing.belongs_to(event):
            raise ResourceFailure(self._conflict(record.parameter, existing))
        if existing != record:
            with work.step(f"updating the record {record.parameter}"):
                self._ssm.put_parameter(
                    Name=record.parameter, Value=record.to_json(), Type="String", Overwrite=True
                )
        return record

    def _release(
        self,
        record: Record,
        destination: Destination | None,
        event: CloudFormationCustomResourceEvent,
        work: Work,
        *,
        deregister: bool,
    ) -> None:
        if deregister and destination is not None:
            self._notify(
                EventType.QUEUE_ADDRESS_DEREGISTERED,
                record.address,
                record.public_ip,
                destination,
                event,
                work,
                Stakes.ADVISORY,
            )
        with (
            work.step(f"removing the record {record.parameter}"),
            contextlib.suppress(self._ssm.exceptions.ParameterNotFound),
        ):
            self._ssm.delete_parameter(Name=record.parameter)

    def _register(
        self, settings: QueueAddressSettings, event: CloudFormationCustomResourceEvent, work: Work
    ) -> None:
        stakes = Stakes.of(event.request_type, settings.policy, registration=True)
        self._notify(
            EventType.QUEUE_ADDRESS_REGISTERED,
            settings.address,
            settings.public_ip,
            settings.destination,
            event,
            work,
            stakes,
        )

    def _notify(
        self,
        event_type: EventType,
        address: str,
        public_ip: str,
        destination: Destination,
        event: CloudFormationCustomResourceEvent,
        work: Work,
        stakes: Stakes,
    ) -> None:
        key = idempotency_key(
            event_type, event.stack_id, event.logical_resource_id, event.request_id
        )
        message = build(
            event_type,
            key,
            stack_id=event.stack_id,
            data={"queue_address": address, "public_ip": public_ip},
            occurred_at=self._now(),
        )
        self._notifier.notify(message, destination, work, stakes)

    def _wait_for_dns(self, settings: QueueAddressSettings, work: Work) -> None:
        budget = work.limited(min(settings.dns_wait_seconds, work.remaining() - UNDO_RESERVE))
        started = budget.remaining()
        with work.step(f"waiting for {settings.address} to resolve to {settings.public_ip}"):
            while True:
                answers = self._resolver(settings.address)
                if settings.public_ip in answers:
                    log.info("%s resolves to %s", settings.address, settings.public_ip)
                    return
                if budget.remaining() <= self._poll_interval:
                    break
                self._sleep(self._poll_interval)
        seen = ", ".join(sorted(answers)) or "nothing"
        raise ResourceFailure(
            f"{settings.address} did not resolve to {settings.public_ip} within {started:.0f} s "
            f"(it resolves to {seen}). Valohai creates the record after the registration: try "
            "again later, or set WaitForDns to false"
        )

    def _read(self, address: str, work: Work) -> Record | None:
        name = RECORD_PREFIX + address
        with work.step(f"reading the record {name}"):
            try:
                value = self._ssm.get_parameter(Name=name)["Parameter"].get("Value", "")
            except self._ssm.exceptions.ParameterNotFound:
                return None
        return Record.from_json(value) or Record(address, "", "", "")

    @staticmethod
    def _conflict(parameter: str, existing: Record | None) -> str:
        if existing is None or not existing.stack_id:
            return (
                f"The SSM parameter {parameter} exists and was not written by Valohai Hybrid: "
                "delete it, or use another QueueAddress"
            )
        try:
            owner = stack_of(existing.stack_id)["name"]
        except ValueError:
            owner = existing.stack_id
        return (
            f"QueueAddress {existing.address} is already bound to {existing.public_ip} by stack "
            f"{owner} in this account: use the address Valohai gave this setup, "
            "or delete that stack"
        )

    @staticmethod
    def _result(record: Record) -> Result:
        return Result(
            record.address,
            {
                "QueueAddress": record.address,
                "PublicIp": record.public_ip,
                "RecordParameter": record.parameter,
            },
        )
