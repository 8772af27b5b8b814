"""CloudFormation: its reads by stack (Service Authorization Reference, "Actions defined by AWS
CloudFormation": resource type `stack`), which custom-resource functions make to confirm a
request's origin and to report a stack's status."""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import cloudformation_backends
from moto.utilities.utils import get_partition

from localaws.iam.targets import Service, Target, query_denial

_STACK_READS = frozenset(
    {"DescribeStacks", "DescribeStackResource", "DescribeStackResources", "DescribeStackEvents"}
)


def _targets(response: Any, action: str) -> list[Target] | None:
    """The stack a read by stack acts on, as `arn:...:stack/NAME/ID` (an unknown name as
    `stack/NAME/*`, the resource AWS's denials name); None (unchecked) for other operations
    and for DescribeStacks without a stack, whose resource is not named here yet."""
    name = response._get_param("StackName") if action in _STACK_READS else None
    if not name:
        return None
    account, region = response.current_account, response.region
    if name.startswith("arn:"):
        return [Target(name, name.split(":")[4])]
    backend = cloudformation_backends[account][region]
    try:
        arn = backend.get_stack(name).stack_id
    except ValidationError:  # no such stack: the operation itself reports it, if allowed
        arn = f"arn:{get_partition(region)}:cloudformation:{region}:{account}:stack/{name}/*"
    return [Target(arn, account)]


SERVICE = Service(_targets, query_denial)
