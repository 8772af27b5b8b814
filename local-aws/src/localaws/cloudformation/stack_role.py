"""CloudFormation acting as a stack's role: each resource operation is authorized first.

AWS's CloudFormation makes a resource's API calls with the stack's role (a Service Catalog
launch role, a stack's RoleARN), so a role without a permission the type's handler uses fails
that resource with the service's AccessDenied, and the stack rolls back. The permissions each
handler uses are published in the type's resource provider schema
(`handlers.<create|update|delete>.permissions`, shipped with cfn-lint); before the local
engine runs an operation, every one of them is handed to `localaws.access` as one batch, with
the resource's ARN for the actions that IAM scopes to that kind of resource ("*" for the rest)
and the request's tags. A declared permission the handler calls only for a property the
resource does not have (iam:AttachRolePolicy without ManagedPolicyArns) is not asked, as AWS
does not ask it (`handler_calls` says when each is called). Custom resources need
`lambda:InvokeFunction` on their service token.
A stack with no role is run with its caller's credentials (the IAM user or assumed-role session
that started the operation, kept with the root stack): its operations are authorized for that
caller. The account's administrator is not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localaws import access
from localaws.cloudformation import handler_calls, schema

from .provisioners.base import Provisioned, Provisioner, ProvisionError, ResourceContext

#: A resource's ARN from its name, for the types whose name a template may set: (the name's
#: property, the ARN with `{name}`). `{name}` of a type the template leaves unnamed is the
#: pattern CloudFormation's generated names follow.
_ARNS: Mapping[str, tuple[str, str]] = {
    "AWS::S3::Bucket": ("BucketName", "arn:{partition}:s3:::{name}"),
    # A bucket policy's resource is its bucket.
    "AWS::S3::BucketPolicy": ("Bucket", "arn:{partition}:s3:::{name}"),
    "AWS::IAM::Role": ("RoleName", "arn:{partition}:iam::{account}:role{path}{name}"),
    "AWS::IAM::ManagedPolicy": (
        "ManagedPolicyName",
        "arn:{partition}:iam::{account}:policy{path}{name}",
    ),
    "AWS::IAM::InstanceProfile": (
        "InstanceProfileName",
        "arn:{partition}:iam::{account}:instance-profile{path}{name}",
    ),
    "AWS::SQS::Queue": ("QueueName", "arn:{partition}:sqs:{region}:{account}:{name}"),
    "AWS::SSM::Parameter": ("Name", "arn:{partition}:ssm:{region}:{account}:parameter/{name}"),
    "AWS::Lambda::Function": (
        "FunctionName",
        "arn:{partition}:lambda:{region}:{account}:function:{name}",
    ),
    "AWS::Logs::LogGroup": (
        "LogGroupName",
        "arn:{partition}:logs:{region}:{account}:log-group:{name}",
    ),
    "AWS::SecretsManager::Secret": (
        "Name",
        "arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-??????",
    ),
}
#: EC2 resources' ARNs: `<kind>/<id>`, the id being the physical id (`*` before creation).
_EC2_KINDS: Mapping[str, str] = {
    "AWS::EC2::Instance": "instance",
    "AWS::EC2::VPC": "vpc",
    "AWS::EC2::Subnet": "subnet",
    "AWS::EC2::SecurityGroup": "security-group",
    "AWS::EC2::InternetGateway": "internet-gateway",
    "AWS::EC2::RouteTable": "route-table",
    "AWS::EC2::FlowLog": "vpc-flow-log",
    "AWS::EC2::NatGateway": "natgateway",
    "AWS::EC2::LaunchTemplate": "launch-template",
    "AWS::EC2::KeyPair": "key-pair",
}
#: Actions that make the resource: the tags are the request's; every other action of a create
#: acts on the made resource, which carries them (aws:ResourceTag).
_MAKING = ("Create", "Run", "Allocate", "Put", "Import")
#: The service a type's resource passes its role to (iam:PassedToService), where it is not
#: `<service>.amazonaws.com` of the type's own service.
_PASSED_TO: Mapping[str, str] = {"AWS::EC2::FlowLog": "vpc-flow-logs.amazonaws.com"}


class StackRoleDenied(ProvisionError):
    """The stack's role may not perform an action the resource's handler needs."""


def _format(resource_type: str, ctx: ResourceContext, name: str, props: Mapping[str, Any]) -> str:
    template = _ARNS[resource_type][1]
    return template.format(
        partition=ctx.partition,
        region=ctx.region,
        account=ctx.account_id,
        path=str(props.get("Path") or "/"),
        name=name.lstrip("/") if resource_type == "AWS::SSM::Parameter" else name,
    )


def resource_arn(
    ctx: ResourceContext, props: Mapping[str, Any], current: Provisioned | None
) -> str:
    """The resource's ARN as IAM names it: the created resource's own (its `Arn` attribute or
    an ARN physical id), else the one its name (given, or generated) gives it; "*" if none."""
    if current is not None:
        try:
            arn = current.get_att("Arn")
        except Exception:  # moto models raise their own errors for attributes they lack
            arn = None
        if isinstance(arn, str) and arn.startswith("arn:"):
            return arn
        if current.physical_id.startswith("arn:"):
            return current.physical_id
    kind = _EC2_KINDS.get(ctx.resource_type)
    if kind is not None:
        ident = current.physical_id if current is not None else "*"
        return f"arn:{ctx.partition}:ec2:{ctx.region}:{ctx.account_id}:{kind}/{ident}"
    known = _ARNS.get(ctx.resource_type)
    if known is None:
        return "*"
    name = props.get(known[0])
    if current is not None and not name:
        name = current.physical_id.rstrip("/").rsplit("/", 1)[-1]
        if ctx.resource_type == "AWS::SSM::Parameter":
            name = current.physical_id
    if not name:
        name = f"{ctx.stack_name}-{ctx.logical_id}-*"
    return _format(ctx.resource_type, ctx, str(name), props)


def _tags(props: Mapping[str, Any], ctx: ResourceContext) -> dict[str, str]:
    tags = {k: v for k, v in ctx.stack_tags.items() if not k.startswith("aws:")}
    own = props.get("Tags")
    if isinstance(own, dict):
        tags.update({str(k): str(v) for k, v in own.items()})
    elif isinstance(own, list):
        tags.update({str(t.get("Key")): str(t.get("Value")) for t in own if isinstance(t, dict)})
    return tags


def _context(
    operation: str, action: str, props: Mapping[str, Any], ctx: ResourceContext
) -> dict[str, str | tuple[str, ...]]:
    """The request context: a create's making call carries the tags as request tags, its
    other calls act on the made (tagged) resource; an update does both; a delete acts on
    the tagged resource."""
    context: dict[str, str | tuple[str, ...]] = {
        "aws:CalledVia": ("cloudformation.amazonaws.com",),
        "aws:CalledViaFirst": "cloudformation.amazonaws.com",
        "aws:RequestedRegion": ctx.region,
    }
    tags = _tags(props, ctx)
    making = action.split(":", 1)[1].startswith(_MAKING)
    if operation == "update" or (operation == "create" and making):
        context.update({f"aws:RequestTag/{k}": v for k, v in tags.items()})
        if tags:
            context["aws:TagKeys"] = tuple(tags)
    if operation != "create" or not making:
        context.update({f"aws:ResourceTag/{k}": v for k, v in tags.items()})
    return context


def _iam_arns(ctx: ResourceContext, kind: str, names: Any) -> list[str]:
    """The ARNs of the IAM roles, users or groups a property names (by name or ARN): an
    existing role's own ARN (its path included), else the path-less one IAM would give."""
    from moto.iam.models import iam_backends

    iam = iam_backends[ctx.account_id][ctx.partition]
    arns = []
    for name in names if isinstance(names, list) else []:
        text = str(name)
        if text.startswith("arn:"):
            arns.append(text)
            continue
        found = iam.roles.get(text) if kind == "role" else None
        if found is None and kind == "role":
            found = next((r for r in iam.roles.values() if r.name == text), None)
        arns.append(
            str(found.arn)
            if found is not None
            else f"arn:{ctx.partition}:iam::{ctx.account_id}:{kind}/{text}"
        )
    return arns


