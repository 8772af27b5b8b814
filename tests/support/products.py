"""Launching the Workers product as a customer does, and reading a setup back as they check it.

The local AWS does not evaluate IAM policies (moto implements neither the policy simulator nor
condition keys such as aws:ResourceTag), so `allowed` and `denied` evaluate the deployed policy
documents for one request as IAM does: an explicit Deny wins, then any Allow whose Action,
Resource and every Condition match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

from tests.support.common import events_of, workers_parameters
from valohai_hybrid.local.standin import ReceivedEvent, StandIn
from valohai_hybrid.packaging import Release

REGION = "eu-north-1"
SETUP_TOKEN = "products-it-setup-token-7Hq2xVb9LmN4pR8s"
VALOHAI_PRINCIPAL = "arn:aws:iam::905675611115:user/valohai-customer-acme"
EXTERNAL_ID = "valohai-acme-9f3e1c"
#: Where a customer who opens maintenance SSH lets it come from (Valohai's address).
MAINTENANCE_SSH = "3.251.38.215/32"
#: A ValohaiMaster in another account, which no role of this account may trust.
FOREIGN_MASTER = "arn:aws:iam::999999999999:role/ValohaiMaster"
KEY_PAIR = "valohai-queue"
STACK_TIMEOUT = 120.0


def parameter_list(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def outputs_of(description: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}


@dataclass
class Aws:
    """Clients for the products' region of the local AWS."""

    local: LocalAwsHandle

    def __call__(self, service: str) -> Any:
        return self.local.client(service, REGION)

    def wait(self, stack: str, timeout: float = STACK_TIMEOUT) -> dict[str, Any]:
        description: dict[str, Any] = self.local.wait_for_stack(stack, timeout, REGION)
        return description


@dataclass
class Setup:
    """A launched Workers product (main.yml): what the customer passed and what it made."""

    name: str
    stack_id: str
    parameters: dict[str, str]
    outputs: dict[str, str]

    def events(self, standin: StandIn, event_type: str | None = None) -> list[ReceivedEvent]:
        """What the stand-in accepted (signature verified) for this stack, oldest first."""
        return events_of(standin, self.stack_id, event_type)


@dataclass
class Products:
    """Launch, update and delete Workers stacks the way a customer does, with CloudFormation."""

    aws: Aws
    release: Release
    standin: StandIn
    master_role_arn: str
    launched: list[str] = field(default_factory=list)

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

    def launch(self, name: str | None = None, **parameters: str) -> str:
        """CreateStack of the release's main.yml; returns the stack id (not waited for)."""
        stack_id: str = self.aws("cloudformation").create_stack(
            StackName=name or unique("valohai-setup"),
            TemplateURL=self.release.workers_template_url,
            Parameters=parameter_list(parameters),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )["StackId"]
        self.launched.append(stack_id)
        return stack_id

    def created(self, stack_id: str, parameters: dict[str, str]) -> Setup:
        description = self.aws.wait(stack_id)
        assert description["StackStatus"] == "CREATE_COMPLETE", self.failure(stack_id)
        return Setup(description["StackName"], stack_id, parameters, outputs_of(description))

    def deploy(self, name: str | None = None, **overrides: str | None) -> Setup:
        parameters = self.parameters(**overrides)
        return self.created(self.launch(name, **parameters), parameters)

    def update(self, setup: Setup, **changes: str) -> Setup:
        """UpdateStack with some parameters changed, every other one as before."""
        parameters = {**setup.parameters, **changes}
        self.aws("cloudformation").update_stack(
            StackName=setup.stack_id,
            TemplateURL=self.release.workers_template_url,
            Parameters=parameter_list(parameters),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        description = self.aws.wait(setup.stack_id)
        assert description["StackStatus"] == "UPDATE_COMPLETE", self.failure(setup.stack_id)
        return Setup(setup.name, setup.stack_id, parameters, outputs_of(description))

    def delete(self, setup: Setup) -> None:
        self.aws("cloudformation").delete_stack(StackName=setup.stack_id)
        status = self.aws.wait(setup.stack_id)["StackStatus"]
        assert status == "DELETE_COMPLETE", self.failure(setup.stack_id)

    def failure(self, stack_id: str) -> str:
        """The failed resources' reasons, for an assertion message."""
        events = self.aws("cloudformation").describe_stack_events(StackName=stack_id)
        return "; ".join(
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
            for e in events["StackEvents"]
            if e["ResourceStatus"].endswith("FAILED")
        )


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
    """The tags the templates set; not the aws:cloudformation:* ones CloudFormation adds."""
    return {t["Key"]: t["Value"] for t in tags or [] if not t["Key"].startswith("aws:")}


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
