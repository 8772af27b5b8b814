"""The Service Catalog errors, serialised by moto with the codes boto3 knows."""

from __future__ import annotations

from moto.core.exceptions import ServiceException


class ServiceCatalogError(ServiceException):
    """Base of every error this emulation returns; `code` is the AWS error code."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ResourceNotFoundException(ServiceCatalogError):
    code = "ResourceNotFoundException"


class InvalidParametersException(ServiceCatalogError):
    code = "InvalidParametersException"


class DuplicateResourceException(ServiceCatalogError):
    code = "DuplicateResourceException"


class InvalidStateException(ServiceCatalogError):
    code = "InvalidStateException"


class ResourceInUseException(ServiceCatalogError):
    code = "ResourceInUseException"