def _passed_roles(ctx: ResourceContext, props: Mapping[str, Any]) -> list[str]:
    """The roles a resource hands on (iam:PassRole's resources): a role ARN property, an
    instance's profile's role, or an instance profile's own roles (AddRoleToInstanceProfile
    needs iam:PassRole on the role, IAM API Reference); none if it passes none."""
    if ctx.resource_type == "AWS::IAM::InstanceProfile":
        return _iam_arns(ctx, "role", props.get("Roles"))
    for key in handler_calls.PASSED_ROLE_PROPERTIES:
        value = str(props.get(key, ""))
        if value.startswith("arn:"):
            return [value]
    profile = props.get("IamInstanceProfile")
    if not profile:
        return []
    from moto.iam.models import iam_backends

    iam = iam_backends[ctx.account_id][ctx.partition]
    name = str(profile).rsplit("/", 1)[-1]
    found = next((p for p in iam.instance_profiles.values() if p.name == name), None)
    if found is None or not found.roles:
        return []
    return [str(found.roles[0].arn)]


def _policy_holders(
    action: str, ctx: ResourceContext, props: Mapping[str, Any], previous: Mapping[str, Any]
) -> list[str]:
    """An inline policy's (AWS::IAM::Policy) resources for one of its actions: the roles,
    users or groups it is put on (or, in an update, was put on), as IAM authorizes
    iam:PutRolePolicy on the role."""
    kind = "group" if "Group" in action else "user" if "User" in action else "role"
    key = {"role": "Roles", "user": "Users", "group": "Groups"}[kind]
    names = list(props.get(key) or []) + [
        n for n in previous.get(key) or [] if n not in (props.get(key) or [])
    ]
    return _iam_arns(ctx, kind, names)


