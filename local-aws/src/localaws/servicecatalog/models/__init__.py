"""The Service Catalog backend: admin objects, launch paths, and products launched as stacks.

moto's layout: the backend lives in `models` (so moto finds `urls` next to it), built from two
halves over shared state: `admin` (portfolios, products, constraints, shares) and `enduser`
(launch paths, provisioning, records); `entities` holds the objects.
"""

from __future__ import annotations

from moto.servicecatalog.models import servicecatalog_backends

from .enduser import EndUserMixin


class LocalServiceCatalogBackend(EndUserMixin):
    """Service Catalog for one account and region, in place of moto's."""


def backend_for(account_id: str, region: str) -> LocalServiceCatalogBackend:
    """The account's and region's backend, which install() made ours."""
    backend = servicecatalog_backends[account_id][region]
    if not isinstance(backend, LocalServiceCatalogBackend):
        raise RuntimeError(
            "moto's own Service Catalog is serving: call "
            "localaws.servicecatalog.install() before the first request"
        )
    return backend
