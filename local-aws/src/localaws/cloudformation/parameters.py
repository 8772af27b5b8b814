"""Template parameters: defaults, types, constraints, and the AWS-specific types that must exist."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError

_SSM_TYPE = re.compile(r"^AWS::SSM::Parameter::Value<(.+)>$")
_LIST_TYPE = re.compile(r"^List<(.+)>$")

# AWS-specific parameter types whose values CloudFormation checks against the account.
EXISTENCE_TYPES = (
    "AWS::EC2::KeyPair::KeyName",
    "AWS::EC2::VPC::Id",
    "AWS::EC2::Subnet::Id",
    "AWS::EC2::SecurityGroup::Id",
    "AWS::EC2::Image::Id",
)


@dataclass(frozen=True)
class Lookups:
    """How to check AWS-specific values; each returns whether the value exists."""

    exists: Callable[[str, str], bool] = lambda _type, _value: True
    ssm_parameter: Callable[[str], str | None] = lambda _name: None


@dataclass
class ResolvedParameters:
    # What intrinsic functions see: lists for list types, resolved values for SSM types.
    values: dict[str, Any] = field(default_factory=dict)
    # The values as given (or defaulted): what DescribeStacks shows and UsePreviousValue reuses.
    given: dict[str, str] = field(default_factory=dict)
    resolved_ssm: dict[str, str] = field(default_factory=dict)
    no_echo: set[str] = field(default_factory=set)


def resolve(
    declarations: Mapping[str, Any], supplied: Mapping[str, str], lookups: Lookups
) -> ResolvedParameters:
    """Validate `supplied` against the template's declarations, as CreateStack does."""
    undeclared = sorted(set(supplied) - set(declarations))
    if undeclared:
        raise ValidationError(f"Parameters: [{', '.join(undeclared)}] do not exist in the template")
    missing = [
        name
        for name, decl in declarations.items()
        if name not in supplied and "Default" not in (decl or {})
    ]
    if missing:
        raise ValidationError(f"Parameters: [{', '.join(missing)}] must have values")

    result = ResolvedParameters()
    for name, decl in declarations.items():
        decl = decl or {}
        raw = supplied[name] if name in supplied else decl["Default"]
        given = _to_string(raw)
        param_type = str(decl.get("Type", "String"))
        result.given[name] = given
        if decl.get("NoEcho") in (True, "true", "True"):
            result.no_echo.add(name)
        ssm = _SSM_TYPE.match(param_type)
        if ssm:
            value = lookups.ssm_parameter(given)
            if value is None:
                raise ValidationError(
                    f"Unable to fetch parameters [{given}] from parameter store for this account."
                )
            result.resolved_ssm[name] = value
            result.values[name] = _typed(name, value, ssm.group(1), decl, lookups)
        else:
            _check_constraints(name, given, param_type, decl)
            result.values[name] = _typed(name, given, param_type, decl, lookups)
    return result


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_to_string(v) for v in value)
    return str(value)


def _typed(
    name: str, value: str, param_type: str, decl: Mapping[str, Any], lookups: Lookups
) -> Any:
    listed = _LIST_TYPE.match(param_type)
    if param_type == "CommaDelimitedList" or listed:
        items = [item.strip() for item in value.split(",")]
        element_type = listed.group(1) if listed else "String"
        for item in items:
            _check_element(name, item, element_type, decl, lookups)
        return items
    _check_element(name, value, param_type, decl, lookups)
    return value


def _check_element(
    name: str, value: str, element_type: str, decl: Mapping[str, Any], lookups: Lookups
) -> None:
    if element_type == "Number":
        _number(name, value)
    allowed = decl.get("AllowedValues")
    if allowed is not None and value not in [_to_string(v) for v in allowed]:
        raise ValidationError(_failed(name, decl, "must be one of AllowedValues"))
    if element_type in EXISTENCE_TYPES and not lookups.exists(element_type, value):
        raise ValidationError(
            f"Parameter validation failed: parameter value {value} for parameter name {name} "
            "does not exist. Rollback requested by user."
        )


def _check_constraints(name: str, value: str, param_type: str, decl: Mapping[str, Any]) -> None:
    pattern = decl.get("AllowedPattern")
    if (
        pattern is not None
        and not _LIST_TYPE.match(param_type)
        and param_type != "CommaDelimitedList"
    ) and re.fullmatch(str(pattern), value) is None:
        raise ValidationError(_failed(name, decl, f"must match pattern {pattern}"))
    for key, message in (
        ("MinLength", "must contain at least {} characters"),
        ("MaxLength", "must contain at most {} characters"),
    ):
        if key in decl:
            limit = int(decl[key])
            too_short = key == "MinLength" and len(value) < limit
            if too_short or (key == "MaxLength" and len(value) > limit):
                raise ValidationError(_failed(name, decl, message.format(limit)))
    if param_type == "Number":
        number = _number(name, value)
        if "MinValue" in decl and number < float(decl["MinValue"]):
            raise ValidationError(
                _failed(name, decl, f"must be a number not less than {decl['MinValue']}")
            )
        if "MaxValue" in decl and number > float(decl["MaxValue"]):
            raise ValidationError(
                _failed(name, decl, f"must be a number not greater than {decl['MaxValue']}")
            )


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValidationError(f"Parameter '{name}' must be a number") from None


def _failed(name: str, decl: Mapping[str, Any], default: str) -> str:
    description = decl.get("ConstraintDescription")
    if description:
        return f"Parameter {name} failed to satisfy constraint: {description}"
    return f"Parameter '{name}' {default}"
