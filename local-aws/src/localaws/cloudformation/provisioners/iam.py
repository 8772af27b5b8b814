"""IAM roles, instance profiles, inline and managed policies.

moto's Role model ignores ManagedPolicyArns, keeps inline policy documents as objects and
updates only the description; its InstanceProfile model cannot change roles; its
ManagedPolicy model has neither update nor delete.

Deletion removes only what the resource itself declares, as CloudFormation's handlers do: a
policy another stack (or anyone) put on a role keeps the role alive, and IAM's DeleteConflict
fails the deletion (DELETE_FAILED with IAM's message), as it does in AWS.
"""

from __future__ import annotations

import contextlib
import functools
import json
from typing import Any

from moto.iam.exceptions import NotFoundException
from moto.iam.models import IAMBackend, iam_backends
from moto.iam.models import ManagedPolicy as MotoManagedPolicy

from localaws.iam.aws_managed import bring_in

from .base import Provisioned, ProvisionError, ResourceContext, register
from .common import (
    MotoProvisioner,
    as_int,
    name_or_generated,
    random_suffix,
    resource_tags,
    sync_tags,
    tag_list,
)


def iam_backend(ctx: ResourceContext) -> IAMBackend:
    return iam_backends[ctx.account_id][ctx.partition]


def _attachable(ctx: ResourceContext, arn: str) -> str:
    """Check that a managed policy exists (AWS's own ones are brought in on first use)."""
    if bring_in(iam_backend(ctx), arn):
        return arn
    raise ProvisionError(f"Policy {arn} does not exist or is not attachable.")


def _policy_text(document: Any) -> str:
    """A template's policy document as the JSON text IAM gets.

    IAM's Sid is a string of letters and digits (IAM User Guide, "IAM JSON policy elements:
    Sid"); CloudFormation accepts one written as a number (`Sid: 1` in YAML) and IAM gets
    the string it stands for. Given as JSON text, the document goes to IAM as it is.
    """
    if isinstance(document, str):
        return document
    if isinstance(document, dict):
        statements = document.get("Statement")
        listed: list[Any] = statements if isinstance(statements, list) else [statements]
        if any(_numeric_sid(s) for s in listed):
            listed = [{**s, "Sid": str(s["Sid"])} if _numeric_sid(s) else s for s in listed]
            document = {
                **document,
                "Statement": listed if isinstance(statements, list) else listed[0],
            }
    return json.dumps(document)


def _numeric_sid(statement: Any) -> bool:
    return (
        isinstance(statement, dict)
        and isinstance(statement.get("Sid"), int)
        and not isinstance(statement["Sid"], bool)
    )


def _inline(props: dict[str, Any]) -> dict[str, str]:
    return {p["PolicyName"]: _policy_text(p["PolicyDocument"]) for p in props.get("Policies", [])}


