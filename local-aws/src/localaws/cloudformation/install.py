"""Put the engine in place of moto's CloudFormation (backend class and request routing)."""

from __future__ import annotations

from moto.cloudformation import models, urls

from .backend import LocalCloudFormationBackend
from .responses import LocalCloudFormationResponse


def install() -> None:
    """Idempotent; must run before the server handles its first CloudFormation request."""
    models.cloudformation_backends.backend = LocalCloudFormationBackend
    for account in models.cloudformation_backends.values():
        account.backend = LocalCloudFormationBackend
        account.clear()
    # The cfnresponse route of moto is dropped: custom resources answer on our HTTPS listener.
    urls.url_paths = {"{0}/$": LocalCloudFormationResponse.dispatch}
