"""Is this event CloudFormation's? Checked before a custom-resource function acts on it.

Anyone allowed to invoke the function can hand it an event, so nothing in the event is taken
on trust: the ResponseURL must be CloudFormation's response bucket in this region (else the
function would PUT wherever a caller points it), and the stack must really have that logical
resource in progress for that request type, as read from CloudFormation itself (else a caller
could make it delete another stack's resource, or replay a Create after its stack rolled back).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from valohai_cr.errors import ResourceFailure, aws_reason
from valohai_cr.properties import shown

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

REQUEST_TYPES = ("Create", "Update", "Delete")

_STACK_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):cloudformation:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"stack/(?P<name>[A-Za-z][A-Za-z0-9-]{0,127})/[A-Za-z0-9-]{1,64}"
)
#: CloudFormation's response bucket is `cloudformation-custom-resource-response-<region without
#: dashes>` (AWS: "Setting up VPC endpoints for CloudFormation", the bucket names). Its
#: presigned URLs use the virtual-hosted forms of the S3 endpoint: global, dotted or dashed
#: regional, or dual-stack.
_DNS_SUFFIX = {"aws-cn": "amazonaws.com.cn"}
#: The fields that identify a request, as CloudFormation writes them.
_IDENTIFIERS = (
    ("StackId", _STACK_ARN.pattern, "a CloudFormation stack ARN"),
    ("RequestId", r"[A-Za-z0-9-]{1,128}", "CloudFormation's request id (a UUID)"),
    ("LogicalResourceId", r"[A-Za-z0-9]{1,255}", "a logical id (letters and digits)"),
)
_IN_PROGRESS = {
    "Create": "CREATE_IN_PROGRESS",
    "Update": "UPDATE_IN_PROGRESS",
    "Delete": "DELETE_IN_PROGRESS",
}
#: While a stack cleans up after an update, CloudFormation deletes the resources the update
#: replaced: the logical id already names the new one, which is complete.
_CLEANUP = ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")


class NotFromCloudFormation(ResourceFailure):
    """The event names no request CloudFormation is waiting for: do nothing it asks."""


@dataclass(frozen=True)
class Request:
    """The identifying fields of a well-formed event (everything else is the provider's)."""

    request_type: str
    stack_id: str
    request_id: str
    logical_id: str
    physical_id: str | None


def response_hosts(region: str, partition: str = "aws") -> frozenset[str]:
    """The host names CloudFormation's presigned ResponseURLs use in `region`."""
    suffix = _DNS_SUFFIX.get(partition, "amazonaws.com")
    bucket = f"cloudformation-custom-resource-response-{region.replace('-', '')}"
    endpoints = [f"s3.{region}", f"s3-{region}", f"s3.dualstack.{region}"]
    if partition == "aws":
        endpoints.append("s3")
    return frozenset(f"{bucket}.{endpoint}.{suffix}" for endpoint in endpoints)


def answerable_url(event: Any, region: str, partition: str = "aws") -> str | None:
    """The event's ResponseURL if it is CloudFormation's response bucket in `region`, else None
    (an event without one cannot be answered, and must not be: see the module docstring)."""
    url = event.get("ResponseURL") if isinstance(event, dict) else None
    if not isinstance(url, str) or len(url) > 8192:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if (
        parts.scheme != "https"
        or parts.username is not None
        or parts.password is not None
        or port not in (None, 443)
        or parts.hostname not in response_hosts(region, partition)
    ):
        return None
    return url


def well_formed(event: dict[str, Any]) -> Request:
    """The event's identifying fields, or a ResourceFailure naming the first one that is wrong."""
    request_type = event.get("RequestType")
    if request_type not in REQUEST_TYPES:
        raise ResourceFailure(
            f"RequestType must be Create, Update or Delete, got {shown(request_type)}: "
            "only CloudFormation's custom-resource requests are served"
        )
    fields = {}
    for name, pattern, expected in _IDENTIFIERS:
        value = event.get(name)
        if value is None or value == "":
            raise ResourceFailure(
                f"{name} is missing: the event is not a CloudFormation custom-resource request"
            )
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ResourceFailure(f"{name} must be {expected}, got {shown(value)}")
        fields[name] = value
    physical_id = event.get("PhysicalResourceId")
    if request_type != "Create" and (not isinstance(physical_id, str) or not physical_id):
        raise ResourceFailure(
            f"PhysicalResourceId is missing: CloudFormation sends it with every {request_type}"
        )
    if isinstance(physical_id, str) and len(physical_id.encode()) > 1024:
        raise ResourceFailure("PhysicalResourceId is longer than CloudFormation's 1 KB")
    for name in ("ResourceProperties", "OldResourceProperties"):
        if not isinstance(event.get(name, {}), dict):
            raise ResourceFailure(f"{name} must be a map of the resource's properties")
    return Request(
        request_type=str(request_type),
        stack_id=fields["StackId"],
        request_id=fields["RequestId"],
        logical_id=fields["LogicalResourceId"],
        physical_id=physical_id if isinstance(physical_id, str) else None,
    )


def confirm(
    request: Request, cloudformation: CloudFormationClient, *, region: str, account: str
) -> None:
    """Raise NotFromCloudFormation unless the stack has this resource in progress for this
    request type (read from CloudFormation, never from the event)."""
    arn = _STACK_ARN.fullmatch(request.stack_id)
    assert arn is not None  # well_formed checked it
    if (arn["region"], arn["account"]) != (region, account):
        raise NotFromCloudFormation(
            f"StackId {shown(request.stack_id, 120)} is not a stack of this function's account "
            f"and region ({account}, {region}): only stacks here may use it"
        )
    try:
        detail = cloudformation.describe_stack_resource(
            StackName=request.stack_id, LogicalResourceId=request.logical_id
        )["StackResourceDetail"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError":
            raise NotFromCloudFormation(
                f"Refused: stack {arn['name']} has no resource {shown(request.logical_id)} "
                "(the event is not CloudFormation's)"
            ) from error
        raise _unchecked(error) from error
    except BotoCoreError as error:
        raise _unchecked(error) from error
    if detail.get("StackId") != request.stack_id:
        raise NotFromCloudFormation(
            f"Refused: StackId {shown(request.stack_id, 120)} is not the stack's id"
        )
    status: str = detail.get("ResourceStatus", "")
    current = detail.get("PhysicalResourceId")
    if status == _IN_PROGRESS[request.request_type] and (
        request.request_type == "Create" or request.physical_id == current
    ):
        return
    if request.request_type == "Delete" and request.physical_id != current:
        try:
            stacks = cloudformation.describe_stacks(StackName=request.stack_id)["Stacks"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ValidationError":
                raise _unchecked(error) from error
            stacks = []  # gone: nothing is being cleaned up
        except BotoCoreError as error:
            raise _unchecked(error) from error
        if any(stack.get("StackStatus") in _CLEANUP for stack in stacks):
            return  # the update replaced this one; its Delete is expected now
    state = status or "unknown"
    if status == _IN_PROGRESS[request.request_type]:
        state += " under another PhysicalResourceId"
    raise NotFromCloudFormation(
        f"Refused: CloudFormation is not waiting for {_article(request.request_type)} "
        f"{request.request_type} of {request.logical_id} in stack {arn['name']} (the resource "
        f"is {state}); a replayed or forged request changes nothing"
    )


def _article(word: str) -> str:
    return "an" if word[0] in "AEIOU" else "a"


def _unchecked(error: ClientError | BotoCoreError) -> ResourceFailure:
    reason = f"Checking the request with CloudFormation failed: {aws_reason(error)}"
    if "AccessDenied" in reason:
        reason += "; the function's role needs cloudformation:DescribeStackResource on the stack"
    return ResourceFailure(reason)