@register
class Role(MotoProvisioner):
    """Ref is the role name; everything but RoleName and Path changes in place."""

    resource_type = "AWS::IAM::Role"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = iam_backend(ctx)
        role = backend.create_role(
            name_or_generated(ctx, props, "RoleName", 64),
            _policy_text(props["AssumeRolePolicyDocument"]),
            props.get("Path", "/"),
            props.get("PermissionsBoundary"),
            props.get("Description", ""),
            tag_list(resource_tags(ctx, props)),
            as_int(props.get("MaxSessionDuration")) or 3600,  # type: ignore[arg-type]
        )
        try:
            self._sync(ctx, role.name, {}, props)
        except Exception:
            self._delete(ctx, role.name, props)
            raise
        return Provisioned(role.name, {"Arn": role.arn, "RoleId": role.id})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        backend = iam_backend(ctx)
        name = current.physical_id
        backend.update_assume_role_policy(name, _policy_text(new_props["AssumeRolePolicyDocument"]))
        backend.update_role(
            name,
            new_props.get("Description", ""),
            as_int(new_props.get("MaxSessionDuration")) or 3600,  # type: ignore[arg-type]
        )
        if new_props.get("PermissionsBoundary"):
            backend.put_role_permissions_boundary(name, new_props["PermissionsBoundary"])
        elif old_props.get("PermissionsBoundary"):
            backend.delete_role_permissions_boundary(name)
        sync_tags(
            resource_tags(ctx, new_props),
            [t["Key"] for t in backend.get_role(name).tags],
            functools.partial(backend.untag_role, name),
            lambda tags: backend.tag_role(name, tag_list(tags)),
        )
        self._sync(ctx, name, old_props, new_props)
        return current

    def _sync(
        self, ctx: ResourceContext, name: str, old: dict[str, Any], new: dict[str, Any]
    ) -> None:
        """Inline and managed policies: remove what `old` had and `new` lacks, put `new`'s."""
        backend = iam_backend(ctx)
        wanted = _inline(new)
        for policy_name in _inline(old).keys() - wanted.keys():
            with contextlib.suppress(NotFoundException):  # deleted elsewhere already
                backend.delete_role_policy(name, policy_name)
        for policy_name, document in wanted.items():
            backend.put_role_policy(name, policy_name, document)
        old_arns = set(old.get("ManagedPolicyArns", []))
        new_arns = set(new.get("ManagedPolicyArns", []))
        for arn in old_arns - new_arns:
            with contextlib.suppress(NotFoundException):  # detached elsewhere already
                backend.detach_role_policy(arn, name)
        for arn in sorted(new_arns - old_arns):
            backend.attach_role_policy(_attachable(ctx, arn), name)

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        self._delete(ctx, current.physical_id, props)

    def _delete(self, ctx: ResourceContext, name: str, props: dict[str, Any]) -> None:
        """Remove the role's own `Policies` and `ManagedPolicyArns`, then delete it.

        What others attached stays, so IAM refuses the deletion ("Cannot delete entity, must
        delete policies first.", DeleteConflict), as CloudFormation reports it in AWS.
        """
        backend = iam_backend(ctx)
        try:
            backend.get_role(name)
        except NotFoundException:
            return
        self._sync(ctx, name, props, {})
        backend.delete_role(name)


@register
class InstanceProfile(MotoProvisioner):
    resource_type = "AWS::IAM::InstanceProfile"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        profile = iam_backend(ctx).create_instance_profile(
            name_or_generated(ctx, props, "InstanceProfileName", 128),
            props.get("Path", "/"),
            role_names=props.get("Roles", []),
        )
        return Provisioned(profile.name, {"Arn": profile.arn})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        backend = iam_backend(ctx)
        profile = backend.get_instance_profile(current.physical_id)
        have = {role.name for role in profile.roles}
        want = set(new_props.get("Roles", []))
        for role in have - want:
            backend.remove_role_from_instance_profile(profile.name, role)
        for role in sorted(want - have):
            backend.add_role_to_instance_profile(profile.name, role)
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        backend = iam_backend(ctx)
        if current.physical_id in backend.instance_profiles:
            backend.delete_instance_profile(current.physical_id, ignore_attached_roles=True)


