"""Provisioned products and their records, whose status is read from the CloudFormation stack.

Stack operations may finish after the API call that started them (the local CloudFormation
engine works in the background, like AWS's), so a record never stores a status of its own until
it is final: every read maps the stack's current status to the record's and the provisioned
product's, and the first read that sees a final status freezes the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.cloudformation.exceptions import CloudFormationError
from moto.core.utils import utcnow

from .models.entities import new_id, tag_list

PROVISION = "PROVISION_PRODUCT"
UPDATE = "UPDATE_PROVISIONED_PRODUCT"
TERMINATE = "TERMINATE_PROVISIONED_PRODUCT"

CREATED = "CREATED"
IN_PROGRESS = "IN_PROGRESS"
IN_PROGRESS_IN_ERROR = "IN_PROGRESS_IN_ERROR"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
FINAL = (SUCCEEDED, FAILED)

# What each stack status means for the record of the operation that led to it.
_RECORD_STATUS = {
    PROVISION: {
        "CREATE_PENDING": IN_PROGRESS,
        "REVIEW_IN_PROGRESS": IN_PROGRESS,
        "CREATE_IN_PROGRESS": IN_PROGRESS,
        "CREATE_COMPLETE": SUCCEEDED,
        "ROLLBACK_IN_PROGRESS": IN_PROGRESS_IN_ERROR,
        "CREATE_FAILED": FAILED,
        "ROLLBACK_COMPLETE": FAILED,
        "ROLLBACK_FAILED": FAILED,
    },
    UPDATE: {
        "UPDATE_IN_PROGRESS": IN_PROGRESS,
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": IN_PROGRESS,
        "UPDATE_COMPLETE": SUCCEEDED,
        "UPDATE_ROLLBACK_IN_PROGRESS": IN_PROGRESS_IN_ERROR,
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": IN_PROGRESS_IN_ERROR,
        "UPDATE_FAILED": FAILED,
        "UPDATE_ROLLBACK_COMPLETE": FAILED,
        "UPDATE_ROLLBACK_FAILED": FAILED,
    },
    TERMINATE: {
        "DELETE_IN_PROGRESS": IN_PROGRESS,
        "DELETE_COMPLETE": SUCCEEDED,
        "DELETE_FAILED": FAILED,
    },
}
STACK_ARN_OUTPUT = "CloudformationStackARN"


def cloudformation(account_id: str, region: str) -> Any:
    """The CloudFormation backend, looked up on every call: the local engine replaces moto's."""
    from moto.cloudformation.models import cloudformation_backends

    return cloudformation_backends[account_id][region]


#: What Service Catalog acknowledges for the stacks it makes. ProvisionProduct and
#: UpdateProvisionedProduct take no Capabilities: the end user cannot acknowledge anything, so
#: Service Catalog does, for the root stack and (through it) every nested stack; a product's
#: capabilities are only shown to the user (DescribeProvisioningParameters' UsageInstructions).
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")


def acknowledged(backend: Any) -> dict[str, list[str]]:
    """CAPABILITIES as an argument of `backend`'s create_stack and update_stack, if it takes
    one: the local engine checks capabilities, nested stacks included; moto's own backend,
    which this package's Service Catalog tests run over, checks none and takes none."""
    from localaws.cloudformation.models import LocalCloudFormationBackend

    if isinstance(backend, LocalCloudFormationBackend):
        return {"capabilities": list(CAPABILITIES)}
    return {}


def as_caller(backend: Any, caller_arn: str | None) -> dict[str, str | None]:
    """The caller whose credentials the local engine uses for a stack without a launch role,
    as an argument of `backend`'s create_stack, update_stack and delete_stack if it takes one
    (moto's own backend, as for `acknowledged`, takes none)."""
    from localaws.cloudformation.models import LocalCloudFormationBackend

    return {"caller_arn": caller_arn} if isinstance(backend, LocalCloudFormationBackend) else {}


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


