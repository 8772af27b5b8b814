"""Launch, update, terminate and describe the products as a Service Catalog end user does.

This is a customer admin's view of Valohai Hybrid: products found by name among those the
admin's principal may launch, parameters checked against the version's own parameter list
before anything is started, and every operation followed until its record is final, with the
events of the launched stack and of every stack nested in it passed on as they happen (an end
user of Service Catalog may read the events of the `SC-*` stacks launched for them).

The same calls run against AWS and against the local AWS; `valohai-hybrid launch/update/
terminate/describe` and the demo use this module.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

Clients = Callable[[str], Any]
EventSink = Callable[["StackEvent"], None]

FINAL_RECORD = {"SUCCEEDED", "FAILED"}
#: Service Catalog's answers to a request it refused before changing anything.
REFUSALS = {
    "InvalidParametersException",
    "DuplicateResourceException",
    "ResourceNotFoundException",
    "InvalidStateException",
}
STACK_ARN_OUTPUT = "CloudformationStackARN"
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException"}


class CatalogError(Exception):
    """A problem with what the user asked for; the message says what to do."""


class NothingChanged(CatalogError):
    """Refused before anything was started: a product, version, provisioned product or
    parameter that does not exist or does not fit."""


class StillRunning(CatalogError):
    """The operation goes on in AWS, but the wait for it ended."""


@dataclass(frozen=True)
class StackEvent:
    """One CloudFormation stack event, with where it happened in the nesting."""

    timestamp: datetime
    #: Seconds since the operation began (server time on both sides).
    elapsed: float
    #: "Network/Vpc" for a resource of a nested stack, "Vpc" for one of the root stack.
    resource: str
    resource_type: str
    status: str
    reason: str


class StackEvents:
    """New events of a stack and of every stack nested in it since a moment, oldest first.

    Nested stacks are found from their parent's events (their physical id is their ARN); a
    nested stack's events about itself repeat its parent's and are left out.
    """

    def __init__(self, cloudformation: Any, stack: str, since: datetime) -> None:
        self._cloudformation = cloudformation
        self._since = since
        self._stacks: dict[str, str] = {stack: ""}
        self._seen: set[str] = set()

    def poll(self) -> list[StackEvent]:
        found: list[StackEvent] = []
        polled: set[str] = set()
        # A nested stack found in this round is read in this round too, so that its events
        # are sorted among its parent's.
        while pending := [s for s in self._stacks if s not in polled]:
            for stack in pending:
                polled.add(stack)
                found += self._new_events(stack, self._stacks[stack])
        return sorted(found, key=lambda event: event.timestamp)

    def _new_events(self, stack: str, prefix: str) -> list[StackEvent]:
        found = []
        for raw in self._since_start(stack):
            if raw["EventId"] in self._seen:
                continue
            self._seen.add(raw["EventId"])
            physical = str(raw.get("PhysicalResourceId") or "")
            is_stack = raw["ResourceType"] == "AWS::CloudFormation::Stack"
            about_itself = is_stack and physical == raw["StackId"]
            if about_itself and prefix:
                continue
            if is_stack and not about_itself and physical.startswith("arn:"):
                self._stacks.setdefault(physical, f"{prefix}{raw['LogicalResourceId']}/")
            found.append(
                StackEvent(
                    timestamp=raw["Timestamp"],
                    elapsed=max(0.0, (raw["Timestamp"] - self._since).total_seconds()),
                    resource=f"{prefix}{raw['LogicalResourceId']}",
                    resource_type=raw["ResourceType"],
                    status=raw["ResourceStatus"],
                    reason=str(raw.get("ResourceStatusReason") or ""),
                )
            )
        return found

    def _since_start(self, stack: str) -> list[dict[str, Any]]:
        """The stack's events since the start (newest first, as CloudFormation pages them)."""
        events: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"StackName": stack}
        while True:
            try:
                page = self._cloudformation.describe_stack_events(**arguments)
            except ClientError as error:
                if "does not exist" in str(error):
                    return events  # not created yet (or a name whose stack is gone)
                raise
            for event in page["StackEvents"]:
                if event["Timestamp"] < self._since:
                    return events
                events.append(event)
            if not page.get("NextToken"):
                return events
            arguments["NextToken"] = page["NextToken"]


@dataclass(frozen=True)
class Product:
    id: str
    name: str


@dataclass(frozen=True)
class Outcome:
    """A Service Catalog record once it is final."""

    record_id: str
    record_type: str
    status: str
    provisioned_product_id: str
    provisioned_product_name: str
    stack_id: str | None
    outputs: dict[str, str]
    errors: list[str]
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