def accesses(
    operation: str,
    ctx: ResourceContext,
    props: Mapping[str, Any],
    current: Provisioned | None,
    previous: Mapping[str, Any] | None = None,
) -> list[access.Access]:
    """What the stack's role (else its caller) must be allowed for one resource operation
    (none for the administrator, or while nothing judges them: enforcement off costs
    nothing). `previous`: an update's old properties (removing ManagedPolicyArns still
    detaches them)."""
    principal = ctx.principal_arn
    if principal is None or not access.judging():
        return []
    purpose = f"{operation} of {ctx.logical_id} ({ctx.resource_type}) in stack {ctx.stack_name}"
    if ctx.resource_type.startswith("Custom::") or ctx.resource_type == (
        "AWS::CloudFormation::CustomResource"
    ):
        token = str(props.get("ServiceToken", ""))
        action = "sns:Publish" if token.split(":")[2:3] == ["sns"] else "lambda:InvokeFunction"
        owner = token.split(":")[4] if token.count(":") >= 5 else ctx.account_id
        return [access.Access(principal, action, token or "*", owner, purpose)]
    arn = resource_arn(ctx, props, current)
    found: dict[tuple[str, str], access.Access] = {}
    for action in schema.handler_permissions(ctx.resource_type, operation):
        known, scoped = schema.iam_action(action)
        if not known or not handler_calls.called(ctx.resource_type, action, props, previous):
            continue
        resources = [arn if scoped and schema.scopes_to(action, arn) else "*"]
        context = _context(operation, action, props, ctx)
        if action == "iam:PassRole":
            # No roles passed: the handler makes no PassRole call.
            resources = _passed_roles(ctx, props)
            service = ctx.resource_type.split("::")[1].lower()
            if (
                ctx.resource_type != "AWS::IAM::InstanceProfile"
            ):  # IAM keeps it, passes it to no service
                context["iam:PassedToService"] = _PASSED_TO.get(
                    ctx.resource_type, f"{service}.amazonaws.com"
                )
        elif ctx.resource_type == "AWS::IAM::Policy":
            resources = _policy_holders(action, ctx, props, previous or {})
        for resource in resources:
            found.setdefault(
                (action, resource),
                access.Access(principal, action, resource, ctx.account_id, purpose, context),
            )
    return list(found.values())


def authorize(
    operation: str,
    ctx: ResourceContext,
    props: Mapping[str, Any],
    current: Provisioned | None,
    previous: Mapping[str, Any] | None = None,
) -> None:
    """Raise StackRoleDenied, with AWS's message for the event, if the stack's role may not
    perform `operation` on the resource."""
    try:
        access.authorize(*accesses(operation, ctx, props, current, previous))
    except access.AccessDenied as denied:
        service = ctx.resource_type.split("::")[1] if "::" in ctx.resource_type else "Lambda"
        raise StackRoleDenied(
            f'Resource handler returned message: "{denied} (Service: {service}, Status Code: '
            f'403)" (HandlerErrorCode: AccessDenied)'
        ) from denied


class AsStackRole(Provisioner):
    """A provisioner whose operations are authorized for the stack's role before they run."""

    def __init__(self, inner: Provisioner) -> None:
        self.inner = inner

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        authorize("create", ctx, props, None)
        return self.inner.create(ctx, props)

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        authorize("update", ctx, new_props, current, old_props)
        return self.inner.update(ctx, current, old_props, new_props)

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        authorize("delete", ctx, props, current)
        self.inner.delete(ctx, current, props)
