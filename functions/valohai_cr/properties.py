"""Reading custom-resource properties (CloudFormation sends them as strings).

Every problem becomes a PropertyError that names the property, what is wrong with the value
and what a valid value looks like, because that message is all the user sees in the console.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from valohai_cr.errors import PropertyError

#: Properties CloudFormation adds to every custom resource.
FRAMEWORK_PROPERTIES = frozenset({"ServiceToken", "ServiceTimeout"})


def shown(value: Any, limit: int = 60) -> str:
    """A bad value as it appears in a message: quoted, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


class Properties:
    """Typed access to one resource's properties; unknown names are refused (typos show up)."""

    def __init__(self, raw: Any, known: Collection[str]) -> None:
        if not isinstance(raw, Mapping):
            raise PropertyError("The resource has no Properties: set at least the required ones")
        unknown = sorted(
            str(name) for name in raw if name not in known and name not in FRAMEWORK_PROPERTIES
        )
        if unknown:
            raise PropertyError(
                f"Unknown property {', '.join(unknown)}: "
                f"the properties are {', '.join(sorted(known))}"
            )
        self._raw: Mapping[str, Any] = raw

    def text(
        self,
        name: str,
        *,
        default: str | None = None,
        pattern: str | None = None,
        expected: str = "a string",
    ) -> str:
        """A string property; `pattern` (a full match) and `expected` describe valid values."""
        value = self._raw.get(name, default)
        if value is None:
            raise PropertyError(f"{name} is missing: set it to {expected}")
        if not isinstance(value, str):
            raise PropertyError(f"{name} must be {expected}, not a {_kind(value)}")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise PropertyError(f"{name} must be {expected}, got {shown(value)}")
        return value

    def flag(self, name: str, *, default: bool) -> bool:
        value = self.text(name, default=str(default).lower(), expected='"true" or "false"')
        if value.lower() not in ("true", "false"):
            raise PropertyError(f'{name} must be "true" or "false", got {shown(value)}')
        return value.lower() == "true"

    def integer(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        expected = f"a whole number from {minimum} to {maximum}"
        value = self.text(name, default=str(default), pattern=r"[0-9]{1,9}", expected=expected)
        number = int(value)
        if not minimum <= number <= maximum:
            raise PropertyError(f"{name} must be {expected}, got {shown(value)}")
        return number

    def choice(self, name: str, options: Collection[str], *, default: str) -> str:
        expected = " or ".join(f'"{option}"' for option in options)
        value = self.text(name, default=default, expected=expected)
        if value not in options:
            raise PropertyError(f"{name} must be {expected}, got {shown(value)}")
        return value

    def mapping(self, name: str, *, expected: str) -> Mapping[str, Any]:
        value = self._raw.get(name)
        if value is None:
            raise PropertyError(f"{name} is missing: set it to {expected}")
        if not isinstance(value, Mapping):
            raise PropertyError(f"{name} must be {expected}, not a {_kind(value)}")
        return value


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list):
        return "list"
    return type(value).__name__