@dataclass(frozen=True)
class Provisioned:
    """A launched product as `describe` shows it."""

    id: str
    name: str
    status: str
    status_message: str
    product: str
    version: str
    stack_id: str | None
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Catalog:
    """Service Catalog as an end user: `clients(service)` gives boto3 clients of one region."""

    clients: Clients
    #: Seconds between two looks at a record and its stack's events.
    poll_seconds: float = 2.0
    #: How long `wait` follows an operation before giving up (it goes on in AWS).
    timeout: float = 3600.0
    #: Launched products' stacks, by provisioned product id: a terminated product's stack
    #: can no longer be looked up through Service Catalog.
    _stacks: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def _sc(self) -> Any:
        return self.clients("servicecatalog")

    # ---- what can be launched ----------------------------------------------------------

    def product(self, name: str) -> Product:
        """A product the caller may launch, by name or id (prod-...)."""
        try:
            described = self._sc.describe_product(
                **({"Id": name} if name.startswith("prod-") else {"Name": name})
            )
        except ClientError as error:
            if _code(error) not in ("ResourceNotFoundException", "InvalidParametersException"):
                raise
            offered = sorted(p.name for p in self.products())
            listing = ", ".join(repr(p) for p in offered) or "none"
            raise NothingChanged(
                f"no product {name!r} is available to you here (products you may launch: "
                f"{listing}); check the name, the region, and that your user or role is "
                "associated with the portfolio"
            ) from error
        summary = described["ProductViewSummary"]
        return Product(id=str(summary["ProductId"]), name=str(summary["Name"]))

    def products(self) -> list[Product]:
        found: list[Product] = []
        arguments: dict[str, Any] = {}
        while True:
            page = self._sc.search_products(**arguments)
            found += [
                Product(id=str(p["ProductId"]), name=str(p["Name"]))
                for p in page["ProductViewSummaries"]
            ]
            if not page.get("NextPageToken"):
                return found
            arguments["PageToken"] = page["NextPageToken"]

    def versions(self, product: Product) -> list[dict[str, Any]]:
        """The product's active versions, oldest first."""
        listed = self._sc.describe_product(Id=product.id)["ProvisioningArtifacts"]
        return sorted(
            listed, key=lambda v: v.get("CreatedTime") or datetime.min.replace(tzinfo=UTC)
        )

    def version_id(self, product: Product, version: str | None) -> str:
        """`version`'s id; None: the version new launches are meant to get (DEFAULT guidance,
        the newest of those)."""
        versions = self.versions(product)
        if version is None:
            preferred = [v for v in versions if v.get("Guidance", "DEFAULT") == "DEFAULT"]
            if not preferred:
                raise NothingChanged(f"{product.name} offers no version for new launches")
            return str(preferred[-1]["Id"])
        for candidate in versions:
            if version in (candidate["Name"], candidate["Id"]):
                return str(candidate["Id"])
        names = ", ".join(str(v["Name"]) for v in reversed(versions)) or "none"
        raise NothingChanged(f"{product.name} has no version {version!r} (it offers: {names})")

    def path_id(self, product: Product) -> str:
        """The portfolio to launch through: the first that offers the product to the caller."""
        paths = self._sc.list_launch_paths(ProductId=product.id)["LaunchPathSummaries"]
        if not paths:
            raise NothingChanged(
                f"you may not launch {product.name}: no portfolio you are associated with offers it"
            )
        return str(paths[0]["Id"])

    def parameters(self, product: Product, version_id: str, path_id: str) -> dict[str, Any]:
        """The version's parameters by key, as DescribeProvisioningParameters lists them."""
        described = self._sc.describe_provisioning_parameters(
            ProductId=product.id, ProvisioningArtifactId=version_id, PathId=path_id
        )
        return {p["ParameterKey"]: p for p in described["ProvisioningArtifactParameters"]}

    # ---- operations ----------------------------------------------------------------------

    def launch(
        self,
        product_name: str,
        name: str,
        parameters: Mapping[str, str],
        *,
        version: str | None = None,
    ) -> str:
        """Provision `product_name` as `name` (None: the version new launches get); returns
        the record id to `wait` for."""
        product = self.product(product_name)
        version_id = self.version_id(product, version)
        path = self.path_id(product)
        declared = self.parameters(product, version_id, path)
        _check(product, declared, parameters, previous=())
        return self._start(
            "provision_product",
            ProductId=product.id,
            ProvisioningArtifactId=version_id,
            PathId=path,
            ProvisionedProductName=name,
            ProvisionToken=_token(),
            ProvisioningParameters=[{"Key": k, "Value": v} for k, v in parameters.items()],
        )

    def update(
        self,
        provisioned: str,
        parameters: Mapping[str, str],
        *,
        version: str | None = None,
    ) -> str:
        """Update a launched product: to `version` (None: the version it has), with the given
        parameters changed and every other one kept as it is."""
        detail = self.provisioned(provisioned)
        product = self.product(str(detail["ProductId"]))
        version_id = (
            str(detail["ProvisioningArtifactId"])
            if version is None
            else self.version_id(product, version)
        )
        declared = self.parameters(product, version_id, self.path_id(product))
        current = self._stack_parameters(str(detail["Id"]))
        _check(product, declared, parameters, previous=set(current))
        values: list[dict[str, Any]] = []
        for key, spec in declared.items():
            if key in parameters:
                values.append({"Key": key, "Value": parameters[key]})
            elif key in current and spec.get("IsNoEcho"):
                # Hidden values cannot be read back: CloudFormation keeps them.
                values.append({"Key": key, "UsePreviousValue": True})
            elif key in current:
                values.append({"Key": key, "Value": current[key]})
        return self._start(
            "update_provisioned_product",
            ProvisionedProductId=detail["Id"],
            ProductId=product.id,
            ProvisioningArtifactId=version_id,
            ProvisioningParameters=values,
            UpdateToken=_token(),
        )

    def terminate(self, provisioned: str) -> str:
        detail = self.provisioned(provisioned)
        self._stack_id(str(detail["Id"]))  # remembered, to follow the deletion
        return self._start(
            "terminate_provisioned_product",
            ProvisionedProductId=detail["Id"],
            TerminateToken=_token(),
        )

    def describe(self, provisioned: str) -> Provisioned:
        detail = self.provisioned(provisioned)
        attributes = self._attributes(str(detail["Id"])) or {}
        outputs = self._record_outputs(detail.get("LastSuccessfulProvisioningRecordId"))
        return Provisioned(
            id=str(detail["Id"]),
            name=str(detail["Name"]),
            status=str(detail["Status"]),
            status_message=str(detail.get("StatusMessage") or ""),
            product=str(attributes.get("ProductName") or detail["ProductId"]),
            version=str(attributes.get("ProvisioningArtifactName") or ""),
            stack_id=attributes.get("PhysicalId") or None,
            outputs=outputs,
        )

    def _record_outputs(
        self, record_id: str | None, first: dict[str, Any] | None = None
    ) -> dict[str, str]:
        """All of a record's outputs (DescribeRecord pages them), from `first` if that page was
        read already. `describe` reads a launch's outputs this way because
        AWSServiceCatalogEndUserFullAccess, all a customer admin is asked for, allows
        DescribeRecord (for their own launches) but not GetProvisionedProductOutputs."""
        if not record_id:
            return {}
        page = first if first is not None else self._sc.describe_record(Id=record_id)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in page.get("RecordOutputs", [])}
        while page.get("NextPageToken"):
            page = self._sc.describe_record(Id=record_id, PageToken=page["NextPageToken"])
            outputs.update(
                {o["OutputKey"]: o["OutputValue"] for o in page.get("RecordOutputs", [])}
            )
        return outputs

    def provisioned(self, name: str) -> dict[str, Any]:
        """A launched product's detail, by name or id (pp-...)."""
        try:
            described = self._sc.describe_provisioned_product(
                **({"Id": name} if name.startswith("pp-") else {"Name": name})
            )
        except ClientError as error:
            if _code(error) not in ("ResourceNotFoundException", "InvalidParametersException"):
                raise
            raise NothingChanged(
                f"no launched product {name!r} here: give the name chosen at launch or its id "
                "(pp-...), and check the region"
            ) from error
        detail: dict[str, Any] = described["ProvisionedProductDetail"]
        return detail

    def wait(self, record_id: str, on_event: EventSink | None = None) -> Outcome:
        """Follow a record until it is final, passing on its stack's events as they happen."""
        began = time.monotonic()
        events: StackEvents | None = None
        while True:
            described = self._sc.describe_record(Id=record_id)
            detail = described["RecordDetail"]
            done = detail["Status"] in FINAL_RECORD
            if on_event is not None:
                if events is None:
                    stack = self._stack_id(str(detail["ProvisionedProductId"]))
                    if stack:
                        events = StackEvents(
                            self.clients("cloudformation"), stack, _created(detail)
                        )
                if events is not None:
                    try:
                        for event in events.poll():
                            on_event(event)
                    except ClientError as error:
                        if _code(error) not in ACCESS_DENIED:
                            raise
                        on_event(_events_unreadable(error, time.monotonic() - began))
                        on_event = None  # the verdict still comes, without events
            if done:
                break
            if time.monotonic() - began > self.timeout:
                raise StillRunning(
                    f"{detail['RecordType']} of {detail['ProvisionedProductName']} is still "
                    f"{detail['Status']} after {self.timeout:.0f} s; it goes on in AWS: follow "
                    f"it with `valohai-hybrid describe {detail['ProvisionedProductName']}`"
                )
            time.sleep(self.poll_seconds)
        outputs = self._record_outputs(record_id, described)
        return Outcome(
            record_id=record_id,
            record_type=str(detail["RecordType"]),
            status=str(detail["Status"]),
            provisioned_product_id=str(detail["ProvisionedProductId"]),
            provisioned_product_name=str(detail["ProvisionedProductName"]),
            stack_id=outputs.get(STACK_ARN_OUTPUT)
            or self._stack_id(str(detail["ProvisionedProductId"])),
            outputs=outputs,
            errors=[str(e.get("Description", e)) for e in detail.get("RecordErrors", [])],
            seconds=time.monotonic() - began,
        )

    # ---- helpers -------------------------------------------------------------------------

    def _start(self, operation: str, **arguments: Any) -> str:
        try:
            started = getattr(self._sc, operation)(**arguments)
        except ClientError as error:
            if _code(error) in REFUSALS:
                raise NothingChanged(
                    f"Service Catalog refused it: {error.response['Error'].get('Message', '')}"
                ) from error
            raise
        return str(started["RecordDetail"]["RecordId"])

    def _attributes(self, provisioned_id: str) -> dict[str, Any] | None:
        """The provisioned product's search attributes (its stack is PhysicalId)."""
        found = self._sc.search_provisioned_products(
            Filters={"SearchQuery": [f"id:{provisioned_id}"]}
        )["ProvisionedProducts"]
        return next((p for p in found if p["Id"] == provisioned_id), None)

    def _stack_id(self, provisioned_id: str) -> str | None:
        if provisioned_id not in self._stacks:
            attributes = self._attributes(provisioned_id) or {}
            if not attributes.get("PhysicalId"):
                return None
            self._stacks[provisioned_id] = str(attributes["PhysicalId"])
        return self._stacks[provisioned_id]

    def _stack_parameters(self, provisioned_id: str) -> dict[str, str]:
        """The values the launched stack runs with (hidden ones read back as asterisks)."""
        stack = self._stack_id(provisioned_id)
        if stack is None:
            return {}
        described = self.clients("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        return {
            p["ParameterKey"]: str(p.get("ParameterValue", ""))
            for p in described[0].get("Parameters", [])
        }


