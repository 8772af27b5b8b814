"""The CloudFormation backend of the local AWS: stacks, change sets and exports per region."""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import uuid
from collections import OrderedDict
from typing import Any

from moto.cloudformation.models import CloudFormationBackend

from localaws.locking import BACKEND_LOCK

from .engine import Engine
from .errors import AlreadyExists, ChangeSetNotFound, InvalidChangeSetStatus, ValidationError
from .model import UPDATABLE_STATUSES, ChangeSet, Plan, Stack
from .parameters import ResolvedParameters
from .provisioners.base import acting_principal

log = logging.getLogger(__name__)

_STACK_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$")
_CHANGE_SET_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$")


class LocalCloudFormationBackend(CloudFormationBackend):
    """moto's backend with our engine behind the stack and change-set operations.

    The method names and signatures of moto's backend are kept where they overlap, so the
    rest of moto (and our Service Catalog extension) can keep calling them.
    """

    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.engine = Engine(self)
        self.stacks: dict[str, Stack] = OrderedDict()  # type: ignore[assignment]
        self.deleted_stacks: dict[str, Stack] = OrderedDict()  # type: ignore[assignment]
        self.change_sets: dict[str, ChangeSet] = OrderedDict()  # type: ignore[assignment]
        self.local_exports: dict[str, tuple[str, str]] = {}

    # -- stacks --------------------------------------------------------------------------------
    def create_stack(  # type: ignore[override]
        self,
        name: str,
        template: str,
        parameters: dict[str, str],
        notification_arns: list[str] | None = None,
        tags: dict[str, str] | None = None,
        role_arn: str | None = None,
        enable_termination_protection: bool | None = False,
        timeout_in_mins: int | None = None,
        stack_policy_body: str | None = None,
        capabilities: list[str] | None = None,
        on_failure: str = "ROLLBACK",
        caller_arn: str | None = None,
    ) -> Stack:
        """Validate now, create in the background (the stack starts CREATE_IN_PROGRESS).
        `caller_arn`: who asks (an IAM user or assumed-role session; None: the administrator),
        whose credentials CloudFormation uses when the stack has no role."""
        self._check_new_name(name)
        plan = self.engine.plan(
            template,
            dict(parameters),
            capabilities=capabilities,
            stack_name=name,
            principal_arn=acting_principal(role_arn, caller_arn),
        )
        stack = self._new_stack(
            name,
            plan,
            tags=tags or {},
            role_arn=role_arn,
            notification_arns=notification_arns or [],
            capabilities=capabilities or [],
            on_failure=on_failure,
            timeout_in_minutes=timeout_in_mins,
            termination_protection=bool(enable_termination_protection),
        )
        stack.caller_arn = caller_arn
        self.engine.set_status(stack, "CREATE_IN_PROGRESS", "User Initiated")
        self.engine.start(stack, lambda: self.engine.create(stack))
        return stack

    def update_stack(  # type: ignore[override]
        self,
        name: str,
        template: str | None,
        role_arn: str | None,
        parameters: list[dict[str, Any]],
        tags: dict[str, str] | None,
        capabilities: list[str] | None = None,
        caller_arn: str | None = None,
    ) -> Stack:
        stack = self.get_stack(name)
        self._check_updatable(stack)
        body = template if template is not None else stack.template_body
        supplied = self._supplied(stack, parameters, body)
        plan = self.engine.plan(
            body,
            supplied,
            capabilities=capabilities,
            stack_name=stack.name,
            principal_arn=acting_principal(role_arn or stack.role_arn, caller_arn),
        )
        if _same(stack.plan, plan) and (tags is None or tags == stack.tags):
            raise ValidationError("No updates are to be performed.")
        if tags is not None:
            stack.tags = tags
        if role_arn:
            stack.role_arn = role_arn
        stack.caller_arn = caller_arn
        self.engine.start(stack, lambda: self.engine.update(stack, plan, capabilities))
        return stack

    def delete_stack(
        self,
        name_or_stack_id: str,
        retain_resources: list[str] | None = None,
        caller_arn: str | None = None,
    ) -> None:
        try:
            stack = self.get_stack(name_or_stack_id)
        except ValidationError:
            return  # CloudFormation answers success for stacks that do not exist
        if stack.stack_id in self.deleted_stacks or stack.status == "DELETE_IN_PROGRESS":
            return
        if stack.termination_protection:
            raise ValidationError(
                f"Stack [{stack.name}] cannot be deleted while TerminationProtection is enabled"
            )
        if stack.is_in_progress:
            raise ValidationError(
                f"Stack [{stack.name}] is in {stack.status} state and can not be deleted now"
            )
        if stack.plan is None:  # a change set's stack that was never executed
            self.forget(stack)
            stack.status = "DELETE_COMPLETE"
            return
        retain = list(retain_resources or [])
        stack.caller_arn = caller_arn
        self.engine.start(stack, lambda: self.engine.delete(stack, retain=retain))

    def get_stack(self, name_or_stack_id: str) -> Stack:  # type: ignore[override]
        if name_or_stack_id in self.stacks:
            return self.stacks[name_or_stack_id]
        if name_or_stack_id in self.deleted_stacks:
            return self.deleted_stacks[name_or_stack_id]
        for stack in self.stacks.values():
            if stack.name == name_or_stack_id:
                return stack
        raise ValidationError(f"Stack with id {name_or_stack_id} does not exist")

    def describe_stacks(self, name_or_stack_id: str | None) -> list[Stack]:  # type: ignore[override]
        if name_or_stack_id:
            return [self.get_stack(name_or_stack_id)]
        return list(self.stacks.values())

    def list_stacks(self, status_filter: list[str] | None = None) -> list[Stack]:  # type: ignore[override]
        stacks = list(self.stacks.values()) + list(self.deleted_stacks.values())
        return [s for s in stacks if not status_filter or s.status in status_filter]

    def forget(self, stack: Stack) -> None:
        """A deleted stack is describable by id only, as in CloudFormation."""
        self.stacks.pop(stack.stack_id, None)
        self.deleted_stacks[stack.stack_id] = stack

    # -- nested stacks (run inside the parent's operation) -------------------------------------
    def create_nested(
        self,
        *,
        parent_id: str,
        logical_id: str,
        body: str,
        parameters: dict[str, str],
        tags: dict[str, str],
        notification_arns: list[str],
        timeout_in_minutes: Any,
    ) -> Stack:
        parent = self.get_stack(parent_id)
        name = f"{parent.name}-{logical_id}-{uuid.uuid4().hex[:12].upper()}"[:128]
        plan = self.engine.plan(
            body,
            parameters,
            capabilities=list(parent.capabilities),
            stack_name=name,
            principal_arn=acting_principal(parent.role_arn, self.engine.caller_of(parent)),
        )
        stack = self._new_stack(
            name,
            plan,
            tags={**parent.tags, **tags},
            role_arn=parent.role_arn,
            notification_arns=notification_arns,
            capabilities=list(parent.capabilities),
            on_failure="ROLLBACK",
            timeout_in_minutes=int(timeout_in_minutes) if timeout_in_minutes else None,
            parent=parent,
        )
        self.engine.set_status(stack, "CREATE_IN_PROGRESS", "User Initiated")
        self.engine.create(stack)
        return stack

    def update_nested(
        self, stack_id: str, *, body: str, parameters: dict[str, str], tags: dict[str, str]
    ) -> tuple[Stack, bool]:
        """Update a nested stack in place; returns it and whether the update (if any) held."""
        stack = self.get_stack(stack_id)
        parent = self.get_stack(stack.parent_id or "")
        plan = self.engine.plan(
            body,
            parameters,
            capabilities=list(parent.capabilities),
            stack_name=stack.name,
            principal_arn=acting_principal(parent.role_arn, self.engine.caller_of(parent)),
        )
        tags = {**parent.tags, **tags}
        if _same(stack.plan, plan) and tags == stack.tags:
            return stack, True
        stack.tags = tags
        return stack, self.engine.update(stack, plan, list(parent.capabilities))

    def delete_nested(self, stack_id: str, *, create_rollback: bool) -> Stack | None:
        try:
            stack = self.get_stack(stack_id)
        except ValidationError:
            return None
        if stack.stack_id in self.deleted_stacks:
            return stack
        self.engine.delete(stack, create_rollback=create_rollback)
        return stack

    # -- change sets ---------------------------------------------------------------------------
    def create_change_set(  # type: ignore[override]
        self,
        stack_name: str,
        change_set_name: str,
        template: str | None,
        parameters: list[dict[str, Any]],
        description: str | None,
        change_set_type: str,
        notification_arns: list[str] | None = None,
        tags: dict[str, str] | None = None,
        role_arn: str | None = None,
        capabilities: list[str] | None = None,
        caller_arn: str | None = None,
    ) -> tuple[str, str]:
        if not _CHANGE_SET_NAME.match(change_set_name or ""):
            raise ValidationError(
                f"1 validation error detected: Value '{change_set_name}' at 'changeSetName' failed "
                "to satisfy constraint: Member must satisfy regular expression pattern: "
                "[a-zA-Z][-a-zA-Z0-9]*"
            )
        if change_set_type == "CREATE":
            self._check_new_name(stack_name)
            if template is None:
                raise ValidationError("Either Template URL or Template Body must be specified.")
            supplied = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
            plan = self.engine.plan(
                template,
                supplied,
                capabilities=capabilities,
                stack_name=stack_name,
                change_set=True,
                principal_arn=acting_principal(role_arn, caller_arn),
            )
            stack = self._new_stack(
                stack_name,
                None,
                tags=tags or {},
                role_arn=role_arn,
                notification_arns=notification_arns or [],
                capabilities=capabilities or [],
                on_failure="ROLLBACK",
                timeout_in_minutes=None,
            )
            self.engine.set_status(stack, "REVIEW_IN_PROGRESS", "User Initiated")
            changes = [_change("Add", lid, plan) for lid in plan.order]
        elif change_set_type == "UPDATE":
            stack = self.get_stack(stack_name)
            self._check_updatable(stack)
            body = template if template is not None else stack.template_body
            supplied = self._supplied(stack, parameters, body)
            plan = self.engine.plan(
                body,
                supplied,
                capabilities=capabilities,
                stack_name=stack.name,
                change_set=True,
                principal_arn=acting_principal(role_arn or stack.role_arn, caller_arn),
            )
            changes = self._changes(stack, plan)
        else:
            raise ValidationError(f"ChangeSetType {change_set_type} is not supported here")
        change_set_id = (
            f"arn:{self.engine.partition}:cloudformation:{self.region_name}:{self.account_id}:"
            f"changeSet/{change_set_name}/{uuid.uuid4()}"
        )
        change_set = ChangeSet(
            change_set_id=change_set_id,
            name=change_set_name,
            stack=stack,
            change_set_type=change_set_type,
            plan=plan,
            supplied_parameters=dict(plan.parameters.given),
            capabilities=capabilities or [],
            tags=tags or {},
            role_arn=role_arn,
            description=description,
            notification_arns=notification_arns or [],
            changes=changes,
        )
        if change_set_type == "UPDATE" and not changes and (tags is None or tags == stack.tags):
            change_set.status = "FAILED"
            change_set.execution_status = "UNAVAILABLE"
            change_set.status_reason = (
                "The submitted information didn't contain changes. Submit different information "
                "to create a change set."
            )
        self.change_sets[change_set_id] = change_set
        return change_set_id, stack.stack_id

    def describe_change_set(  # type: ignore[override]
        self, change_set_name: str, stack_name: str | None = None
    ) -> ChangeSet:
        return self._change_set(change_set_name, stack_name)

    def execute_change_set(
        self, change_set_name: str, stack_name: str | None = None, caller_arn: str | None = None
    ) -> None:
        change_set = self._change_set(change_set_name, stack_name)
        if change_set.execution_status != "AVAILABLE":
            raise InvalidChangeSetStatus(
                f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current "
                f"status of [{change_set.status}]"
            )
        stack = change_set.stack
        change_set.execution_status = "EXECUTE_IN_PROGRESS"
        stack.change_set_id = change_set.change_set_id
        if change_set.tags:
            stack.tags = change_set.tags
        if change_set.role_arn:
            stack.role_arn = change_set.role_arn
        stack.caller_arn = caller_arn
        plan = change_set.plan

        def run() -> None:
            if change_set.change_set_type == "CREATE":
                stack.plan = plan
                stack.capabilities = change_set.capabilities
                self.engine.set_status(stack, "CREATE_IN_PROGRESS", "User Initiated")
                ok = self.engine.create(stack)
            else:
                ok = self.engine.update(stack, plan, change_set.capabilities)
            change_set.execution_status = "EXECUTE_COMPLETE" if ok else "EXECUTE_FAILED"
            for other in self.change_sets.values():
                if other.stack is stack and other is not change_set:
                    other.execution_status = "OBSOLETE"

        self.engine.start(stack, run)

    def delete_change_set(self, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self._change_set(change_set_name, stack_name)
        del self.change_sets[change_set.change_set_id]

    def list_change_sets(self, stack_name: str | None = None) -> list[ChangeSet]:  # type: ignore[override]
        if stack_name is None:
            return list(self.change_sets.values())
        stack = self.get_stack(stack_name)
        return [c for c in self.change_sets.values() if c.stack is stack]

    def _change_set(self, name: str, stack_name: str | None) -> ChangeSet:
        if name in self.change_sets:
            return self.change_sets[name]
        for change_set in self.change_sets.values():
            if change_set.name == name and (
                stack_name is None
                or stack_name in (change_set.stack.name, change_set.stack.stack_id)
            ):
                return change_set
        raise ChangeSetNotFound(f"ChangeSet [{name}] does not exist")

    def _changes(self, stack: Stack, plan: Plan) -> list[dict[str, Any]]:
        old = stack.plan
        assert old is not None
        changes = []
        for logical_id in plan.order:
            if logical_id not in old.order:
                changes.append(_change("Add", logical_id, plan))
            elif plan.resources[logical_id] != old.resources[logical_id] or _params_used_changed(
                old, plan, logical_id
            ):
                changes.append(_change("Modify", logical_id, plan))
        changes += [_change("Remove", lid, old) for lid in old.order if lid not in plan.order]
        return changes

    # -- exports -------------------------------------------------------------------------------
    def export(self, stack: Stack, name: str, value: str) -> None:
        owner = self.local_exports.get(name)
        if owner is not None and owner[0] != stack.stack_id:
            raise ValidationError(
                f"Export with name {name} is already exported by stack {owner[0]}"
            )
        self.local_exports[name] = (stack.stack_id, value)

    def release_exports(self, stack: Stack) -> None:
        for name in [n for n, (sid, _) in self.local_exports.items() if sid == stack.stack_id]:
            del self.local_exports[name]

    def import_value(self, name: str) -> str:
        if name not in self.local_exports:
            from .errors import TemplateError

            raise TemplateError(f"No export named {name} found.")
        return self.local_exports[name][1]

    def list_exports(self, tokenstr: str | None) -> tuple[list[dict[str, str]], str | None]:  # type: ignore[override]
        exports = [
            {"ExportingStackId": sid, "Name": name, "Value": value}
            for name, (sid, value) in self.local_exports.items()
        ]
        start = int(tokenstr or 0)
        page = exports[start : start + 100]
        return page, str(start + 100) if len(exports) > start + 100 else None

    # -- events to EventBridge -----------------------------------------------------------------
    def status_changed(self, stack: Stack) -> None:
        """Put a "CloudFormation Stack Status Change" event on the default bus, like AWS does."""
        detail = {
            "stack-id": stack.stack_id,
            "status-details": {"status": stack.status, "status-reason": stack.status_reason or ""},
            "client-request-token": "",
        }
        _start_delivery()
        _EVENTS.put(
            (
                self.account_id,
                self.region_name,
                {
                    "Source": "aws.cloudformation",
                    "DetailType": "CloudFormation Stack Status Change",
                    "Detail": json.dumps(detail),
                    "Resources": [stack.stack_id],
                    "EventBusName": "default",
                },
            )
        )

    # -- helpers -------------------------------------------------------------------------------
    def _check_new_name(self, name: str) -> None:
        if not _STACK_NAME.match(name or ""):
            raise ValidationError(
                f"1 validation error detected: Value '{name}' at 'stackName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: "
                "[a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]*"
            )
        if any(s.name == name for s in self.stacks.values()):
            raise AlreadyExists(f"Stack [{name}] already exists")

    @staticmethod
    def _check_updatable(stack: Stack) -> None:
        if stack.status not in UPDATABLE_STATUSES:
            raise ValidationError(
                f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated."
            )

    @staticmethod
    def _supplied(stack: Stack, parameters: list[dict[str, Any]], body: str) -> dict[str, str]:
        previous = stack.plan.parameters if stack.plan else ResolvedParameters()
        supplied: dict[str, str] = {}
        for parameter in parameters:
            key = parameter["ParameterKey"]
            use_previous = str(parameter.get("UsePreviousValue", "false")).lower() == "true"
            if use_previous and parameter.get("ParameterValue"):
                raise ValidationError(
                    f"Invalid input for parameter key {key}. Cannot specify usePreviousValue as "
                    "true and non empty value for a parameter"
                )
            if use_previous:
                if key not in previous.given:
                    raise ValidationError(
                        f"Invalid input for parameter key {key}. Cannot specify "
                        "usePreviousValue for a parameter the stack does not have"
                    )
                supplied[key] = previous.given[key]
            elif "ParameterValue" in parameter:
                supplied[key] = parameter["ParameterValue"]
        return supplied

    def _new_stack(
        self,
        name: str,
        plan: Plan | None,
        *,
        tags: dict[str, str],
        role_arn: str | None,
        notification_arns: list[str],
        capabilities: list[str],
        on_failure: str,
        timeout_in_minutes: int | None,
        termination_protection: bool = False,
        parent: Stack | None = None,
    ) -> Stack:
        stack_id = (
            f"arn:{self.engine.partition}:cloudformation:{self.region_name}:{self.account_id}:"
            f"stack/{name}/{uuid.uuid4()}"
        )
        stack = Stack(
            stack_id=stack_id,
            name=name,
            account_id=self.account_id,
            region=self.region_name,
            plan=plan,
            tags=tags,
            role_arn=role_arn,
            notification_arns=notification_arns,
            capabilities=capabilities,
            on_failure=on_failure,
            timeout_in_minutes=timeout_in_minutes,
            parent_id=parent.stack_id if parent else None,
            root_id=(parent.root_id or parent.stack_id) if parent else None,
            termination_protection=termination_protection,
        )
        self.stacks[stack_id] = stack
        return stack


def _same(old: Plan | None, new: Plan) -> bool:
    return (
        old is not None
        and old.template == new.template
        and old.parameters.given == new.parameters.given
        and old.parameters.resolved_ssm == new.parameters.resolved_ssm
    )


def _params_used_changed(old: Plan, new: Plan, logical_id: str) -> bool:
    text = json.dumps(new.resources[logical_id])
    return any(
        old.parameters.given.get(name) != value and f'"{name}"' in text
        for name, value in new.parameters.given.items()
    )


def _change(action: str, logical_id: str, plan: Plan) -> dict[str, Any]:
    change: dict[str, Any] = {
        "Action": action,
        "LogicalResourceId": logical_id,
        "ResourceType": plan.resources[logical_id]["Type"],
        "Scope": [],
        "Details": [],
    }
    if action == "Modify":
        change["Replacement"] = "Conditional"
    return {"Type": "Resource", "ResourceChange": change}


# One delivery thread keeps EventBridge events in order and off the engine's path.
_EVENTS: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()


def _deliver_events() -> None:
    from moto.events.models import events_backends

    while True:
        account_id, region, entry = _EVENTS.get()
        try:
            with BACKEND_LOCK:
                events_backends[account_id][region].put_events([entry])
        except Exception:
            log.exception("could not put a stack status event on EventBridge")


_DELIVERY_STARTED = threading.Event()
_DELIVERY_LOCK = threading.Lock()


def _start_delivery() -> None:
    with _DELIVERY_LOCK:
        if not _DELIVERY_STARTED.is_set():
            threading.Thread(target=_deliver_events, name="cfn-eventbridge", daemon=True).start()
            _DELIVERY_STARTED.set()