@register
class Policy(MotoProvisioner):
    """An inline policy put on roles, users and groups; Ref is a generated policy id."""

    resource_type = "AWS::IAM::Policy"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        self._put(ctx, props)
        policy_id = f"{ctx.stack_name[:5]}-{ctx.logical_id[:5]}-{random_suffix()}"
        return Provisioned(policy_id, {"Id": policy_id})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        renamed = old_props["PolicyName"] != new_props["PolicyName"]
        stale = {
            kind: set(old_props.get(kind, []))
            - (set() if renamed else set(new_props.get(kind, [])))
            for kind in ("Roles", "Users", "Groups")
        }
        self._remove(ctx, old_props["PolicyName"], stale)
        self._put(ctx, new_props)
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        principals = {kind: set(props.get(kind, [])) for kind in ("Roles", "Users", "Groups")}
        self._remove(ctx, props["PolicyName"], principals)

    def _put(self, ctx: ResourceContext, props: dict[str, Any]) -> None:
        if not any(props.get(kind) for kind in ("Roles", "Users", "Groups")):
            raise ProvisionError("At least one of [Groups,Roles,Users] must be non-empty.")
        backend = iam_backend(ctx)
        name, document = props["PolicyName"], _policy_text(props["PolicyDocument"])
        for role in props.get("Roles", []):
            backend.put_role_policy(role, name, document)
        for user in props.get("Users", []):
            backend.put_user_policy(user, name, document)
        for group in props.get("Groups", []):
            backend.put_group_policy(group, name, document)

    def _remove(self, ctx: ResourceContext, name: str, principals: dict[str, set[str]]) -> None:
        backend = iam_backend(ctx)
        removers = {
            "Roles": backend.delete_role_policy,
            "Users": backend.delete_user_policy,
            "Groups": backend.delete_group_policy,
        }
        for kind, names in principals.items():
            for principal in names:
                with contextlib.suppress(NotFoundException):  # principal or policy gone
                    removers[kind](principal, name)


@register
class ManagedPolicy(MotoProvisioner):
    """A customer managed policy; Ref is its ARN. A new document becomes a new default
    version, the oldest version going when AWS's limit of five is reached."""

    resource_type = "AWS::IAM::ManagedPolicy"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        backend = iam_backend(ctx)
        policy = backend.create_policy(
            props.get("Description", ""),
            props.get("Path", "/"),
            _policy_text(props["PolicyDocument"]),
            name_or_generated(ctx, props, "ManagedPolicyName", 128),
            [],
        )
        self._attach(ctx, policy.arn, {}, props)
        return self._provisioned(policy)

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        backend = iam_backend(ctx)
        arn = current.physical_id
        document = _policy_text(new_props["PolicyDocument"])
        if _policy_text(old_props["PolicyDocument"]) != document:
            policy = backend.get_policy(arn)
            if len(policy.versions) >= 5:
                oldest = next(v for v in policy.versions if not v.is_default)
                backend.delete_policy_version(arn, oldest.version_id)
            backend.create_policy_version(arn, document, set_as_default=True)
        self._attach(ctx, arn, old_props, new_props)
        return self._provisioned(backend.get_policy(arn))

    @staticmethod
    def _provisioned(policy: MotoManagedPolicy) -> Provisioned:
        return Provisioned(
            policy.arn,
            {
                "PolicyArn": policy.arn,
                "PolicyId": policy.id,
                "DefaultVersionId": policy.default_version_id,
            },
        )

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        """Detach the declared roles, users and groups, delete the older versions, then the
        policy; one attached elsewhere stays attached, and IAM's DeleteConflict ("Cannot
        delete a policy attached to entities.") fails the deletion, as in AWS."""
        backend = iam_backend(ctx)
        arn = current.physical_id
        if arn not in backend.managed_policies:
            return
        self._attach(ctx, arn, props, {})
        for version in list(backend.get_policy(arn).versions):
            if not version.is_default:
                backend.delete_policy_version(arn, version.version_id)
        backend.delete_policy(arn)

    def _attach(
        self, ctx: ResourceContext, arn: str, old: dict[str, Any], new: dict[str, Any]
    ) -> None:
        backend = iam_backend(ctx)
        actions = {
            "Roles": (backend.attach_role_policy, backend.detach_role_policy),
            "Users": (backend.attach_user_policy, backend.detach_user_policy),
            "Groups": (backend.attach_group_policy, backend.detach_group_policy),
        }
        for kind, (attach, detach) in actions.items():
            before, after = set(old.get(kind, [])), set(new.get(kind, []))
            for name in before - after:
                with contextlib.suppress(NotFoundException):  # principal gone already
                    detach(arn, name)
            for name in sorted(after - before):
                attach(arn, name)
