"""Facts about resource types from the CloudFormation resource schemas cfn-lint ships."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

_REGION = "us-east-1"  # the type definitions are the same everywhere for what we read


@cache
def _schema(resource_type: str) -> Any:
    try:
        return PROVIDER_SCHEMA_MANAGER.get_resource_schema(_REGION, resource_type)
    except Exception:  # cfn-lint raises its own ResourceNotFoundError subclasses
        return None


def is_known(resource_type: str) -> bool:
    return _schema(resource_type) is not None


@cache
def create_only_paths(resource_type: str) -> tuple[tuple[str, ...], ...]:
    """Property paths whose change means replacement (`createOnlyProperties`)."""
    schema = _schema(resource_type)
    if schema is None:
        return ()
    paths = schema.schema.get("createOnlyProperties", [])
    return tuple(tuple(p.split("/")[2:]) for p in paths if p.startswith("/properties/"))


@cache
def attributes(resource_type: str) -> frozenset[str]:
    schema = _schema(resource_type)
    if schema is None:
        return frozenset()
    return frozenset(schema.get_atts)


@cache
def handler_permissions(resource_type: str, operation: str) -> tuple[str, ...]:
    """The permissions CloudFormation's `operation` handler (create, update, delete) of the
    type declares it needs (`handlers.<operation>.permissions`); () for a type with none."""
    schema = _schema(resource_type)
    if schema is None:
        return ()
    handler = (schema.schema.get("handlers") or {}).get(operation) or {}
    return tuple(handler.get("permissions", ()))


@cache
def _iam_reference() -> Any:
    import json
    from pathlib import Path

    import cfnlint.data.AdditionalSpecs

    return json.loads(
        Path(cfnlint.data.AdditionalSpecs.__file__).with_name("Policies.json").read_text()
    )


def iam_action(action: str) -> tuple[bool, bool]:
    """(whether IAM knows `action`, whether it can be scoped to a resource), from the IAM
    reference data cfn-lint ships. Some schemas list API operations that are not IAM actions
    (s3:DeleteBucketCors, authorized by s3:PutBucketCORS): IAM never asks for those."""
    service, _, name = action.partition(":")
    entry = _iam_reference().get(service, {}).get("Actions", {}).get(name.lower())
    if entry is None:
        return False, False
    return True, bool(entry.get("Resources"))


@cache
def _arn_patterns(action: str) -> tuple[re.Pattern[str], ...]:
    service, _, name = action.partition(":")
    spec = _iam_reference().get(service, {})
    kinds = (spec.get("Actions", {}).get(name.lower()) or {}).get("Resources", ())
    patterns = []
    for kind in kinds:
        for arn in (spec.get("Resources", {}).get(kind) or {}).get("ARNFormats", ()):
            pattern = re.sub(r"\$\{(Partition|Region|Account)\}", "[^:]*", arn)
            patterns.append(re.compile(pattern + "$"))
    return tuple(patterns)


def scopes_to(action: str, arn: str) -> bool:
    """Whether IAM scopes `action` to resources of `arn`'s kind (s3:CreateBucket to a bucket
    ARN, but not s3:DeleteObject, whose resources are objects)."""
    return any(pattern.match(arn) for pattern in _arn_patterns(action))


def is_taggable(resource_type: str) -> bool:
    schema = _schema(resource_type)
    return schema is not None and "Tags" in schema.schema.get("properties", {})


def needs_replacement(resource_type: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when a create-only property differs between `old` and `new` properties."""
    return any(_at(old, path) != _at(new, path) for path in create_only_paths(resource_type))


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def coerce(resource_type: str, props: dict[str, Any]) -> dict[str, Any]:
    """Turn "true"/"8" into True/8 where the schema says boolean/integer, as CloudFormation does.

    Parameters and most intrinsic functions yield strings; moto's models expect typed values.
    """
    schema = _schema(resource_type)
    if schema is None:
        return props
    root = schema.schema
    coerced: dict[str, Any] = _coerce(
        props, {"type": "object", "properties": root.get("properties", {})}, root, 0
    )
    return coerced


def _coerce(value: Any, spec: dict[str, Any], root: dict[str, Any], depth: int) -> Any:
    if depth > 12 or not isinstance(spec, dict):
        return value
    ref = spec.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        spec = root.get("definitions", {}).get(ref.rsplit("/", 1)[1], {})
    kind = spec.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if isinstance(value, str):
        if "boolean" in kinds and "string" not in kinds and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if "integer" in kinds and "string" not in kinds and value.lstrip("-").isdigit():
            return int(value)
        if "number" in kinds and "string" not in kinds:
            try:
                return int(value) if value.lstrip("-").isdigit() else float(value)
            except ValueError:
                return value
        return value
    if isinstance(value, dict):
        properties = spec.get("properties", {})
        return {
            key: _coerce(item, properties.get(key, {}), root, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        items = spec.get("items", {})
        return [_coerce(item, items, root, depth + 1) for item in value]
    return value
