"""What the engine's parts share: the host it reports to (`StackHost`), the resource types'
provisioners, and the steps every operation takes (a resource's context and properties,
outputs, events and statuses)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from moto.core.exceptions import ServiceException
from moto.utilities.utils import get_partition

from localaws.cloudformation import schema
from localaws.cloudformation.errors import TemplateError, ValidationError
from localaws.cloudformation.intrinsics import NO_VALUE, Evaluator, Scope
from localaws.cloudformation.model import Plan, ResourceRecord, Stack, StackEvent, now
from localaws.cloudformation.provisioners.base import (
    Provisioner,
    ProvisionError,
    ResourceContext,
)
from localaws.cloudformation.provisioners.custom import as_strings
from localaws.cloudformation.stack_role import AsStackRole
from localaws.config import get_config
from localaws.locking import unlocked


class StackHost(Protocol):
    """What the engine needs from the backend that owns its stacks (`models`): the account and
    region, the exports, and being told when a stack is gone or changes status."""

    account_id: str
    region_name: str

    def forget(self, stack: Stack) -> None: ...
    def export(self, stack: Stack, name: str, value: str) -> None: ...
    def release_exports(self, stack: Stack) -> None: ...
    def import_value(self, name: str) -> str: ...
    def status_changed(self, stack: Stack) -> None: ...
    def get_stack(self, name_or_stack_id: str) -> Stack: ...


log = logging.getLogger(__name__)

IAM_TYPES = {
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::UserToGroupAddition": None,
}


def is_custom(resource_type: str) -> bool:
    return resource_type.startswith("Custom::") or resource_type == (
        "AWS::CloudFormation::CustomResource"
    )


def provisioner_for(resource_type: str) -> Provisioner | None:
    from localaws.cloudformation.provisioners import registry

    return registry.provisioner_for(resource_type)


def describe_error(exc: BaseException) -> str:
    """A ResourceStatusReason in CloudFormation's words."""
    if isinstance(exc, ProvisionError | TemplateError):
        return str(exc)
    if isinstance(exc, ServiceException):
        return f'Resource handler returned message: "{exc.message}" (HandlerErrorCode: {exc.code})'
    message = getattr(exc, "description", None) or str(exc) or type(exc).__name__
    return f'Resource handler returned message: "{message}"'


@dataclass
class _Change:
    kind: str  # "added", "updated" or "replaced"
    logical_id: str
    before: ResourceRecord | None


