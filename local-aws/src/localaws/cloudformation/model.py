"""Stacks, their resources and events, as the engine keeps them and the API shows them."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .parameters import ResolvedParameters
from .provisioners.base import Provisioned

STABLE_STATUSES = {
    "CREATE_COMPLETE",
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "UPDATE_COMPLETE",
    "UPDATE_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
    "DELETE_COMPLETE",
    "DELETE_FAILED",
    "REVIEW_IN_PROGRESS",
}
# States from which UpdateStack is allowed.
UPDATABLE_STATUSES = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
}


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StackEvent:
    stack_id: str
    stack_name: str
    logical_id: str
    physical_id: str
    resource_type: str
    status: str
    reason: str | None
    properties: str | None = None
    timestamp: datetime = field(default_factory=now)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    # moto's names for the same fields, for code written against moto's events.
    @property
    def resource_status(self) -> str:
        return self.status

    @property
    def resource_status_reason(self) -> str | None:
        return self.reason

    @property
    def logical_resource_id(self) -> str:
        return self.logical_id

    def to_api(self) -> dict[str, Any]:
        event = {
            "StackId": self.stack_id,
            "EventId": self.event_id,
            "StackName": self.stack_name,
            "LogicalResourceId": self.logical_id,
            "PhysicalResourceId": self.physical_id,
            "ResourceType": self.resource_type,
            "Timestamp": self.timestamp,
            "ResourceStatus": self.status,
        }
        if self.reason:
            event["ResourceStatusReason"] = self.reason
        if self.properties:
            event["ResourceProperties"] = self.properties
        return event


@dataclass
class ResourceRecord:
    """One logical resource of a stack and the physical resource behind it, if any."""

    logical_id: str
    resource_type: str
    status: str
    reason: str | None = None
    provisioned: Provisioned | None = None
    # The resolved properties the physical resource was created or last updated with.
    props: dict[str, Any] = field(default_factory=dict)
    metadata: Any = None
    updated_at: datetime = field(default_factory=now)

    @property
    def physical_id(self) -> str:
        return self.provisioned.physical_id if self.provisioned else ""


@dataclass
class Plan:
    """A template made ready to run: parameters resolved, conditions decided, order computed."""

    body: str
    template: dict[str, Any]
    parameters: ResolvedParameters
    conditions: dict[str, bool]
    # Resources whose Condition holds, in an order that creates dependencies first.
    order: list[str]
    dependencies: dict[str, set[str]]

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template["Resources"]
        return resources


class Stack:
    """A stack and everything the API reports about it."""

    def __init__(
        self,
        *,
        stack_id: str,
        name: str,
        account_id: str,
        region: str,
        plan: Plan | None,
        tags: dict[str, str],
        role_arn: str | None,
        notification_arns: list[str],
        capabilities: list[str],
        on_failure: str,
        timeout_in_minutes: int | None,
        parent_id: str | None = None,
        root_id: str | None = None,
        termination_protection: bool = False,
    ) -> None:
        self.stack_id = stack_id
        self.name = name
        self.account_id = account_id
        self.region = region
        self.plan = plan
        self.tags = tags
        self.role_arn = role_arn
        self.notification_arns = notification_arns
        self.capabilities = capabilities
        self.on_failure = on_failure
        self.timeout_in_minutes = timeout_in_minutes
        self.parent_id = parent_id
        self.root_id = root_id
        self.termination_protection = termination_protection
        self.status = "REVIEW_IN_PROGRESS" if plan is None else "CREATE_IN_PROGRESS"
        self.status_reason: str | None = None
        self.resources: dict[str, ResourceRecord] = {}
        self.outputs: list[dict[str, Any]] = []
        self.events: list[StackEvent] = []
        self.creation_time = now()
        self.last_updated_time: datetime | None = None
        self.deletion_time: datetime | None = None
        self.change_set_id: str | None = None
        # Who started the latest operation (an IAM user or an assumed-role session), None for
        # the account's administrator: a stack without a role acts with its caller's
        # credentials, as CloudFormation does ("If you don't specify a role, CloudFormation
        # uses a temporary session generated from your user credentials").
        self.caller_arn: str | None = None
        # Set whenever an operation ends; nested stacks and waiters block on it.
        self.settled = threading.Event()

    @property
    def template_body(self) -> str:
        return self.plan.body if self.plan else ""

    @property
    def is_in_progress(self) -> bool:
        return self.status.endswith("_IN_PROGRESS") and self.status != "REVIEW_IN_PROGRESS"

    def to_api(self) -> dict[str, Any]:
        stack: dict[str, Any] = {
            "StackId": self.stack_id,
            "StackName": self.name,
            "CreationTime": self.creation_time,
            "StackStatus": self.status,
            "DisableRollback": self.on_failure == "DO_NOTHING",
            "NotificationARNs": list(self.notification_arns),
            "Capabilities": list(self.capabilities),
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
            "EnableTerminationProtection": self.termination_protection,
            "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
        }
        optional = {
            "Description": self.plan.template.get("Description") if self.plan else None,
            "StackStatusReason": self.status_reason,
            "LastUpdatedTime": self.last_updated_time,
            "DeletionTime": self.deletion_time,
            "RoleARN": self.role_arn,
            "TimeoutInMinutes": self.timeout_in_minutes,
            "ParentId": self.parent_id,
            "RootId": self.root_id,
            "ChangeSetId": self.change_set_id,
            "Outputs": self.outputs or None,
        }
        stack.update({k: v for k, v in optional.items() if v is not None})
        if self.plan:
            stack["Parameters"] = self.parameters_api()
        return stack

    def parameters_api(self) -> list[dict[str, Any]]:
        assert self.plan is not None
        params = self.plan.parameters
        result = []
        for key, value in params.given.items():
            item = {
                "ParameterKey": key,
                "ParameterValue": "****" if key in params.no_echo else value,
            }
            if key in params.resolved_ssm:
                item["ResolvedValue"] = params.resolved_ssm[key]
            result.append(item)
        return result

    def summary_api(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "StackId": self.stack_id,
            "StackName": self.name,
            "CreationTime": self.creation_time,
            "StackStatus": self.status,
            "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
        }
        for key, value in (
            ("TemplateDescription", self.plan.template.get("Description") if self.plan else None),
            ("LastUpdatedTime", self.last_updated_time),
            ("DeletionTime", self.deletion_time),
            ("StackStatusReason", self.status_reason),
            ("ParentId", self.parent_id),
            ("RootId", self.root_id),
        ):
            if value is not None:
                summary[key] = value
        return summary

    def resource_api(self, record: ResourceRecord, *, detail: bool = False) -> dict[str, Any]:
        item: dict[str, Any] = {
            "StackName": self.name,
            "StackId": self.stack_id,
            "LogicalResourceId": record.logical_id,
            "PhysicalResourceId": record.physical_id,
            "ResourceType": record.resource_type,
            "ResourceStatus": record.status,
            "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"},
        }
        if record.reason:
            item["ResourceStatusReason"] = record.reason
        if detail:
            item["LastUpdatedTimestamp"] = record.updated_at
            if record.metadata is not None:
                item["Metadata"] = json.dumps(record.metadata)
        else:
            item["Timestamp"] = record.updated_at
        return item


@dataclass
class ChangeSet:
    change_set_id: str
    name: str
    stack: Stack
    change_set_type: str
    plan: Plan
    supplied_parameters: dict[str, str]
    capabilities: list[str]
    tags: dict[str, str]
    role_arn: str | None
    description: str | None
    notification_arns: list[str]
    changes: list[dict[str, Any]]
    status: str = "CREATE_COMPLETE"
    status_reason: str | None = None
    execution_status: str = "AVAILABLE"
    creation_time: datetime = field(default_factory=now)
