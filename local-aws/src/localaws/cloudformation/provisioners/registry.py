"""Which provisioner creates a resource type: one registry for every type, `Custom::*` and
Service Catalog's included (each module of this package registers its own), then moto's own
models for the types nobody registered."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from . import base
from .base import Provisioner, registered


@cache
def _load() -> None:
    """Import every module of this package: importing registers."""
    package = base.__name__.rsplit(".", 1)[0]
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")


def provisioner_for(resource_type: str) -> Provisioner | None:
    """Ours for the types registered here, else an adapter over moto's model, else None."""
    _load()
    from .moto_model import adapter_for

    return registered(resource_type) or adapter_for(resource_type)
