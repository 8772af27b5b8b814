"""The contract between the stack engine and the code that creates one resource type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class ResourceContext:
    """What a provisioner may know about the resource it works on."""

    account_id: str
    region: str
    partition: str
    stack_id: str
    stack_name: str
    logical_id: str
    resource_type: str
    # Tags CloudFormation propagates to taggable resources: the stack's tags plus
    # aws:cloudformation:stack-name, aws:cloudformation:stack-id, aws:cloudformation:logical-id.
    # Provisioners of taggable types apply these and then the resource's own `Tags` property.
    stack_tags: Mapping[str, str] = field(default_factory=dict)
    # True while a stack's failed Create is being rolled back: nested stacks then delete
    # resources whose DeletionPolicy is RetainExceptOnCreate, as the root stack does.
    create_rollback: bool = False
    # The role CloudFormation acts as for this stack (a launch role, the stack's RoleARN).
    role_arn: str | None = None
    # Without a role, the root stack's caller (None: the administrator, not checked).
    caller_arn: str | None = None

    @property
    def principal_arn(self) -> str | None:
        """Who CloudFormation acts as for this resource (see `acting_principal`)."""
        return acting_principal(self.role_arn, self.caller_arn)


def acting_principal(role_arn: str | None, caller_arn: str | None) -> str | None:
    """The principal CloudFormation's calls for a stack are made as: a session of its role
    (a launch role, RoleARN), else its caller's own credentials; None for the account's
    administrator, whose calls are not checked."""
    from localaws.access import role_session_arn

    return role_session_arn(role_arn) if role_arn else caller_arn


@dataclass
class Provisioned:
    """A created resource: its physical id (what Ref returns) and its GetAtt attributes."""

    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    # A moto model, when the resource is backed by one; GetAtt falls back to it.
    model: Any = None

    def get_att(self, name: str) -> Any:
        if name in self.attributes:
            return self.attributes[name]
        if self.model is not None:
            return self.model.get_cfn_attribute(name)
        raise KeyError(name)


class NeedsReplacement(Exception):
    """Raised by `update` when the change cannot be made in place."""


class ProvisionError(Exception):
    """A resource operation failed; the message becomes the event's ResourceStatusReason.

    `physical_id` is set when something was created before the failure (a custom resource
    that answered FAILED with an id): the rollback then deletes it.
    """

    def __init__(self, message: str, physical_id: str | None = None) -> None:
        super().__init__(message)
        self.physical_id = physical_id


class Provisioner:
    """Base class: subclasses set `resource_type` and implement the three operations.

    A `resource_type` ending in `::*` stands for every type with that prefix (`Custom::*`);
    `aliases` are other exact types the same provisioner creates."""

    resource_type: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        raise NotImplementedError

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        """Apply a property change in place, or raise NeedsReplacement."""
        raise NeedsReplacement

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        raise NotImplementedError


_REGISTRY: dict[str, Provisioner] = {}
_PREFIXES: dict[str, Provisioner] = {}


def register(cls: type[Provisioner]) -> type[Provisioner]:
    """Class decorator: make `cls` the provisioner of its resource type (and its aliases)."""
    provisioner = cls()
    if cls.resource_type.endswith("::*"):
        _PREFIXES[cls.resource_type[:-1]] = provisioner
    else:
        _REGISTRY[cls.resource_type] = provisioner
    for alias in cls.aliases:
        _REGISTRY[alias] = provisioner
    return cls


def registered(resource_type: str) -> Provisioner | None:
    """The provisioner registered for the exact type, else for a prefix it starts with."""
    found = _REGISTRY.get(resource_type)
    if found is not None:
        return found
    return next((p for pre, p in _PREFIXES.items() if resource_type.startswith(pre)), None)


def registered_types() -> list[str]:
    return sorted(_REGISTRY)
