"""Put the engine in place of moto's CloudFormation: moto builds its backends from our class and
routes requests through `urls`, next to our `models`."""

from __future__ import annotations

from moto.cloudformation import models

from .models import LocalCloudFormationBackend


def install() -> None:
    """Idempotent; must run before the server handles its first CloudFormation request."""
    models.cloudformation_backends.backend = LocalCloudFormationBackend
    for account in models.cloudformation_backends.values():
        account.backend = LocalCloudFormationBackend
        account.clear()
