"""Forwards CloudFormation stack-status changes of launched setups to Valohai.

Fed by an EventBridge rule on "CloudFormation Stack Status Change". A stack is a Valohai Hybrid
setup when a setup-token secret carries its id (tag valohai-hybrid:stack-id); other stacks,
nested stacks included, are ignored. A setup has exactly one final event: ROLLBACK_COMPLETE
for a launch that rolled back (its later DELETE_COMPLETE is not sent: the setup ended already),
DELETE_COMPLETE otherwise. After it, whatever became of it, the token secret is force-deleted,
behind whatever events of the setup still wait for redelivery: then nothing is left to sign.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from valohai_cr.delivery import events_url
from valohai_cr.errors import PropertyError
from valohai_cr.events import EventType, build, idempotency_key
from valohai_cr.notifier import Destination, Notifier, SetupTokens, Stakes
from valohai_cr.work import Work

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import StackEventTypeDef

log = logging.getLogger(__name__)

DETAIL_TYPE = "CloudFormation Stack Status Change"
FORWARDED_STATUSES = frozenset(
    {
        "CREATE_FAILED",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "UPDATE_FAILED",
        "UPDATE_ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_FAILED",
        "DELETE_FAILED",
        "DELETE_COMPLETE",
    }
)
FINAL_STATUSES = frozenset({"DELETE_COMPLETE", "ROLLBACK_COMPLETE"})
#: The stack's own events that start an operation: failures before them belong to older ones.
OPERATION_STARTS = frozenset({"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"})
API_URL_PARAMETER = "ValohaiApiUrl"
MAX_FAILED_RESOURCES = 20
MAX_EVENT_PAGES = 5


class StackStatusForwarder:
    def __init__(
        self,
        cloudformation: CloudFormationClient,
        tokens: SetupTokens,
        notifier: Notifier,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._cloudformation = cloudformation
        self._tokens = tokens
        self._notifier = notifier
        self._now = now

    def forward(self, event: EventBridgeEvent, work: Work) -> str:
        """Forward one EventBridge event; returns what was done, for the log."""
        try:
            detail_type, detail, event_id = event.detail_type, event.detail, event.get_id
        except KeyError:
            return "ignored: not an EventBridge event"
        stack_id = detail.get("stack-id")
        status_details = detail.get("status-details") or {}
        status = status_details.get("status")
        if detail_type != DETAIL_TYPE or not stack_id or not status:
            return "ignored: not a CloudFormation stack status change"
        if status not in FORWARDED_STATUSES:
            return f"ignored: {status} is not forwarded"
        token_arn = self._tokens.find(stack_id, work)
        if token_arn is None:
            return "ignored: not a Valohai Hybrid setup stack"
        if status == "DELETE_COMPLETE" and self._rolled_back(stack_id, work):
            return "ignored: the setup ended with its ROLLBACK_COMPLETE"
        api_url = self._api_url(stack_id, work)
        if api_url is None:
            return f"ignored: the stack has no valid {API_URL_PARAMETER} parameter"
        key = idempotency_key(EventType.STACK_STATUS_CHANGED, event_id)
        message = build(
            EventType.STACK_STATUS_CHANGED,
            key,
            stack_id=stack_id,
            data={
                "status": status,
                "status_reason": str(status_details.get("status-reason") or ""),
                "final": status in FINAL_STATUSES,
                "failed_resources": self._failed_resources(stack_id, work),
            },
            occurred_at=self._occurred_at(event),
        )
        delivery = self._notifier.notify(
            message,
            Destination(api_url, token_arn),
            work,
            Stakes.QUEUEABLE,
            final=status in FINAL_STATUSES,
        )
        return delivery.value

    def _api_url(self, stack_id: str, work: Work) -> str | None:
        with work.step(f"reading the parameters of {stack_id}"):
            stacks = self._cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
        parameters = {
            p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])
        }
        api_url = parameters.get(API_URL_PARAMETER)
        try:
            events_url(api_url or "")
        except PropertyError as error:
            log.error("Cannot forward the status of %s: %s", stack_id, error.reason)
            return None
        return api_url

    def _rolled_back(self, stack_id: str, work: Work) -> bool:
        """Whether the stack reached ROLLBACK_COMPLETE: then that was its final event."""
        with work.step(f"reading the events of {stack_id}"):
            pages = self._cloudformation.get_paginator("describe_stack_events").paginate(
                StackName=stack_id, PaginationConfig={"MaxItems": 100 * MAX_EVENT_PAGES}
            )
            return any(
                e.get("PhysicalResourceId") == stack_id
                and e.get("ResourceStatus") == "ROLLBACK_COMPLETE"
                for page in pages
                for e in page.get("StackEvents", [])
            )

    def _failed_resources(self, stack_id: str, work: Work) -> list[dict[str, str]]:
        """The resources that failed in the operation that just ended, oldest (root cause) first."""
        failed: list[StackEventTypeDef] = []
        with work.step(f"reading the events of {stack_id}"):
            pages = self._cloudformation.get_paginator("describe_stack_events").paginate(
                StackName=stack_id, PaginationConfig={"MaxItems": 100 * MAX_EVENT_PAGES}
            )
            for page in pages:
                for stack_event in page.get("StackEvents", []):
                    own = stack_event.get("PhysicalResourceId") == stack_id
                    if own and stack_event.get("ResourceStatus") in OPERATION_STARTS:
                        return [_failure(e) for e in reversed(failed)][:MAX_FAILED_RESOURCES]
                    if not own and stack_event.get("ResourceStatus", "").endswith("_FAILED"):
                        failed.append(stack_event)
        return [_failure(e) for e in reversed(failed)][:MAX_FAILED_RESOURCES]

    def _occurred_at(self, event: EventBridgeEvent) -> datetime:
        try:
            return datetime.fromisoformat(event.time)
        except (KeyError, TypeError, ValueError):
            return self._now()


def _failure(stack_event: StackEventTypeDef) -> dict[str, str]:
    return {
        "logical_resource_id": stack_event.get("LogicalResourceId", ""),
        "physical_resource_id": stack_event.get("PhysicalResourceId", ""),
        "resource_type": stack_event.get("ResourceType", ""),
        "status": stack_event.get("ResourceStatus", ""),
        "status_reason": stack_event.get("ResourceStatusReason", ""),
        "timestamp": stack_event["Timestamp"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
