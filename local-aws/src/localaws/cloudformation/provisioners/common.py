"""Helpers shared by the provisioners: names, tags, loose values and moto's errors."""

from __future__ import annotations

import functools
import json
import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER
from moto.core.exceptions import ServiceException
from werkzeug.exceptions import HTTPException

from .base import Provisioned, Provisioner, ProvisionError, ResourceContext

_UPPER = string.ascii_uppercase + string.digits
_LOWER = string.ascii_lowercase + string.digits
_MIXED = string.ascii_letters + string.digits


def generated_name(
    ctx: ResourceContext,
    max_length: int,
    *,
    lower: bool = False,
    mixed_case: bool = False,
    with_stack: bool = True,
) -> str:
    """A name like CloudFormation's own: `<stack>-<logical id>-<random>`, cut to fit.

    The stack name is shortened first, then the logical id, so the random part always
    survives: two stacks never collide on a generated name.
    """
    suffix = random_suffix(_LOWER if lower else _MIXED if mixed_case else _UPPER)
    logical = ctx.logical_id
    room = max_length - len(suffix) - 1
    if with_stack:
        stack_room = max(room - len(logical) - 1, 0)
        stack = ctx.stack_name[:stack_room]
        prefix = f"{stack}-{logical}" if stack else logical
    else:
        prefix = logical
    name = f"{prefix[:room].rstrip('-')}-{suffix}"
    return name.lower() if lower else name


def random_suffix(alphabet: str = _UPPER) -> str:
    """The 12 random characters CloudFormation ends its generated names with."""
    return "".join(secrets.choice(alphabet) for _ in range(12))


def name_or_generated(
    ctx: ResourceContext, props: Mapping[str, Any], key: str, max_length: int, **style: bool
) -> str:
    """The name the template gives in `key`, else one CloudFormation would generate."""
    given = props.get(key)
    if given:
        return str(given)
    return generated_name(ctx, max_length, **style)


@functools.cache
def _gets_system_tags(resource_type: str) -> bool:
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    except Exception:  # cfn-lint raises its own not-found classes
        return False
    tagging = schema.get("tagging", {})
    return bool(tagging.get("cloudFormationSystemTags", tagging.get("taggable", False)))


def resource_tags(
    ctx: ResourceContext, props: Mapping[str, Any], key: str = "Tags"
) -> dict[str, str]:
    """The tags a taggable resource ends up with: the stack's, then its own.

    The `aws:cloudformation:*` tags go only to types whose schema says CloudFormation adds
    them (IAM roles, KMS keys, SQS queues and key pairs do not get them).
    """
    system = _gets_system_tags(ctx.resource_type)
    tags = {k: v for k, v in ctx.stack_tags.items() if system or not k.startswith("aws:")}
    tags.update(tag_dict(props.get(key)))
    return tags


def tag_dict(tags: Any) -> dict[str, str]:
    """Tags given as `[{Key, Value}]` (most types) or as a mapping (SSM, SAM) as a dict."""
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags}


def sync_tags(
    wanted: dict[str, str],
    present: Iterable[str],
    untag: Callable[[list[str]], object],
    tag: Callable[[dict[str, str]], object],
) -> None:
    """Make a resource's tags exactly `wanted`, given the keys it has now (`present`).

    `untag` and `tag` are the service's calls bound to the resource; neither is made with
    nothing to do, as some services (SQS) refuse an empty tag set.
    """
    stale = [key for key in present if key not in wanted]
    if stale:
        untag(stale)
    if wanted:
        tag(wanted)


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def as_bool(value: Any, default: bool = False) -> bool:
    """A template boolean, which may still be the string "true" or "false"."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def as_int(value: Any) -> int | None:
    """A template integer, which may still be a string like "8"."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ProvisionError(f"Value '{value}' is not an integer") from None


def json_text(document: Any) -> str:
    """A policy or pattern document as JSON text; templates give them as objects or strings."""
    return document if isinstance(document, str) else json.dumps(document)


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _translating(method: _Method) -> _Method:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except ServiceException as exc:
            raise ProvisionError(exc.message) from exc
        except HTTPException as exc:
            # moto's older RESTError family: the message sits beside an XML description.
            raise ProvisionError(getattr(exc, "message", None) or str(exc)) from exc

    return wrapper  # type: ignore[return-value]


class MotoProvisioner(Provisioner):
    """Base of the provisioners that drive moto's backends.

    moto's backends raise their service errors; these become ProvisionError carrying the
    same message AWS would return, so stack events read like CloudFormation's.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("create", "update", "delete"):
            if name in cls.__dict__:
                setattr(cls, name, _translating(cls.__dict__[name]))


class ConfiguredInPlace(MotoProvisioner):
    """Base of the types whose updatable settings all change in place, the id staying.

    `_configure` applies those settings (tags included) after creation and on every update.
    """

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        self._configure(ctx, current.physical_id, new_props)
        return current

    def _configure(self, ctx: ResourceContext, physical_id: str, props: dict[str, Any]) -> None:
        raise NotImplementedError


class RecreatedOnUpdate(MotoProvisioner):
    """Base of the types an update deletes, as the old properties made it, and creates again.

    For changes AWS makes in place but moto cannot; each subclass says why this is faithful.
    """

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        self.delete(ctx, current, old_props)
        return self.create(ctx, new_props)
