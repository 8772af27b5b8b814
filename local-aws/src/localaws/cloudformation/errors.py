"""Errors the CloudFormation API returns synchronously, as moto service exceptions."""

from __future__ import annotations

from moto.cloudformation.exceptions import CloudFormationError
from moto.cloudformation.exceptions import ValidationError as _MotoValidationError


class ValidationError(_MotoValidationError):
    """A `ValidationError` with just a message (moto's takes a stack name first)."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


class InsufficientCapabilities(CloudFormationError):
    code = "InsufficientCapabilitiesException"


class AlreadyExists(CloudFormationError):
    code = "AlreadyExistsException"


class ChangeSetNotFound(CloudFormationError):
    code = "ChangeSetNotFound"


class InvalidChangeSetStatus(CloudFormationError):
    code = "InvalidChangeSetStatus"


class TemplateError(Exception):
    """A problem found while evaluating the template for one resource or output."""
