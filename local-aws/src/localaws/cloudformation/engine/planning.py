"""Planning (synchronous: a problem is a ValidationError, and nothing is created)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from localaws import access
from localaws.cloudformation.errors import TemplateError, ValidationError
from localaws.cloudformation.intrinsics import Evaluator, Scope, references
from localaws.cloudformation.model import Plan
from localaws.cloudformation.parameters import Lookups, resolve
from localaws.cloudformation.template import SERVERLESS_TRANSFORM, parse, transforms

from .base import (
    EngineBase,
    _LazyConditions,
    _topological,
    check_capabilities,
    provisioner_for,
    raise_capabilities,
)


class PlanningMixin(EngineBase):
    """Turn a template and parameters into a Plan: transforms, types, rules, conditions, order."""

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

        `capabilities` None skips the capability checks (internal callers); a nested stack is
        checked against its root's, when CloudFormation creates or updates it. Change sets may
        carry transforms without CAPABILITY_AUTO_EXPAND, stacks may not.
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
        parameters = resolve(
            template.get("Parameters") or {}, supplied, self._lookups(role_arn, stack_name)
        )
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
        from localaws.sam_transform import transform

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

    def _lookups(self, role_arn: str | None = None, stack_name: str = "") -> Lookups:
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
                self._check_role_reads_parameter(role_arn, name, stack_name)
            try:
                parameter = ssm.get_parameter(name)
            except Exception:  # ParameterNotFound
                return None
            return None if parameter is None else str(parameter.value)

        return Lookups(exists=exists, ssm_parameter=ssm_parameter)

    def _check_role_reads_parameter(self, role_arn: str, name: str, stack_name: str) -> None:
        """CloudFormation reads an SSM-typed parameter as the stack's role, as AWS does: a role
        without ssm:GetParameters on it fails the operation, naming the parameter only. With
        IAM enforced the read is an access the engine judges (and `localaws.access` records);
        else the role's policies are matched on action and resource alone."""
        from moto.iam.access_control import IAMPolicy, PermissionResult
        from moto.iam.models import iam_backends

        path = name if name.startswith("/") else f"/{name}"
        owner = "" if path.startswith("/aws/service/") else self.account_id
        resource = f"arn:{self.partition}:ssm:{self.region}:{owner}:parameter{path}"
        if access.judging():
            read = access.Access(
                access.role_session_arn(role_arn),
                "ssm:GetParameters",
                resource,
                owner,
                f"parameter {path} of stack {stack_name}",
                {"aws:CalledVia": ("cloudformation.amazonaws.com",)},
            )
            try:
                access.authorize(read)
            except access.AccessDenied as denied:
                raise ValidationError(str(denied)) from denied
            return
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
