"""Intrinsic functions and condition functions, evaluated as CloudFormation evaluates them."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import TemplateError


class _NoValue:
    """`AWS::NoValue`: removes the property or list item it lands in."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Scope:
    """What a template expression can see.

    `ref_resource` and `get_att` are called only for logical ids of resources; they raise
    TemplateError when the resource has no value yet (not created, or its condition is false).
    """

    parameters: Mapping[str, Any]
    pseudo: Mapping[str, Any]
    mappings: Mapping[str, Any] = field(default_factory=dict)
    conditions: Mapping[str, bool] = field(default_factory=dict)
    resource_names: Iterable[str] = ()
    ref_resource: Callable[[str], Any] = lambda name: _unavailable(name)
    get_att: Callable[[str, str], Any] = lambda name, _attr: _unavailable(name)
    availability_zones: Callable[[str], list[str]] = lambda _region: []
    import_value: Callable[[str], str] = lambda name: _missing_export(name)


def _unavailable(name: str) -> Any:
    raise TemplateError(f"Resource {name} is not available")


def _missing_export(name: str) -> str:
    raise TemplateError(f"No export named {name} found.")


class Evaluator:
    """Evaluates template expressions within one `Scope`."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._resources = set(scope.resource_names)

    # -- values ---------------------------------------------------------------------------
    def evaluate(self, node: Any) -> Any:
        """Evaluate `node`; the result may be NO_VALUE at the top level."""
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, arg),) = node.items()
                handler = _FUNCTIONS.get(key)
                if handler is not None:
                    return handler(self, arg)
            result = {}
            for key, value in node.items():
                evaluated = self.evaluate(value)
                if evaluated is not NO_VALUE:
                    result[key] = evaluated
            return result
        if isinstance(node, list):
            return [v for v in (self.evaluate(item) for item in node) if v is not NO_VALUE]
        return node

    def ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise TemplateError("Template error: every Ref object must have a single String value.")
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.scope.pseudo:
            return self.scope.pseudo[name]
        if name in self.scope.parameters:
            return self.scope.parameters[name]
        if name in self._resources:
            return self.scope.ref_resource(name)
        raise TemplateError(f"Template format error: Unresolved resource dependencies [{name}]")

    def get_att(self, arg: Any) -> Any:
        logical_id, attribute = split_get_att(arg, self)
        if logical_id not in self._resources:
            raise TemplateError(
                f"Template error: instance of Fn::GetAtt references undefined resource {logical_id}"
            )
        return self.scope.get_att(logical_id, attribute)

    def sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            text, variables = arg[0], {k: self.evaluate(v) for k, v in arg[1].items()}
        else:
            raise TemplateError("Template error: Fn::Sub takes a string or [string, map]")
        if not isinstance(text, str):
            raise TemplateError("Template error: the first argument of Fn::Sub must be a string")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] in self._resources:
                value = self.get_att(name)
            else:
                value = self.ref(name)
            return _as_string(value, "Fn::Sub")

        return _SUB_VARIABLE.sub(replace, text)

    # -- conditions -----------------------------------------------------------------------
    def condition(self, node: Any) -> bool:
        """Evaluate a condition expression (the value of a Conditions entry)."""
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Condition":
                return self.named_condition(arg)
            if key == "Fn::Equals":
                left, right = _pair(arg, "Fn::Equals")
                return bool(_comparable(self.evaluate(left)) == _comparable(self.evaluate(right)))
            if key == "Fn::Not":
                items = _list(arg, "Fn::Not")
                if len(items) != 1:
                    raise TemplateError("Template error: Fn::Not takes a list of one condition")
                return not self.condition(items[0])
            if key == "Fn::And":
                return all(self.condition(item) for item in _list(arg, "Fn::And"))
            if key == "Fn::Or":
                return any(self.condition(item) for item in _list(arg, "Fn::Or"))
        if isinstance(node, bool):
            return node
        raise TemplateError(f"Template error: {json.dumps(node)} is not a condition")

    def rule(self, node: Any) -> bool:
        """Evaluate a Rules condition: condition functions plus the rule-only ones."""
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key in ("Fn::Not", "Fn::And", "Fn::Or"):
                items = _list(arg, key)
                results = [self.rule(item) for item in items]
                if key == "Fn::Not":
                    return not results[0] if len(results) == 1 else _bad_not()
                return all(results) if key == "Fn::And" else any(results)
            if key == "Fn::Contains":
                values, value = _pair(arg, key)
                return _comparable(self.evaluate(value)) in _members(self.evaluate(values))
            if key == "Fn::EachMemberEquals":
                values, value = _pair(arg, key)
                wanted = _comparable(self.evaluate(value))
                return all(member == wanted for member in _members(self.evaluate(values)))
            if key == "Fn::EachMemberIn":
                values, allowed = _pair(arg, key)
                permitted = _members(self.evaluate(allowed))
                return all(member in permitted for member in _members(self.evaluate(values)))
        return self.condition(node)

    def named_condition(self, name: Any) -> bool:
        if not isinstance(name, str) or name not in self.scope.conditions:
            raise TemplateError(f"Template error: unresolved condition dependency {name}")
        return bool(self.scope.conditions[name])


def split_get_att(arg: Any, evaluator: Evaluator | None = None) -> tuple[str, str]:
    """`["A", "B.C"]` or `"A.B.C"` -> ("A", "B.C"): only the first dot separates."""
    if isinstance(arg, str) and "." in arg:
        logical_id, attribute = arg.split(".", 1)
        return logical_id, attribute
    if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str):
        attribute = arg[1]
        if not isinstance(attribute, str) and evaluator is not None:
            attribute = evaluator.evaluate(attribute)
        if isinstance(attribute, str):
            return arg[0], attribute
    raise TemplateError(f"Template error: invalid Fn::GetAtt {json.dumps(arg)}")


def _bad_not() -> bool:
    raise TemplateError("Template error: Fn::Not takes a list of one condition")


def _members(value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    return [_comparable(item) for item in items]


def _as_string(value: Any, function: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"Template error: {function} needs a string, got {json.dumps(value)}")


def _comparable(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _pair(arg: Any, function: str) -> tuple[Any, Any]:
    items = _list(arg, function)
    if len(items) != 2:
        raise TemplateError(f"Template error: {function} takes a list of two values")
    return items[0], items[1]


def _list(arg: Any, function: str) -> list[Any]:
    if not isinstance(arg, list):
        raise TemplateError(f"Template error: {function} takes a list")
    return arg


def _select(ev: Evaluator, arg: Any) -> Any:
    index_node, values_node = _pair(arg, "Fn::Select")
    try:
        index = int(ev.evaluate(index_node))
    except (TypeError, ValueError) as exc:
        raise TemplateError("Template error: Fn::Select index must be a number") from exc
    values = ev.evaluate(values_node)
    if not isinstance(values, list):
        raise TemplateError("Template error: Fn::Select needs a list to select from")
    if not 0 <= index < len(values):
        raise TemplateError(
            f"Template error: Fn::Select cannot select nonexistent value at index {index}"
        )
    return values[index]


def _join(ev: Evaluator, arg: Any) -> str:
    delimiter, values_node = _pair(arg, "Fn::Join")
    values = ev.evaluate(values_node)
    if not isinstance(delimiter, str) or not isinstance(values, list):
        raise TemplateError("Template error: Fn::Join takes [delimiter, [values]]")
    return delimiter.join(_as_string(v, "Fn::Join") for v in values)


def _split(ev: Evaluator, arg: Any) -> list[str]:
    delimiter, source_node = _pair(arg, "Fn::Split")
    source = ev.evaluate(source_node)
    if not isinstance(delimiter, str) or not isinstance(source, str):
        raise TemplateError("Template error: Fn::Split takes [delimiter, string]")
    return source.split(delimiter)


def _if(ev: Evaluator, arg: Any) -> Any:
    items = _list(arg, "Fn::If")
    if len(items) != 3:
        raise TemplateError(
            "Template error: Fn::If takes [condition, value if true, value if false]"
        )
    return ev.evaluate(items[1] if ev.named_condition(items[0]) else items[2])


def _find_in_map(ev: Evaluator, arg: Any) -> Any:
    items = _list(arg, "Fn::FindInMap")
    if len(items) != 3:
        raise TemplateError("Template error: Fn::FindInMap takes [map, top-level key, second key]")
    name, top, second = (ev.evaluate(item) for item in items)
    try:
        return ev.scope.mappings[name][top][second]
    except (KeyError, TypeError) as exc:
        raise TemplateError(
            f"Template error: Unable to get mapping for {name}::{top}::{second}"
        ) from exc


def _get_azs(ev: Evaluator, arg: Any) -> list[str]:
    region = ev.evaluate(arg) or ev.scope.pseudo["AWS::Region"]
    return list(ev.scope.availability_zones(str(region)))


def _base64(ev: Evaluator, arg: Any) -> str:
    value = _as_string(ev.evaluate(arg), "Fn::Base64")
    return base64.b64encode(value.encode()).decode()


def _cidr(ev: Evaluator, arg: Any) -> list[str]:
    items = [ev.evaluate(item) for item in _list(arg, "Fn::Cidr")]
    if len(items) != 3:
        raise TemplateError("Template error: Fn::Cidr takes [ipBlock, count, cidrBits]")
    try:
        network = ipaddress.ip_network(str(items[0]))
        count, bits = int(items[1]), int(items[2])
        subnets = list(network.subnets(new_prefix=network.max_prefixlen - bits))
    except ValueError as exc:
        raise TemplateError(f"Template error: Fn::Cidr: {exc}") from exc
    if not 1 <= count <= len(subnets):
        raise TemplateError(
            f"Template error: Fn::Cidr cannot make {count} /{network.max_prefixlen - bits} "
            f"subnets in {network}"
        )
    return [str(subnet) for subnet in subnets[:count]]


def _import_value(ev: Evaluator, arg: Any) -> str:
    return ev.scope.import_value(_as_string(ev.evaluate(arg), "Fn::ImportValue"))


_FUNCTIONS: dict[str, Callable[[Evaluator, Any], Any]] = {
    "Ref": lambda ev, arg: ev.ref(arg),
    "Fn::GetAtt": lambda ev, arg: ev.get_att(arg),
    "Fn::Sub": lambda ev, arg: ev.sub(arg),
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::If": _if,
    "Fn::FindInMap": _find_in_map,
    "Fn::GetAZs": _get_azs,
    "Fn::Base64": _base64,
    "Fn::Cidr": _cidr,
    "Fn::ImportValue": _import_value,
    "Fn::Equals": lambda ev, arg: ev.condition({"Fn::Equals": arg}),
    "Fn::And": lambda ev, arg: ev.condition({"Fn::And": arg}),
    "Fn::Or": lambda ev, arg: ev.condition({"Fn::Or": arg}),
    "Fn::Not": lambda ev, arg: ev.condition({"Fn::Not": arg}),
}


def references(node: Any, resource_names: set[str], is_true: Callable[[str], bool]) -> set[str]:
    """The resources `node` depends on, following only the taken branch of each Fn::If."""
    found: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, list):
            for element in item:
                walk(element)
            return
        if not isinstance(item, dict):
            return
        if len(item) == 1:
            ((key, arg),) = item.items()
            if key == "Ref" and isinstance(arg, str):
                if arg in resource_names:
                    found.add(arg)
                return
            if key == "Fn::GetAtt":
                try:
                    found.add(split_get_att(arg)[0])
                except TemplateError:
                    walk(arg)
                return
            if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                walk(arg[1] if is_true(str(arg[0])) else arg[2])
                return
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                walk(variables)
                for name in _SUB_VARIABLE.findall(str(text)):
                    target = name.split(".", 1)[0]
                    if (
                        not name.startswith("!")
                        and name not in variables
                        and target in resource_names
                    ):
                        found.add(target)
                return
        for value in item.values():
            walk(value)

    walk(node)
    return found
