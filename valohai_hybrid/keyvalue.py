"""KEY=VALUE arguments, parsed one way for every subcommand that takes them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class KeyValueError(ValueError):
    """A malformed or unreadable KEY=VALUE; the message names the item and the fix."""


def split(item: str, *, value_required: bool = False) -> tuple[str, str] | None:
    """(KEY, VALUE) of `item`, or None when it has no `=` or no key (or no value, if
    `value_required`): callers name the option in their own error message."""
    key, separator, value = item.partition("=")
    if not separator or not key or (value_required and not value):
        return None
    return key, value


def values(items: Iterable[str], *, what: str = "parameter", example: str = "") -> dict[str, str]:
    """KEY=VALUE items as a mapping; KEY=@FILE reads the value from FILE (which keeps secrets
    out of the shell history and the process list). A key given twice is an error."""
    found: dict[str, str] = {}
    for item in items:
        pair = split(item)
        if pair is None:
            hint = f" (e.g. {example})" if example else ""
            raise KeyValueError(f"{what} {item!r} is not KEY=VALUE{hint}")
        key, value = pair
        if key in found:
            raise KeyValueError(f"{what} {key} is given twice")
        if value.startswith("@"):
            path = Path(value[1:]).expanduser()
            try:
                value = path.read_text().strip()
            except OSError as error:
                raise KeyValueError(f"{key}=@{path}: cannot read it ({error.strerror})") from error
        found[key] = value
    return found