def _check(
    product: Product,
    declared: Mapping[str, Any],
    given: Mapping[str, str],
    previous: Collection[str],
) -> None:
    """Refuse unknown keys, values outside AllowedValues and missing required parameters."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise NothingChanged(
            f"{product.name} has no parameter {', '.join(unknown)}; its parameters are "
            f"{', '.join(sorted(declared))}"
        )
    for key, value in given.items():
        allowed = declared[key].get("ParameterConstraints", {}).get("AllowedValues") or []
        if allowed and value not in allowed:
            raise NothingChanged(
                f"{key}={value!r} is not allowed: choose one of {', '.join(allowed)}"
            )
    missing = [
        key
        for key, spec in declared.items()
        if "DefaultValue" not in spec and key not in given and key not in previous
    ]
    if missing:
        described = "; ".join(
            f"{key} ({declared[key].get('Description', 'no description')})" for key in missing
        )
        raise NothingChanged(f"{product.name} needs {described}")


def _events_unreadable(error: ClientError, elapsed: float) -> StackEvent:
    """Said in place of the events an identity may not read."""
    return StackEvent(
        timestamp=datetime.now(UTC),
        elapsed=elapsed,
        resource="(stack events)",
        resource_type="-",
        status="NOT_SHOWN",
        reason=f"{_code(error)}: you may not read the stack's events "
        "(cloudformation:DescribeStackEvents on SC-* stacks); waiting for the result without them",
    )


def _created(detail: Mapping[str, Any]) -> datetime:
    created = detail.get("CreatedTime")
    return created if isinstance(created, datetime) else datetime.now(UTC)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _token() -> str:
    return uuid.uuid4().hex
