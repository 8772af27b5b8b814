"""Apply every extension of the local AWS to moto, in one place."""

from __future__ import annotations

from . import (
    iam,
    lambda_runtime,
    public_parameters,
    s3_objects,
    s3_operations,
    s3_policies,
    servicecatalog,
)
from .cloudformation.install import install as install_cloudformation


def install() -> None:
    """Call once the configuration is set and before the server serves its first request."""
    install_cloudformation()
    iam.install()
    lambda_runtime.install()
    servicecatalog.install()
    public_parameters.install()
    s3_policies.install()
    s3_objects.install()
    s3_operations.install()


def uninstall() -> None:
    """Stop what the extensions run in the background (function processes, SQS pollers)."""
    lambda_runtime.uninstall()