@dataclass
class Record:
    """One provision, update or terminate request against a provisioned product."""

    type: str
    account_id: str
    region: str
    provisioned_product_id: str
    provisioned_product_name: str
    product_id: str
    artifact_id: str
    path_id: str
    launch_role_arn: str | None
    tags: dict[str, str]
    # The parameter values this operation applies (what UsePreviousValue reuses next time).
    parameters: dict[str, str]
    stack_id: str | None = None
    # How many stack events predate this operation: the rest explain its failure.
    events_before: int = 0
    ignore_errors: bool = False
    id: str = field(default_factory=lambda: new_id("rec"))
    created_time: datetime = field(default_factory=utcnow)
    updated_time: datetime = field(default_factory=utcnow)
    status: str = CREATED
    stack_status: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    outputs: list[dict[str, str]] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def refresh(self) -> None:
        """Read the stack's status, unless this record is final already."""
        if self.final:
            return
        stack = self._stack()
        if stack is None:
            # Only a finished delete makes a stack unreadable.
            status = SUCCEEDED if self.type == TERMINATE else FAILED
            self.stack_status = "DELETE_COMPLETE"
        elif len(stack.events) <= self.events_before:
            # The operation was accepted but has not begun: the engine starts it in the
            # background, and the stack still shows the previous operation's status.
            status = CREATED
        else:
            self.stack_status = stack.status
            status = _RECORD_STATUS[self.type].get(stack.status, FAILED)
        if status == FAILED and self.type == TERMINATE and self.ignore_errors:
            status = SUCCEEDED
        if status in (FAILED, IN_PROGRESS_IN_ERROR):
            self.errors = self._failure(stack)
        if status in FINAL:
            self.outputs = self._outputs(stack) if status == SUCCEEDED else []
            self.updated_time = utcnow()
        self.status = status

    def fail(self, code: str, description: str) -> None:
        """Finish this operation before it reached CloudFormation (its template unreadable)."""
        self.errors = [{"Code": code, "Description": description}]
        self.status = FAILED
        self.updated_time = utcnow()

    def succeed_unchanged(self, stack: Any) -> None:
        """Finish an update that CloudFormation found had nothing to change."""
        self.stack_status = stack.status
        self.outputs = self._outputs(stack)
        self.status = SUCCEEDED

    def _stack(self) -> Any:
        if self.stack_id is None:
            return None
        try:
            return cloudformation(self.account_id, self.region).get_stack(self.stack_id)
        except CloudFormationError:
            return None

    def _failure(self, stack: Any) -> list[dict[str, str]]:
        """The first failure of this operation: a resource's if any, else the stack's own."""
        if stack is None:
            return [
                {
                    "Code": "STACK_NOT_FOUND",
                    "Description": f"Stack {self.stack_id} was deleted outside Service Catalog",
                }
            ]
        failed = [
            event
            for event in list(stack.events)[self.events_before :]
            if str(event.resource_status).endswith("_FAILED")
        ]
        resources = [event for event in failed if event.logical_resource_id != stack.name]
        first = next(iter(resources or failed), None)
        if first is None:
            description = f"Stack {stack.name} is {stack.status} after {self.type}"
            return [{"Code": stack.status, "Description": description}]
        reason = first.resource_status_reason or "no reason given"
        return [
            {
                "Code": first.resource_status,
                "Description": f"{first.logical_resource_id}: {reason}",
            }
        ]

    def _outputs(self, stack: Any) -> list[dict[str, str]]:
        if stack is None or self.type == TERMINATE:
            return []
        outputs = [
            {
                "OutputKey": STACK_ARN_OUTPUT,
                "OutputValue": stack.stack_id,
                "Description": "The ARN of the launched Cloudformation Stack",
            }
        ]
        for output in stack.outputs or []:
            entry = {"OutputKey": output["OutputKey"], "OutputValue": _text(output["OutputValue"])}
            if output.get("Description"):
                entry["Description"] = str(output["Description"])
            outputs.append(entry)
        return outputs

    def detail(self) -> dict[str, Any]:
        return {
            "RecordId": self.id,
            "ProvisionedProductName": self.provisioned_product_name,
            "Status": self.status,
            "CreatedTime": self.created_time,
            "UpdatedTime": self.updated_time,
            "ProvisionedProductType": "CFN_STACK",
            "RecordType": self.type,
            "ProvisionedProductId": self.provisioned_product_id,
            "ProductId": self.product_id,
            "ProvisioningArtifactId": self.artifact_id,
            "PathId": self.path_id,
            "RecordErrors": self.errors,
            "RecordTags": tag_list(self.tags),
            "LaunchRoleArn": self.launch_role_arn,
        }


