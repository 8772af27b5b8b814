"""Stack operations: plan a template, then create, update or delete its resources.

Operations run in a background thread per stack, as in CloudFormation: the API returns at
once and the stack's status and events tell what happens. Nested stacks run inside their
parent's operation. Every step holds BACKEND_LOCK; waits (custom resources, modelled
stabilisation) release it.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moto.core.exceptions import ServiceException
from moto.utilities.utils import get_partition

from valohai_hybrid.localaws.config import get_config
from valohai_hybrid.localaws.locking import BACKEND_LOCK, unlocked

from . import schema
from .custom_resources import CustomResourceProvisioner, as_strings
from .errors import TemplateError, ValidationError
from .intrinsics import NO_VALUE, Evaluator, Scope, references
from .model import Plan, ResourceRecord, Stack, StackEvent, now
from .parameters import Lookups, resolve
from .provisioners.base import (
    NeedsReplacement,
    Provisioned,
    Provisioner,
    ProvisionError,
    ResourceContext,
)
from .template import SERVERLESS_TRANSFORM, parse, transforms

if TYPE_CHECKING:
    from .backend import LocalCloudFormationBackend

log = logging.getLogger(__name__)

CUSTOM = CustomResourceProvisioner()
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
    if is_custom(resource_type):
        return CUSTOM
    from .provisioners import registry

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


class Engine:
    """Runs the operations of one account and region's stacks."""

    def __init__(self, backend: LocalCloudFormationBackend) -> None:
        self.backend = backend
        self.account_id = backend.account_id
        self.region = backend.region_name
        self.partition = get_partition(self.region)

    # -- planning (synchronous: problems are ValidationErrors and nothing is created) ----------
    def plan(
        self,
        body: str,
        supplied: dict[str, str],
        *,
        capabilities: Iterable[str] | None = None,
        stack_name: str = "",
        change_set: bool = False,
        role_arn: str | None = None,
    ) -> Plan:
        """Everything CloudFormation checks before it accepts an operation.

        `capabilities` None skips the capability checks (nested stacks, internal callers);
        change sets may carry transforms without CAPABILITY_AUTO_EXPAND, stacks may not.
        `role_arn` is the stack's service role: SSM-typed parameters are read with its rights.
        """
        template = parse(body)
        names = transforms(template)
        if names:
            needs_auto_expand = capabilities is not None and not change_set
            template = self._transform(template, names, supplied, needs_auto_expand, capabilities)
        self._check_types(template)
        if capabilities is not None:
            check_capabilities(template, set(capabilities))
        parameters = resolve(template.get("Parameters") or {}, supplied, self._lookups(role_arn))
        scope = Scope(
            parameters=parameters.values,
            pseudo=self._pseudo(stack_name or "stack", "stack-id"),
            mappings=template.get("Mappings") or {},
        )
        self._check_rules(template, scope)
        conditions = self._conditions(template, scope)
        resources = template["Resources"]
        active = [lid for lid, r in resources.items() if self._active(r, conditions, lid)]
        dependencies = {
            lid: self._dependencies(lid, resources, set(active), set(resources), conditions)
            for lid in active
        }
        order = _topological(active, dependencies)
        plan = Plan(body, template, parameters, conditions, order, dependencies)
        self._check_outputs(plan)
        return plan

    def _transform(
        self,
        template: dict[str, Any],
        names: list[str],
        supplied: dict[str, str],
        needs_auto_expand: bool,
        capabilities: Iterable[str] | None,
    ) -> dict[str, Any]:
        unknown = [n for n in names if n != SERVERLESS_TRANSFORM]
        if unknown:
            raise ValidationError(f"Template format error: Unsupported transform(s) {unknown}")
        if needs_auto_expand and "CAPABILITY_AUTO_EXPAND" not in (capabilities or ()):
            raise_capabilities(["CAPABILITY_AUTO_EXPAND"])
        from valohai_hybrid.localaws.sam_transform import transform

        try:
            return transform(
                template, dict(supplied), account_id=self.account_id, region=self.region
            )
        except ValueError as exc:
            raise ValidationError(f"Transform {SERVERLESS_TRANSFORM} failed with: {exc}") from exc

    def _check_types(self, template: dict[str, Any]) -> None:
        unknown = sorted(
            {
                r["Type"]
                for r in template["Resources"].values()
                if provisioner_for(r["Type"]) is None
            }
        )
        if unknown:
            raise ValidationError(
                f"Template format error: Unrecognized resource types: [{', '.join(unknown)}]"
            )

    def _lookups(self, role_arn: str | None = None) -> Lookups:
        from moto.ec2.models import ec2_backends
        from moto.ssm.models import ssm_backends

        ec2 = ec2_backends[self.account_id][self.region]
        ssm = ssm_backends[self.account_id][self.region]

        def exists(kind: str, value: str) -> bool:
            finders: dict[str, Callable[[], Any]] = {
                "AWS::EC2::KeyPair::KeyName": lambda: ec2.describe_key_pairs([value]),
                "AWS::EC2::VPC::Id": lambda: ec2.describe_vpcs(vpc_ids=[value]),
                "AWS::EC2::Subnet::Id": lambda: ec2.describe_subnets(subnet_ids=[value]),
                "AWS::EC2::SecurityGroup::Id": lambda: ec2.describe_security_groups(
                    group_ids=[value]
                ),
                "AWS::EC2::Image::Id": lambda: ec2.describe_images(ami_ids=[value]),
            }
            try:
                return bool(finders[kind]())
            except Exception:  # moto raises InvalidKeyPair.NotFound and friends
                return False

        def ssm_parameter(name: str) -> str | None:
            if role_arn:
                self._check_role_reads_parameter(role_arn, name)
            try:
                parameter = ssm.get_parameter(name)
            except Exception:  # ParameterNotFound
                return None
            return None if parameter is None else str(parameter.value)

        return Lookups(exists=exists, ssm_parameter=ssm_parameter)

    def _check_role_reads_parameter(self, role_arn: str, name: str) -> None:
        """CloudFormation reads an SSM-typed parameter as the stack's role, as AWS does: a role
        without ssm:GetParameters on it fails the operation, naming the parameter only."""
        from moto.iam.access_control import IAMPolicy, PermissionResult
        from moto.iam.models import iam_backends

        path = name if name.startswith("/") else f"/{name}"
        owner = "" if path.startswith("/aws/service/") else self.account_id
        resource = f"arn:{self.partition}:ssm:{self.region}:{owner}:parameter{path}"
        iam = iam_backends[self.account_id][self.partition]
        try:
            role = iam.get_role_by_arn(role_arn)
        except Exception:  # NoSuchEntity: a stack role that no longer exists reads nothing
            documents: list[Any] = []
        else:
            documents = [*role.policies.values(), *role.managed_policies.values()]
        results = {
            IAMPolicy(document).is_action_permitted("ssm:GetParameters", resource)
            for document in documents
        }
        if PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
            session = role_arn.rsplit("/", 1)[-1]
            raise ValidationError(
                f"User: arn:{self.partition}:sts::{self.account_id}:assumed-role/{session}/"
                f"AWSCloudFormation is not authorized to perform: ssm:GetParameters on resource: "
                f"{resource} because no identity-based policy allows the ssm:GetParameters action"
            )

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

    @staticmethod
    def _check_rules(template: dict[str, Any], scope: Scope) -> None:
        """Template Rules: a failed assertion rejects the parameters with its description."""
        evaluator = Evaluator(scope)
        try:
            for name, rule in (template.get("Rules") or {}).items():
                if "RuleCondition" in rule and not evaluator.rule(rule["RuleCondition"]):
                    continue
                for assertion in rule.get("Assertions") or []:
                    if not evaluator.rule(assertion["Assert"]):
                        raise ValidationError(
                            assertion.get("AssertDescription")
                            or f"Template error: an assertion of rule {name} failed"
                        )
        except TemplateError as exc:
            raise ValidationError(str(exc)) from exc

    def _conditions(self, template: dict[str, Any], scope: Scope) -> dict[str, bool]:
        declared = template.get("Conditions") or {}
        decided: dict[str, bool] = {}
        evaluator = Evaluator(scope)
        scope.conditions = _LazyConditions(declared, decided, evaluator)
        try:
            for name in declared:
                decided[name] = scope.conditions[name]
        except TemplateError as exc:
            raise ValidationError(str(exc)) from exc
        return decided

    @staticmethod
    def _active(resource: dict[str, Any], conditions: dict[str, bool], logical_id: str) -> bool:
        name = resource.get("Condition")
        if name is None:
            return True
        if name not in conditions:
            raise ValidationError(
                f"Template format error: Unresolved condition dependency {name} in "
                f"Fn::If/Condition of resource {logical_id}"
            )
        return conditions[name]

    @staticmethod
    def _dependencies(
        logical_id: str,
        resources: dict[str, Any],
        active: set[str],
        declared: set[str],
        conditions: dict[str, bool],
    ) -> set[str]:
        resource = resources[logical_id]
        found = references(
            resource.get("Properties", {}), declared, lambda c: conditions.get(c, False)
        )
        depends_on = resource.get("DependsOn", [])
        for name in [depends_on] if isinstance(depends_on, str) else depends_on:
            if name not in declared:
                raise ValidationError(
                    f"Template format error: Unresolved resource dependencies [{name}] in the "
                    "Resources block of the template"
                )
            found.add(name)
        inactive = sorted(found - active)
        if inactive:
            raise ValidationError(
                f"Template format error: Unresolved resource dependencies [{', '.join(inactive)}]"
                " in the Resources block of the template"
            )
        return found

    def _check_outputs(self, plan: Plan) -> None:
        declared = set(plan.resources)
        active = set(plan.order)
        for key, output in (plan.template.get("Outputs") or {}).items():
            if not isinstance(output, dict) or "Value" not in output:
                raise ValidationError(
                    f"Template format error: Output {key} is malformed. Every Outputs member "
                    "must contain a Value object"
                )
            condition = output.get("Condition")
            if condition is not None and not plan.conditions.get(condition, False):
                continue
            used = references(output, declared, lambda c: plan.conditions.get(c, False))
            missing = sorted(used - active)
            if missing:
                raise ValidationError(
                    "Template format error: Unresolved resource dependencies "
                    f"[{', '.join(missing)}] in the Outputs block of the template"
                )

    # -- running -------------------------------------------------------------------------------
    def start(self, stack: Stack, operation: Callable[[], object]) -> None:
        """Run `operation` in the background; the stack settles when it ends."""
        stack.settled.clear()

        def run() -> None:
            try:
                with BACKEND_LOCK:
                    operation()
            except Exception as exc:  # a bug here must not leave a stack in progress forever
                log.exception("stack operation on %s crashed", stack.name)
                with BACKEND_LOCK:
                    failed = stack.status.replace("_IN_PROGRESS", "_FAILED")
                    self.set_status(stack, failed, f"Internal error in the local AWS: {exc}")
            finally:
                stack.settled.set()

        threading.Thread(target=run, name=f"cfn-{stack.name}", daemon=True).start()

    def create(self, stack: Stack) -> bool:
        """Create every resource; roll back (or not) on failure, as OnFailure says."""
        plan = stack.plan
        assert plan is not None
        created: list[str] = []
        failed = None
        for logical_id in plan.order:
            created.append(logical_id)
            if not self._create_resource(stack, plan, logical_id):
                failed = logical_id
                break
        if failed is None:
            failed = self._publish_outputs(stack, plan)
        if failed is None:
            self.set_status(stack, "CREATE_COMPLETE")
            return True
        reason = f"The following resource(s) failed to create: [{failed}]. "
        if stack.on_failure == "DO_NOTHING":
            self.set_status(stack, "CREATE_FAILED", reason)
            return False
        self.set_status(stack, "ROLLBACK_IN_PROGRESS", reason + "Rollback requested by user.")
        ok = self._delete_all(stack, plan, reversed(created), create_rollback=True)
        self._release_exports(stack)
        self.set_status(
            stack,
            "ROLLBACK_COMPLETE" if ok else "ROLLBACK_FAILED",
            None if ok else "The following resource(s) failed to delete during rollback.",
        )
        if ok and stack.on_failure == "DELETE":
            self.delete(stack)
        return False

    def update(self, stack: Stack, new_plan: Plan) -> bool:
        old_plan = stack.plan
        assert old_plan is not None
        old_outputs = stack.outputs
        stack.plan = new_plan
        stack.last_updated_time = now()
        self.set_status(stack, "UPDATE_IN_PROGRESS", "User Initiated")
        journal: list[_Change] = []
        failed = None
        for logical_id in new_plan.order:
            if not self._update_resource(stack, old_plan, new_plan, logical_id, journal):
                failed = logical_id
                break
        if failed is None:
            failed = self._publish_outputs(stack, new_plan)
        if failed is None:
            self.set_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
            self._cleanup_after_update(stack, old_plan, new_plan, journal)
            self.set_status(stack, "UPDATE_COMPLETE")
            return True
        self.set_status(
            stack,
            "UPDATE_ROLLBACK_IN_PROGRESS",
            f"The following resource(s) failed to update: [{failed}]. ",
        )
        stack.plan = old_plan
        ok = self._roll_back_update(stack, old_plan, new_plan, journal)
        stack.outputs = old_outputs
        self.set_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        self.set_status(stack, "UPDATE_ROLLBACK_COMPLETE" if ok else "UPDATE_ROLLBACK_FAILED")
        return False

    def delete(
        self, stack: Stack, *, retain: Iterable[str] = (), create_rollback: bool = False
    ) -> bool:
        plan = stack.plan
        self.set_status(stack, "DELETE_IN_PROGRESS", "User Initiated")
        ok = True
        if plan is not None:
            ok = self._delete_all(
                stack,
                plan,
                reversed(plan.order),
                retain=set(retain),
                create_rollback=create_rollback,
            )
        if not ok:
            failed = [r.logical_id for r in stack.resources.values() if r.status == "DELETE_FAILED"]
            self.set_status(
                stack, "DELETE_FAILED", f"The following resource(s) failed to delete: {failed}. "
            )
            return False
        self._release_exports(stack)
        stack.deletion_time = now()
        self.set_status(stack, "DELETE_COMPLETE")
        self.backend.forget(stack)
        return True

    # -- one resource --------------------------------------------------------------------------
    def _create_resource(self, stack: Stack, plan: Plan, logical_id: str) -> bool:
        definition = plan.resources[logical_id]
        record = ResourceRecord(
            logical_id,
            definition["Type"],
            "CREATE_IN_PROGRESS",
            metadata=definition.get("Metadata"),
        )
        stack.resources[logical_id] = record
        self._resource_event(stack, record)
        try:
            props = self._properties(stack, plan, logical_id)
            record.props = props
            provisioned = self._provisioner(record).create(self._context(stack, record), props)
        except Exception as exc:
            if isinstance(exc, ProvisionError) and exc.physical_id:
                record.provisioned = Provisioned(exc.physical_id)
            return self._fail(stack, record, "CREATE_FAILED", exc)
        record.provisioned = provisioned
        self._resource_event(stack, record, "Resource creation Initiated")
        self._stabilize(record)
        self._set_resource(stack, record, "CREATE_COMPLETE")
        return True

    def _update_resource(
        self, stack: Stack, old_plan: Plan, new_plan: Plan, logical_id: str, journal: list[_Change]
    ) -> bool:
        record = stack.resources.get(logical_id)
        if record is None or logical_id not in old_plan.order:
            journal.append(_Change("added", logical_id, None))
            return self._create_resource(stack, new_plan, logical_id)
        definition = new_plan.resources[logical_id]
        try:
            new_props = self._properties(stack, new_plan, logical_id)
        except Exception as exc:
            return self._fail(stack, record, "UPDATE_FAILED", exc)
        record.metadata = definition.get("Metadata")
        type_changed = definition["Type"] != old_plan.resources[logical_id]["Type"]
        if not type_changed and new_props == record.props:
            return True
        before = copy.copy(record)
        custom = is_custom(record.resource_type)
        replace = type_changed or (
            not custom and schema.needs_replacement(record.resource_type, record.props, new_props)
        )
        if not replace:
            self._set_resource(stack, record, "UPDATE_IN_PROGRESS")
            try:
                assert record.provisioned is not None
                provisioned = self._provisioner(record).update(
                    self._context(stack, record), record.provisioned, record.props, new_props
                )
            except NeedsReplacement:
                replace = True
            except Exception as exc:
                journal.append(_Change("updated", logical_id, before))
                return self._fail(stack, record, "UPDATE_FAILED", exc)
            else:
                replaced = custom and provisioned.physical_id != record.physical_id
                journal.append(_Change("replaced" if replaced else "updated", logical_id, before))
                record.provisioned, record.props = provisioned, new_props
                self._set_resource(stack, record, "UPDATE_COMPLETE")
                return True
        record.resource_type = definition["Type"]
        self._set_resource(
            stack,
            record,
            "UPDATE_IN_PROGRESS",
            "Requested update requires the creation of a new physical resource; "
            "hence creating one.",
        )
        journal.append(_Change("replaced", logical_id, before))
        try:
            provisioned = self._provisioner(record).create(self._context(stack, record), new_props)
        except Exception as exc:
            record.provisioned = (
                Provisioned(exc.physical_id)
                if isinstance(exc, ProvisionError) and exc.physical_id
                else None
            )
            return self._fail(stack, record, "UPDATE_FAILED", exc)
        record.provisioned, record.props = provisioned, new_props
        self._resource_event(stack, record, "Resource creation Initiated")
        self._stabilize(record)
        self._set_resource(stack, record, "UPDATE_COMPLETE")
        return True

    def _cleanup_after_update(
        self, stack: Stack, old_plan: Plan, new_plan: Plan, journal: list[_Change]
    ) -> None:
        for change in reversed(journal):
            if change.kind == "replaced" and change.before and change.before.provisioned:
                definition = old_plan.resources[change.logical_id]
                self._delete_physical(stack, change.before, definition, "UpdateReplacePolicy")
        removed = [lid for lid in reversed(old_plan.order) if lid not in new_plan.order]
        for logical_id in removed:
            record = stack.resources.get(logical_id)
            if record is not None:
                self._delete_resource(stack, record, old_plan.resources[logical_id])
                del stack.resources[logical_id]

    def _roll_back_update(
        self, stack: Stack, old_plan: Plan, new_plan: Plan, journal: list[_Change]
    ) -> bool:
        ok = True
        for change in reversed(journal):
            record = stack.resources[change.logical_id]
            if change.kind == "added":
                ok &= self._delete_resource(stack, record, new_plan.resources[change.logical_id])
                del stack.resources[change.logical_id]
            elif change.kind == "replaced":
                assert change.before is not None
                if record.provisioned and (
                    change.before.provisioned is None
                    or record.physical_id != change.before.physical_id
                ):
                    ok &= self._delete_physical(
                        stack, record, new_plan.resources[change.logical_id], "DeletionPolicy"
                    )
                self._restore(stack, change.before)
            else:
                assert change.before is not None
                ok &= self._revert_in_place(stack, record, change.before)
        return ok

    def _revert_in_place(
        self, stack: Stack, record: ResourceRecord, before: ResourceRecord
    ) -> bool:
        self._set_resource(stack, record, "UPDATE_IN_PROGRESS")
        try:
            assert record.provisioned is not None
            provisioned = self._provisioner(record).update(
                self._context(stack, record), record.provisioned, record.props, before.props
            )
        except Exception as exc:
            self._fail(stack, record, "UPDATE_FAILED", exc)
            return False
        record.provisioned, record.props = provisioned, before.props
        self._set_resource(stack, record, "UPDATE_COMPLETE")
        return True

    def _restore(self, stack: Stack, before: ResourceRecord) -> None:
        stack.resources[before.logical_id] = before
        self._set_resource(stack, before, "UPDATE_COMPLETE")

    def _delete_all(
        self,
        stack: Stack,
        plan: Plan,
        order: Iterable[str],
        *,
        retain: set[str] | None = None,
        create_rollback: bool = False,
    ) -> bool:
        ok = True
        for logical_id in order:
            record = stack.resources.get(logical_id)
            if record is None or record.status in ("DELETE_COMPLETE", "DELETE_SKIPPED"):
                continue
            definition = plan.resources[logical_id]
            if retain and logical_id in retain:
                self._set_resource(stack, record, "DELETE_SKIPPED")
                continue
            ok &= self._delete_resource(stack, record, definition, create_rollback=create_rollback)
        return ok

    def _delete_resource(
        self,
        stack: Stack,
        record: ResourceRecord,
        definition: dict[str, Any],
        *,
        create_rollback: bool = False,
    ) -> bool:
        return self._delete_physical(
            stack, record, definition, "DeletionPolicy", create_rollback=create_rollback
        )

    def _delete_physical(
        self,
        stack: Stack,
        record: ResourceRecord,
        definition: dict[str, Any],
        policy_key: str,
        *,
        create_rollback: bool = False,
    ) -> bool:
        policy = definition.get(policy_key, "Delete")
        retained = policy == "Retain" or (policy == "RetainExceptOnCreate" and not create_rollback)
        if retained and record.provisioned is not None:
            self._set_resource(stack, record, "DELETE_SKIPPED")
            return True
        if record.provisioned is None:
            self._set_resource(stack, record, "DELETE_COMPLETE")
            return True
        self._set_resource(stack, record, "DELETE_IN_PROGRESS")
        try:
            self._provisioner(record).delete(
                self._context(stack, record, create_rollback=create_rollback),
                record.provisioned,
                record.props,
            )
        except Exception as exc:
            self._fail(stack, record, "DELETE_FAILED", exc)
            return False
        self._stabilize(record)
        self._set_resource(stack, record, "DELETE_COMPLETE")
        return True

    # -- helpers -------------------------------------------------------------------------------
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
        return provisioner

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
        )

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
    from .errors import InsufficientCapabilities

    raise InsufficientCapabilities(f"Requires capabilities : [{', '.join(required)}]")
