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

#: The read CloudFormation makes to check an EC2-typed parameter's value exists.
_DESCRIBE = {
    "AWS::EC2::KeyPair::KeyName": "ec2:DescribeKeyPairs",
    "AWS::EC2::VPC::Id": "ec2:DescribeVpcs",
    "AWS::EC2::Subnet::Id": "ec2:DescribeSubnets",
    "AWS::EC2::SecurityGroup::Id": "ec2:DescribeSecurityGroups",
    "AWS::EC2::Image::Id": "ec2:DescribeImages",
}


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
        principal_arn: str | None = None,
    ) -> Plan:
        """Everything CloudFormation checks before it accepts an operation.

        `capabilities` None skips the capability checks (internal callers); a nested stack is
        checked against its root's, when CloudFormation creates or updates it. Change sets may
        carry transforms without CAPABILITY_AUTO_EXPAND, stacks may not.
        `principal_arn` is who CloudFormation acts as (a session of the stack's role, else the
        caller; None: the administrator): AWS-specific parameters are read with its rights.
        """
        template = parse(body)
        names = transforms(template)
        if names:
            needs_auto_expand = capabilities is not None and not change_set
            template = self._transform(template, names, supplied, needs_auto_expand, capabilities)
        self._check_types(template)
        if capabilities is not None:
            check_capabilities(template, set(capabilities))
        declared = template.get("Parameters") or {}
        parameters = resolve(declared, supplied, self._lookups(principal_arn, stack_name))
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

    def _lookups(self, principal_arn: str | None = None, stack_name: str = "") -> Lookups:
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
            # EC2's Describe actions take no resource (Service Authorization Reference).
            self._authorize(
                principal_arn, _DESCRIBE[kind], "*", self.account_id, f"{kind} parameter value"
            )
            try:
                return bool(finders[kind]())
            except Exception:  # moto raises InvalidKeyPair.NotFound and friends
                return False

        def ssm_parameter(name: str) -> str | None:
            path = name if name.startswith("/") else f"/{name}"
            # AWS's public parameters belong to no account: their ARNs have none.
            owner = "" if path.startswith("/aws/service/") else self.account_id
            resource = f"arn:{self.partition}:ssm:{self.region}:{owner}:parameter{path}"
            self._authorize(
                principal_arn,
                "ssm:GetParameters",
                resource,
                owner,
                f"parameter {path} of stack {stack_name}",
            )
            try:
                parameter = ssm.get_parameter(name)
            except Exception:  # ParameterNotFound
                return None
            return None if parameter is None else str(parameter.value)

        return Lookups(exists=exists, ssm_parameter=ssm_parameter)

    @staticmethod
    def _authorize(
        principal_arn: str | None, action: str, resource: str, owner: str, purpose: str
    ) -> None:
        """CloudFormation reads an AWS-specific parameter as the principal it acts as: one it
        may not read fails the operation with AWS's message, naming the parameter, never its
        value. Nothing is asked of the administrator, or while enforcement is off."""
        if principal_arn is None or not access.judging():
            return
        try:
            access.authorize(
                access.Access(
                    principal_arn,
                    action,
                    resource,
                    owner,
                    purpose,
                    {"aws:CalledVia": ("cloudformation.amazonaws.com",)},
                )
            )
        except access.AccessDenied as denied:
            raise ValidationError(str(denied)) from denied

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
