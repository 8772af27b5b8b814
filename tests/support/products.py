"""Launching the products as a customer admin does, through the Service Catalog portfolio the
platform publishes, and reading a setup back as they check it.

The local AWS does not evaluate IAM policies (moto implements neither the policy simulator nor
condition keys such as aws:ResourceTag), so `allowed` and `denied` evaluate the deployed policy
documents for one request as IAM does: an explicit Deny wins, then any Allow whose Action,
Resource and every Condition match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

from tests.support.common import events_of, workers_parameters
from valohai_hybrid.catalog import Catalog, CatalogError, Outcome
from valohai_hybrid.local.platform import Customer
from valohai_hybrid.local.standin import ReceivedEvent, StandIn
from valohai_hybrid.products import WORKERS, Product

# A region no other test package uses: the platform's names are fixed per account and region.
REGION = "eu-north-1"
SETUP_TOKEN = "products-it-setup-token-7Hq2xVb9LmN4pR8s"
VALOHAI_PRINCIPAL = "arn:aws:iam::905675611115:user/valohai-customer-acme"
EXTERNAL_ID = "valohai-acme-9f3e1c"
#: Where a customer who opens maintenance SSH lets it come from (Valohai's address).
MAINTENANCE_SSH = "3.251.38.215/32"
#: A ValohaiMaster in another account, which no role of this account may trust.
FOREIGN_MASTER = "arn:aws:iam::999999999999:role/ValohaiMaster"
KEY_PAIR = "valohai-queue"
#: The tag the platform's portfolio puts on every launch (a TagOption with a single value).
LAUNCHED_FROM = ("valohai-hybrid:launched-from", "service-catalog")
STACK_TIMEOUT = 120.0


@dataclass
class Aws:
    """Clients for the products' region of the local AWS, as the account itself (what a test
    reads the launched resources back with)."""

    local: LocalAwsHandle

    def __call__(self, service: str) -> Any:
        return self.local.client(service, REGION)

    def wait(self, stack: str, timeout: float = STACK_TIMEOUT) -> dict[str, Any]:
        description: dict[str, Any] = self.local.wait_for_stack(stack, timeout, REGION)
        return description


@dataclass
class Setup:
    """A launched product: what the customer passed, the provisioned product, and the stack
    Service Catalog made for it (`name` is that stack's name, SC-<account>-pp-...)."""

    launch_name: str
    provisioned_product_id: str
    name: str
    stack_id: str
    parameters: dict[str, str]
    outputs: dict[str, str]

    def events(self, standin: StandIn, event_type: str | None = None) -> list[ReceivedEvent]:
        """What the stand-in accepted (signature verified) for this stack, oldest first."""
        return events_of(standin, self.stack_id, event_type)


@dataclass
class Products:
    """Launch, update and terminate the products the way a customer admin does: through
    Service Catalog, with the admin's own key (`valohai_hybrid.catalog`, as `valohai-hybrid
    launch/update/terminate` call it)."""

    aws: Aws
    admin: Customer
    standin: StandIn
    #: The IAM launch's ValohaiMaster, which Workers launches name (none to launch IAM itself).
    master_role_arn: str = ""
    #: Provisioned product ids, oldest first; the package terminates those still standing.
    launched: list[str] = field(default_factory=list)
    catalog: Catalog = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.catalog = self.admin.catalog(STACK_TIMEOUT)

    def parameters(self, **overrides: str | None) -> dict[str, str]:
        """What a customer types in, each launch with its own queue address, names and data."""
        values: dict[str, str | None] = {
            **workers_parameters(
                master_role_arn=self.master_role_arn,
                valohai_url=self.standin.url,
                setup_token=SETUP_TOKEN,
                key_pair=KEY_PAIR,
                suffix=unique("it"),
            ),
            **overrides,
        }
        return {k: v for k, v in values.items() if v is not None}

    def launch(
        self, parameters: Mapping[str, str], name: str | None = None, product: Product = WORKERS
    ) -> str:
        """ProvisionProduct of the product's version for new launches; returns the record id
        (not waited for)."""
        record_id = self.catalog.launch(product.name, name or unique("valohai-setup"), parameters)
        self.launched.append(self.record(record_id)["ProvisionedProductId"])
        return record_id

    def provision(self, product: Product, name: str, parameters: Mapping[str, str]) -> Any:
        """ProvisionProduct exactly as given, without the console command's own checks: what
        Service Catalog itself answers (a ClientError when it refuses)."""
        found = self.catalog.product(product.name)
        return self.admin.client("servicecatalog").provision_product(
            ProductId=found.id,
            ProvisioningArtifactId=self.catalog.version_id(found, None),
            PathId=self.catalog.path_id(found),
            ProvisionedProductName=name,
            ProvisionToken=unique("token"),
            ProvisioningParameters=[{"Key": k, "Value": v} for k, v in parameters.items()],
        )

    def request_update(self, setup: Setup, parameters: Mapping[str, str]) -> Any:
        """UpdateProvisionedProduct with these values, as given (see `provision`)."""
        return self.admin.client("servicecatalog").update_provisioned_product(
            ProvisionedProductId=setup.provisioned_product_id,
            ProvisioningParameters=[{"Key": k, "Value": v} for k, v in parameters.items()],
            UpdateToken=unique("token"),
        )

    def record(self, record_id: str) -> dict[str, Any]:
        detail: dict[str, Any] = self.admin.client("servicecatalog").describe_record(Id=record_id)[
            "RecordDetail"
        ]
        return detail

    def wait(self, record_id: str) -> Outcome:
        return self.catalog.wait(record_id)

    def created(self, record_id: str, parameters: dict[str, str]) -> Setup:
        outcome = self.wait(record_id)
        assert outcome.succeeded, self.failure(outcome)
        return self.setup_of(outcome, parameters, "CREATE_COMPLETE")

    def deploy(self, name: str | None = None, **overrides: str | None) -> Setup:
        parameters = self.parameters(**overrides)
        return self.created(self.launch(parameters, name), parameters)

    def update(self, setup: Setup, **changes: str) -> Setup:
        """UpdateProvisionedProduct with some parameters changed, every other one as before."""
        outcome = self.wait(self.catalog.update(setup.provisioned_product_id, changes))
        assert outcome.succeeded, self.failure(outcome)
        return self.setup_of(outcome, {**setup.parameters, **changes}, "UPDATE_COMPLETE")

    def delete(self, setup: Setup) -> None:
        """TerminateProvisionedProduct; its stack is deleted."""
        outcome = self.wait(self.catalog.terminate(setup.provisioned_product_id))
        assert outcome.succeeded, self.failure(outcome)
        status = self.aws.wait(setup.stack_id)["StackStatus"]
        assert status == "DELETE_COMPLETE", self.failure(outcome)

    def setup_of(self, outcome: Outcome, parameters: dict[str, str], status: str) -> Setup:
        """The launch as the stack Service Catalog made for it shows it."""
        assert outcome.stack_id, f"record {outcome.record_id} names no stack"
        description = self.aws.wait(outcome.stack_id)
        assert description["StackStatus"] == status, self.failure(outcome)
        return Setup(
            outcome.provisioned_product_name,
            outcome.provisioned_product_id,
            description["StackName"],
            outcome.stack_id,
            parameters,
            {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])},
        )

    def failure(self, outcome: Outcome) -> str:
        """The record's errors and the failed resources' reasons, for an assertion message."""
        reasons = list(outcome.errors)
        if outcome.stack_id:
            events = self.aws("cloudformation").describe_stack_events(StackName=outcome.stack_id)
            reasons += [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                for e in events["StackEvents"]
                if e["ResourceStatus"].endswith("FAILED")
            ]
        return f"{outcome.record_type} {outcome.status}: " + "; ".join(reasons)

    def terminate_standing(self) -> None:
        """Terminate every launch of this launcher still standing, side by side."""
        records = []
        for provisioned in reversed(self.launched):
            with suppress(CatalogError):  # terminated already
                records.append(self.catalog.terminate(provisioned))
        for record_id in records:
            outcome = self.wait(record_id)
            assert outcome.succeeded, self.failure(outcome)


