"""Service Catalog for the local AWS: the admin and end-user APIs the product needs.

moto 5.2.5 has 11 Service Catalog operations with UUID ids and cannot launch a product
(tests/localaws/test_servicecatalog.py shows each gap). `install()` replaces moto's backend with
`LocalServiceCatalogBackend`, whose products launch real CloudFormation stacks, and registers the
CloudFormation resource types of Service Catalog with the local engine.
"""

from __future__ import annotations

from typing import Any

from moto.servicecatalog.models import servicecatalog_backends

from . import resources
from .backend import LocalServiceCatalogBackend

__all__ = ["LocalServiceCatalogBackend", "install", "resources"]


def install() -> None:
    """Serve Service Catalog from `LocalServiceCatalogBackend`; calling it again changes nothing.

    moto creates one backend per account and region from `servicecatalog_backends.backend`, and
    finds the URL handlers through that backend (see `LocalServiceCatalogBackend._url_module`),
    in server and decorator mode alike. Backends moto made before (with moto's class) are dropped.
    """
    backends: Any = servicecatalog_backends
    if backends.backend is LocalServiceCatalogBackend:
        return
    backends.backend = LocalServiceCatalogBackend
    backends.clear()