class EngineBase:
    """The state of one account and region's engine, and the steps its operations share."""

    def __init__(self, backend: StackHost) -> None:
        self.backend = backend
        self.account_id = backend.account_id
        self.region = backend.region_name
        self.partition = get_partition(self.region)

    def _pseudo(self, stack_name: str, stack_id: str) -> dict[str, Any]:
        return {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::StackId": stack_id,
            "AWS::StackName": stack_name,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }

    # -- shared steps ----------------------------------------------------------------------
    @staticmethod
    def _stabilize(record: ResourceRecord) -> None:
        """Wait as CloudFormation waits for a created or deleted resource to stabilise (an
        instance running, then terminated), when the server models it (`--stabilize`); without
        the backend lock, so that other stacks go on meanwhile, as they do in AWS."""
        seconds = get_config().stabilize.get(record.resource_type)
        if seconds:
            with unlocked():
                time.sleep(seconds)

    def _provisioner(self, record: ResourceRecord) -> Provisioner:
        provisioner = provisioner_for(record.resource_type)
        if provisioner is None:  # _check_types keeps this from happening
            raise ProvisionError(f"Unsupported resource type {record.resource_type}")
        return AsStackRole(provisioner)

    def _context(
        self, stack: Stack, record: ResourceRecord, *, create_rollback: bool = False
    ) -> ResourceContext:
        tags = dict(stack.tags)
        tags.update(
            {
                "aws:cloudformation:stack-name": stack.name,
                "aws:cloudformation:stack-id": stack.stack_id,
                "aws:cloudformation:logical-id": record.logical_id,
            }
        )
        return ResourceContext(
            account_id=self.account_id,
            region=self.region,
            partition=self.partition,
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_id=record.logical_id,
            resource_type=record.resource_type,
            stack_tags=tags,
            create_rollback=create_rollback,
            role_arn=stack.role_arn,
            caller_arn=self.caller_of(stack),
        )

    def caller_of(self, stack: Stack) -> str | None:
        """The caller of a stack's operation: its root's (nested stacks run inside it)."""
        root = stack
        if stack.root_id:
            try:
                root = self.backend.get_stack(stack.root_id)
            except ValidationError:
                return None
        return root.caller_arn

    def scope(self, stack: Stack, plan: Plan) -> Scope:
        def record_of(name: str) -> ResourceRecord:
            record = stack.resources.get(name)
            if record is None or record.provisioned is None:
                raise TemplateError(f"Resource {name} has not been created")
            return record

        def get_att(name: str, attribute: str) -> Any:
            record = record_of(name)
            assert record.provisioned is not None
            try:
                return record.provisioned.get_att(attribute)
            except (KeyError, NotImplementedError, AttributeError) as exc:
                raise TemplateError(
                    f"Template error: resource {name} does not support attribute type "
                    f"{attribute} in Fn::GetAtt"
                ) from exc

        pseudo = self._pseudo(stack.name, stack.stack_id)
        pseudo["AWS::NotificationARNs"] = list(stack.notification_arns)
        return Scope(
            parameters=plan.parameters.values,
            pseudo=pseudo,
            mappings=plan.template.get("Mappings") or {},
            conditions=plan.conditions,
            resource_names=plan.order,
            ref_resource=lambda name: record_of(name).physical_id,
            get_att=get_att,
            availability_zones=self._availability_zones,
            import_value=self.backend.import_value,
        )

    def _availability_zones(self, region: str) -> list[str]:
        from moto.ec2.models import ec2_backends

        zones = ec2_backends[self.account_id][region].describe_availability_zones()
        return sorted(zone.name for zone in zones)

    def _properties(self, stack: Stack, plan: Plan, logical_id: str) -> dict[str, Any]:
        definition = plan.resources[logical_id]
        props = Evaluator(self.scope(stack, plan)).evaluate(definition.get("Properties") or {})
        if not isinstance(props, dict):
            raise TemplateError(f"Properties of {logical_id} must be a mapping")
        resource_type = definition["Type"]
        if is_custom(resource_type):
            return dict(as_strings(props))
        return schema.coerce(resource_type, props)

    def _publish_outputs(self, stack: Stack, plan: Plan) -> str | None:
        """Evaluate Outputs and register exports; return a problem's name, or None."""
        evaluator = Evaluator(self.scope(stack, plan))
        outputs = []
        for key, output in (plan.template.get("Outputs") or {}).items():
            condition = output.get("Condition")
            if condition is not None and not plan.conditions.get(condition, False):
                continue
            try:
                value = evaluator.evaluate(output["Value"])
                item: dict[str, Any] = {
                    "OutputKey": key,
                    "OutputValue": ",".join(map(str, value))
                    if isinstance(value, list)
                    else str(value),
                }
                if "Description" in output:
                    item["Description"] = str(evaluator.evaluate(output["Description"]))
                if "Export" in output:
                    item["ExportName"] = str(evaluator.evaluate(output["Export"]["Name"]))
                    self.backend.export(stack, item["ExportName"], item["OutputValue"])
            except Exception as exc:
                stack.status_reason = f"Output {key}: {describe_error(exc)}"
                self._event(
                    stack,
                    stack.name,
                    stack.stack_id,
                    "AWS::CloudFormation::Stack",
                    stack.status,
                    stack.status_reason,
                )
                return f"Outputs.{key}"
            outputs.append(item)
        stack.outputs = outputs
        return None

    def _release_exports(self, stack: Stack) -> None:
        self.backend.release_exports(stack)

    def _fail(self, stack: Stack, record: ResourceRecord, status: str, exc: BaseException) -> bool:
        if not isinstance(exc, ProvisionError | TemplateError | ServiceException):
            log.info("resource %s of %s failed", record.logical_id, stack.name, exc_info=exc)
        self._set_resource(stack, record, status, describe_error(exc))
        return False

    def _set_resource(
        self, stack: Stack, record: ResourceRecord, status: str, reason: str | None = None
    ) -> None:
        record.status = status
        record.reason = reason
        record.updated_at = now()
        self._resource_event(stack, record, reason)

    def _resource_event(
        self, stack: Stack, record: ResourceRecord, reason: str | None = None
    ) -> None:
        props = None
        if record.props and record.status.endswith("_IN_PROGRESS") and not reason:
            props = json.dumps(_masked(record.props, stack))
        self._event(
            stack,
            record.logical_id,
            record.physical_id,
            record.resource_type,
            record.status,
            reason,
            props,
        )

    def set_status(self, stack: Stack, status: str, reason: str | None = None) -> None:
        stack.status = status
        stack.status_reason = reason
        self._event(stack, stack.name, stack.stack_id, "AWS::CloudFormation::Stack", status, reason)
        self.backend.status_changed(stack)

    def _event(
        self,
        stack: Stack,
        logical_id: str,
        physical_id: str,
        resource_type: str,
        status: str,
        reason: str | None,
        properties: str | None = None,
    ) -> None:
        stack.events.append(
            StackEvent(
                stack_id=stack.stack_id,
                stack_name=stack.name,
                logical_id=logical_id,
                physical_id=physical_id,
                resource_type=resource_type,
                status=status,
                reason=reason,
                properties=properties,
            )
        )


