"""The CloudFormation API of the local AWS, answered from our backend in AWS's shapes."""

from __future__ import annotations

from typing import Any

from moto.cloudformation.responses import (
    CloudFormationResponse,
    get_template_summary_response_from_template,
)
from moto.core.responses import ActionResult, EmptyResult

from localaws.iam.authorization import resolve_caller
from localaws.s3urls import TemplateUrlError, read

from .errors import ValidationError
from .model import ChangeSet, Stack
from .models import LocalCloudFormationBackend

EVENTS_PAGE = 100


class LocalCloudFormationResponse(CloudFormationResponse):
    """Stack and change-set actions go to our engine; stack sets stay moto's."""

    # Our backend returns values already in the API's shapes: nothing to transform.
    RESPONSE_KEY_PATH_TO_TRANSFORMER: dict[str, Any] = {}  # noqa: RUF012 - moto's own name

    @property
    def backend(self) -> LocalCloudFormationBackend:
        backend = self.cloudformation_backend
        assert isinstance(backend, LocalCloudFormationBackend)
        return backend

    # -- helpers -------------------------------------------------------------------------------
    def _body(self, *, required: bool = True) -> str | None:
        body = self._get_param("TemplateBody")
        url = self._get_param("TemplateURL")
        if body and url:
            raise ValidationError("Specify exactly one of TemplateBody and TemplateURL.")
        if url:
            try:
                body = read(url, self.current_account, self.partition)
            except TemplateUrlError as exc:
                raise ValidationError(str(exc)) from exc
        if required and not body:
            raise ValidationError("Either Template URL or Template Body must be specified.")
        return body  # type: ignore[no-any-return]

    def _caller_arn(self) -> str | None:
        """The signer, when an IAM user or an assumed role (None: the administrator's keys)."""
        caller = resolve_caller(self.current_account, self.partition, self.access_key)
        return caller.arn if caller else None

    def _tags(self) -> dict[str, str] | None:
        tags = self._get_param("Tags")
        if tags is None:
            return None
        return {item["Key"]: item["Value"] for item in tags}

    # -- stacks --------------------------------------------------------------------------------
    def create_stack(self) -> ActionResult:
        on_failure = self._get_param("OnFailure") or (
            "DO_NOTHING" if self._get_bool_param("DisableRollback", False) else "ROLLBACK"
        )
        stack = self.backend.create_stack(
            name=self._get_param("StackName"),
            template=self._body() or "",
            parameters={
                p["ParameterKey"]: p.get("ParameterValue", "")
                for p in self._get_param("Parameters", [])
            },
            notification_arns=self._get_param("NotificationARNs", []),
            tags=self._tags(),
            role_arn=self._get_param("RoleARN"),
            enable_termination_protection=self._get_bool_param(
                "EnableTerminationProtection", False
            ),
            timeout_in_mins=self._get_int_param("TimeoutInMinutes"),
            capabilities=self._get_param("Capabilities", []),
            on_failure=on_failure,
            caller_arn=self._caller_arn(),
        )
        return ActionResult({"StackId": stack.stack_id})

    def update_stack(self) -> ActionResult:
        use_previous = self._get_bool_param("UsePreviousTemplate", False)
        body = None if use_previous else self._body()
        stack = self.backend.update_stack(
            name=self._get_param("StackName"),
            template=body,
            role_arn=self._get_param("RoleARN"),
            parameters=self._get_param("Parameters", []),
            tags=self._tags(),
            capabilities=self._get_param("Capabilities", []),
            caller_arn=self._caller_arn(),
        )
        return ActionResult({"StackId": stack.stack_id})

    def delete_stack(self) -> ActionResult:
        self.backend.delete_stack(
            self._get_param("StackName"),
            retain_resources=self._get_param("RetainResources", []),
            caller_arn=self._caller_arn(),
        )
        return EmptyResult()

    def describe_stacks(self) -> ActionResult:
        stacks = self.backend.describe_stacks(self._get_param("StackName"))
        return ActionResult({"Stacks": [stack.to_api() for stack in stacks]})

    def list_stacks(self) -> ActionResult:
        stacks = self.backend.list_stacks(self._get_param("StackStatusFilter", []))
        return ActionResult({"StackSummaries": [stack.summary_api() for stack in stacks]})

    def describe_stack_events(self) -> ActionResult:
        stack = self.backend.get_stack(self._get_param("StackName"))
        events = [event.to_api() for event in reversed(stack.events)]
        start = int(self._get_param("NextToken") or 0)
        result: dict[str, Any] = {"StackEvents": events[start : start + EVENTS_PAGE]}
        if len(events) > start + EVENTS_PAGE:
            result["NextToken"] = str(start + EVENTS_PAGE)
        return ActionResult(result)

    def describe_stack_resource(self) -> ActionResult:
        stack = self.backend.get_stack(self._get_param("StackName"))
        logical_id = self._get_param("LogicalResourceId")
        record = stack.resources.get(logical_id)
        if record is None:
            raise ValidationError(f"Resource {logical_id} does not exist for stack {stack.name}")
        return ActionResult({"StackResourceDetail": stack.resource_api(record, detail=True)})

    def describe_stack_resources(self) -> ActionResult:
        name = self._get_param("StackName")
        physical_id = self._get_param("PhysicalResourceId")
        stack = self.backend.get_stack(name) if name else self._stack_owning(physical_id)
        logical_id = self._get_param("LogicalResourceId")
        records = [
            record
            for record in stack.resources.values()
            if (logical_id is None or record.logical_id == logical_id)
            and (physical_id is None or record.physical_id == physical_id)
        ]
        return ActionResult({"StackResources": [stack.resource_api(r) for r in records]})

    def _stack_owning(self, physical_id: str | None) -> Stack:
        for stack in self.backend.stacks.values():
            if any(r.physical_id == physical_id for r in stack.resources.values()):
                return stack
        raise ValidationError(f"Stack for {physical_id} does not exist")

    def list_stack_resources(self) -> ActionResult:
        stack = self.backend.get_stack(self._get_param("StackName"))
        summaries = []
        for record in stack.resources.values():
            item = stack.resource_api(record, detail=True)
            item.pop("StackName")
            item.pop("StackId")
            item.pop("Metadata", None)
            summaries.append(item)
        return ActionResult({"StackResourceSummaries": summaries})

    def get_template(self) -> ActionResult:
        stack = self.backend.get_stack(self._get_param("StackName"))
        body: Any = stack.template_body
        if self._get_param("TemplateStage") == "Processed" and stack.plan is not None:
            body = stack.plan.template
        return ActionResult({"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]})

    def get_template_summary(self) -> ActionResult:
        name = self._get_param("StackName")
        body = self.backend.get_stack(name).template_body if name else self._body() or ""
        return ActionResult(get_template_summary_response_from_template(body))

    def list_exports(self) -> ActionResult:
        exports, token = self.backend.list_exports(self._get_param("NextToken"))
        return ActionResult({"Exports": exports, "NextToken": token})

    # -- change sets ---------------------------------------------------------------------------
    def create_change_set(self) -> ActionResult:
        use_previous = self._get_bool_param("UsePreviousTemplate", False)
        change_set_id, stack_id = self.backend.create_change_set(
            stack_name=self._get_param("StackName"),
            change_set_name=self._get_param("ChangeSetName"),
            template=None if use_previous else self._body(),
            parameters=self._get_param("Parameters", []),
            description=self._get_param("Description"),
            change_set_type=self._get_param("ChangeSetType", "UPDATE"),
            notification_arns=self._get_param("NotificationARNs", []),
            tags=self._tags(),
            role_arn=self._get_param("RoleARN"),
            capabilities=self._get_param("Capabilities", []),
            caller_arn=self._caller_arn(),
        )
        return ActionResult({"Id": change_set_id, "StackId": stack_id})

    def describe_change_set(self) -> ActionResult:
        change_set = self.backend.describe_change_set(
            self._get_param("ChangeSetName"), self._get_param("StackName")
        )
        return ActionResult(_change_set_api(change_set, detail=True))

    def execute_change_set(self) -> ActionResult:
        self.backend.execute_change_set(
            self._get_param("ChangeSetName"),
            self._get_param("StackName"),
            caller_arn=self._caller_arn(),
        )
        return EmptyResult()

    def delete_change_set(self) -> ActionResult:
        self.backend.delete_change_set(
            self._get_param("ChangeSetName"), self._get_param("StackName")
        )
        return EmptyResult()

    def list_change_sets(self) -> ActionResult:
        change_sets = self.backend.list_change_sets(self._get_param("StackName"))
        return ActionResult({"Summaries": [_change_set_api(c) for c in change_sets]})


def _change_set_api(change_set: ChangeSet, *, detail: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "ChangeSetId": change_set.change_set_id,
        "ChangeSetName": change_set.name,
        "StackId": change_set.stack.stack_id,
        "StackName": change_set.stack.name,
        "ExecutionStatus": change_set.execution_status,
        "Status": change_set.status,
        "CreationTime": change_set.creation_time,
    }
    for key, value in (
        ("StatusReason", change_set.status_reason),
        ("Description", change_set.description),
    ):
        if value:
            item[key] = value
    if detail:
        params = change_set.plan.parameters
        item["Parameters"] = [
            {"ParameterKey": k, "ParameterValue": "****" if k in params.no_echo else v}
            for k, v in params.given.items()
        ]
        item["Capabilities"] = change_set.capabilities
        item["NotificationARNs"] = change_set.notification_arns
        item["Tags"] = [{"Key": k, "Value": v} for k, v in change_set.tags.items()]
        item["Changes"] = change_set.changes
    return item
