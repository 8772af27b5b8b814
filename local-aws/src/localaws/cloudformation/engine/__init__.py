"""Stack operations: plan a template, then create, update or delete its resources.

Operations run in a background thread per stack, as in CloudFormation: the API returns at
once and the stack's status and events tell what happens. Nested stacks run inside their
parent's operation. Every step holds BACKEND_LOCK; waits (custom resources, modelled
stabilisation) release it.

The parts: `base` (the host Protocol, provisioners, shared steps, events), `planning` and
`running` (the operations and what they do to one resource).
"""

from __future__ import annotations

from .base import (
    IAM_TYPES,
    StackHost,
    check_capabilities,
    describe_error,
    is_custom,
    provisioner_for,
    raise_capabilities,
)
from .running import RunningMixin

__all__ = [
    "IAM_TYPES",
    "Engine",
    "StackHost",
    "check_capabilities",
    "describe_error",
    "is_custom",
    "provisioner_for",
    "raise_capabilities",
]


class Engine(RunningMixin):
    """Runs the operations of one account and region's stacks."""