@dataclass
class ProvisionedProduct:
    """A launched product: one CloudFormation stack named SC-<account>-<id>, as AWS names it."""

    account_id: str
    region: str
    name: str
    product_id: str
    artifact_id: str
    path_id: str
    launch_role_arn: str | None
    user_arn: str
    user_arn_session: str
    tags: dict[str, str]
    idempotency_token: str
    parameters: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: new_id("pp"))
    created_time: datetime = field(default_factory=utcnow)
    stack_id: str | None = None
    records: list[Record] = field(default_factory=list)
    last_successful_record_id: str | None = None
    terminated: bool = False
    _settled_record_id: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:servicecatalog:{self.region}:{self.account_id}:stack/{self.name}/{self.id}"

    @property
    def stack_name(self) -> str:
        return f"SC-{self.account_id}-{self.id}"

    @property
    def last_record(self) -> Record:
        return self.records[-1]

    def refresh(self) -> None:
        """Bring the last record up to date, and take over what it achieved once it is final."""
        record = self.last_record
        record.refresh()
        if not record.final or record.id == self._settled_record_id:
            return
        self._settled_record_id = record.id
        if record.status != SUCCEEDED:
            return
        if record.type == TERMINATE:
            self.terminated = True
            return
        self.artifact_id = record.artifact_id
        self.path_id = record.path_id
        self.launch_role_arn = record.launch_role_arn
        self.parameters = dict(record.parameters)
        self.last_successful_record_id = record.id

    @property
    def status(self) -> str:
        record = self.last_record
        if not record.final:
            return "UNDER_CHANGE"
        if record.status == SUCCEEDED:
            return "AVAILABLE"
        if record.type == UPDATE and record.stack_status == "UPDATE_ROLLBACK_COMPLETE":
            # Rolled back: the product still works on its previous version.
            return "TAINTED"
        return "ERROR"

    @property
    def status_message(self) -> str | None:
        errors = self.last_record.errors
        return errors[0]["Description"] if errors and self.status != "AVAILABLE" else None

    def _common(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Arn": self.arn,
            "Type": "CFN_STACK",
            "Id": self.id,
            "Status": self.status,
            "StatusMessage": self.status_message,
            "CreatedTime": self.created_time,
            "IdempotencyToken": self.idempotency_token,
            "LastRecordId": self.last_record.id,
            "LastProvisioningRecordId": self.last_record.id,
            "LastSuccessfulProvisioningRecordId": self.last_successful_record_id,
            "ProductId": self.product_id,
            "ProvisioningArtifactId": self.artifact_id,
        }

    def detail(self) -> dict[str, Any]:
        return {**self._common(), "LaunchRoleArn": self.launch_role_arn}

    def attributes(self, product_name: str, artifact_name: str | None) -> dict[str, Any]:
        return {
            **self._common(),
            "Tags": tag_list(self.tags),
            "PhysicalId": self.stack_id,
            "ProductName": product_name,
            "ProvisioningArtifactName": artifact_name,
            "UserArn": self.user_arn,
            "UserArnSession": self.user_arn_session,
        }


def stack_tags(
    pp: ProvisionedProduct,
    record: Record,
    portfolio_arn: str,
    product_arn: str,
) -> dict[str, str]:
    """The stack's tags: the user's (TagOptions included) and the ones Service Catalog adds."""
    return {
        **record.tags,
        "aws:servicecatalog:portfolioArn": portfolio_arn,
        "aws:servicecatalog:productArn": product_arn,
        "aws:servicecatalog:provisionedProductArn": pp.arn,
        "aws:servicecatalog:provisioningArtifactIdentifier": record.artifact_id,
        "aws:servicecatalog:provisioningPrincipalArn": pp.user_arn,
    }