def _masked(props: dict[str, Any], stack: Stack) -> dict[str, Any]:
    """Resource properties for events, with NoEcho parameter values replaced by ****."""
    plan = stack.plan
    if plan is None or not plan.parameters.no_echo:
        return props
    secrets = {
        str(plan.parameters.values[name])
        for name in plan.parameters.no_echo
        if plan.parameters.values[name]
    }

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, "****")
            return value
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    masked: dict[str, Any] = mask(props)
    return masked


class _LazyConditions(dict[str, bool]):
    """Conditions may refer to each other in any order; evaluate each once, on demand."""

    def __init__(self, declared: dict[str, Any], decided: dict[str, bool], evaluator: Evaluator):
        super().__init__()
        self._declared = declared
        self._decided = decided
        self._evaluator = evaluator
        self._evaluating: set[str] = set()

    def __contains__(self, name: object) -> bool:
        return name in self._declared

    def __getitem__(self, name: str) -> bool:
        if name in self._decided:
            return self._decided[name]
        if name not in self._declared:
            raise TemplateError(f"Template format error: Unresolved condition dependency {name}")
        if name in self._evaluating:
            raise TemplateError(f"Template format error: Circular condition dependency {name}")
        self._evaluating.add(name)
        try:
            self._decided[name] = self._evaluator.condition(self._declared[name])
        finally:
            self._evaluating.discard(name)
        return self._decided[name]


def _topological(active: list[str], dependencies: dict[str, set[str]]) -> list[str]:
    """Template order where it does not matter, dependencies first where it does."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name) :]
            raise ValidationError(f"Circular dependency between resources: {sorted(cycle)}")
        state[name] = 1
        for dependency in sorted(dependencies[name]):
            visit(dependency, [*path, name])
        state[name] = 2
        order.append(name)

    for name in active:
        visit(name, [])
    return order


def check_capabilities(template: dict[str, Any], granted: set[str]) -> None:
    needed = set()
    for resource in template["Resources"].values():
        if resource["Type"] in IAM_TYPES:
            name_property = IAM_TYPES[resource["Type"]]
            named = name_property is not None and name_property in (
                resource.get("Properties") or {}
            )
            needed.add("CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM")
    if "CAPABILITY_NAMED_IAM" in needed and "CAPABILITY_NAMED_IAM" not in granted:
        raise_capabilities(["CAPABILITY_NAMED_IAM"])
    if needed == {"CAPABILITY_IAM"} and not granted & {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}:
        raise_capabilities(["CAPABILITY_IAM"])


def raise_capabilities(required: list[str]) -> None:
    from localaws.cloudformation.errors import InsufficientCapabilities

    raise InsufficientCapabilities(f"Requires capabilities : [{', '.join(required)}]")