#: The condition operators of the policies evaluated here, each comparing one value.
_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda actual, expected: actual == expected,
    "Bool": lambda actual, expected: actual.lower() == expected.lower(),
    "NumericLessThan": lambda actual, expected: float(actual) < float(expected),
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(documents: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    for document in documents:
        yield from as_list(document["Statement"])


def _matches(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    if not any(fnmatchcase(action.lower(), a.lower()) for a in as_list(statement["Action"])):
        return False
    if not any(fnmatchcase(resource, r) for r in as_list(statement.get("Resource", "*"))):
        return False
    for operator, conditions in statement.get("Condition", {}).items():
        compare = _OPERATORS[operator]  # KeyError: an operator this evaluator does not know
        for key, expected in conditions.items():
            actual = context.get(key)
            if actual is None or not any(compare(actual, str(e)) for e in as_list(expected)):
                return False
    return True


def allowed(
    documents: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    """Whether the policies allow `action` on `resource` for a request with `context` keys."""
    found = list(statements(documents))
    given = context or {}
    if any(s["Effect"] == "Deny" and _matches(s, action, resource, given) for s in found):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, action, resource, given) for s in found)


def denied(
    documents: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    """Whether an explicit Deny of the policies applies (what a bucket policy adds)."""
    return any(
        s["Effect"] == "Deny" and _matches(s, action, resource, context or {})
        for s in statements(documents)
    )


def granted_actions(documents: Iterable[Mapping[str, Any]]) -> set[str]:
    return {
        a for s in statements(documents) if s["Effect"] == "Allow" for a in as_list(s["Action"])
    }


def role_policies(iam: Any, role: str) -> list[dict[str, Any]]:
    """The inline policy documents of a role, as IAM returns them."""
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    return [iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in names]


def resource_tags(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """The tags the templates set; not those every launch gets: the aws:cloudformation:* and
    aws:servicecatalog:* ones, and the portfolio's TagOption (`LAUNCHED_FROM`)."""
    return {
        t["Key"]: t["Value"]
        for t in tags or []
        if not t["Key"].startswith("aws:") and t["Key"] != LAUNCHED_FROM[0]
    }


def tag_context(tags: Mapping[str, str]) -> dict[str, str]:
    """The aws:ResourceTag/* condition keys of a request on a resource with these tags."""
    return {f"aws:ResourceTag/{key}": value for key, value in tags.items()}


def stack_resources(cloudformation: Any, stack: str) -> list[dict[str, Any]]:
    """Every resource of a stack and of its nested stacks, nested ones after their parent."""
    found = []
    for resource in cloudformation.describe_stack_resources(StackName=stack)["StackResources"]:
        found.append(resource)
        if resource["ResourceType"] == "AWS::CloudFormation::Stack":
            found += stack_resources(cloudformation, resource["PhysicalResourceId"])
    return found


def secret_exists(aws: Aws, secret_id: str) -> bool:
    try:
        aws("secretsmanager").describe_secret(SecretId=secret_id)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return True
