"""Service Catalog for the local AWS: the admin and end-user APIs the product needs.

moto 5.2.5 has 11 Service Catalog operations with UUID ids and cannot launch a product
(the canaries in local-aws/tests/test_servicecatalog.py show each gap). `install()` replaces
moto's backend with `LocalServiceCatalogBackend`:

- ids shaped like AWS's (port-, prod-, pa-, cons-, tag-, pp-, rec-), idempotency tokens kept;
- an artifact's template is read from the local S3 and copied when the artifact is created;
- ProvisionProduct validates the parameters against that copy, then creates the stack
  `SC-<account>-<pp-id>` through the CloudFormation backend, as the LAUNCH constraint's role
  and tagged aws:servicecatalog:*; records and provisioned products read their status from
  the stack on every request (see `provisioning`), so asynchronous stack operations work;
- each launch and update is made from a copy of the template in Service Catalog's own bucket,
  tagged servicecatalog:provisioning=true and read by the launch role (see `template_copy`);
- launch paths follow principal associations for IAM users and roles (see `principals` for
  how the caller is found, and why the account root sees every portfolio);
- with IAM enforcement on, each call of an IAM user or role needs its `servicecatalog:*`
  action in the caller's policies first (see `authorization`).

Its AWS::ServiceCatalog::* resource types are provisioned by the CloudFormation engine's
registry (`cloudformation/provisioners/servicecatalog.py`).
"""

from __future__ import annotations

from typing import Any

from moto.servicecatalog.models import servicecatalog_backends

from .models import LocalServiceCatalogBackend

__all__ = ["LocalServiceCatalogBackend", "install"]


def install() -> None:
    """Serve Service Catalog from `LocalServiceCatalogBackend`; calling it again changes nothing.

    Call it before the server handles its first Service Catalog request: moto builds one
    backend per account and region from `servicecatalog_backends.backend` and routes requests
    through the URL module next to the backend's module (`urls`, next to `models`), in server and
    decorator mode alike, but the server caches its routes on first use. Backends moto made
    before (with its own class) are dropped.
    """
    backends: Any = servicecatalog_backends
    if backends.backend is LocalServiceCatalogBackend:
        return
    backends.backend = LocalServiceCatalogBackend
    backends.clear()
