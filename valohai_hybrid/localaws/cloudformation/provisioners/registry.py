"""Which provisioner creates a resource type: ours first, then moto's own models."""

from __future__ import annotations

import importlib
from functools import cache

from .base import Provisioner, registered

# Modules whose import registers provisioners (the order does not matter).
_MODULES = ("valohai_hybrid.localaws.cloudformation.provisioners.nested",)


@cache
def _load() -> None:
    for name in _MODULES:
        importlib.import_module(name)


def provisioner_for(resource_type: str) -> Provisioner | None:
    _load()
    return registered(resource_type)
