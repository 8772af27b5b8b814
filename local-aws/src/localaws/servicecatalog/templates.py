"""Product templates: read from the local S3, described and checked as Service Catalog does.

Service Catalog copies an artifact's template when the artifact is created, answers
DescribeProvisioningParameters from it, and refuses a launch whose parameters CloudFormation
would refuse. All of that happens here, before any stack exists.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cfnlint.decode

from localaws import s3urls

from .exceptions import InvalidParametersException

_IAM_TYPES = frozenset(
    {
        "AWS::IAM::AccessKey",
        "AWS::IAM::Group",
        "AWS::IAM::GroupPolicy",
        "AWS::IAM::InstanceProfile",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::IAM::RolePolicy",
        "AWS::IAM::User",
        "AWS::IAM::UserPolicy",
        "AWS::IAM::UserToGroupAddition",
    }
)
_IAM_NAME_PROPERTIES = frozenset(
    {"GroupName", "InstanceProfileName", "ManagedPolicyName", "RoleName", "UserName"}
)


def read_template(url: str, account_id: str) -> str:
    """The template stored at `url` in the local S3, in any URL form AWS or the server uses."""
    try:
        return s3urls.read(url, account_id)
    except s3urls.TemplateUrlError as err:
        raise InvalidParametersException(
            f"LoadTemplateFromURL: {err}; upload the template first, and give its URL as "
            "https://<bucket>.s3.amazonaws.com/<key> or http://localhost:<port>/<bucket>/<key>"
        ) from err


def _as_text(value: Any) -> str:
    """A template value as CloudFormation passes it on (YAML booleans become true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_as_text(item) for item in value)
    return str(value)


@dataclass(frozen=True)
class ParameterSpec:
    """One declared template parameter, with its constraints kept as the template spells them."""

    key: str
    type: str
    default: str | None
    description: str | None
    no_echo: bool
    allowed_values: tuple[str, ...]
    allowed_pattern: str | None
    constraint_description: str | None
    min_length: str | None
    max_length: str | None
    min_value: str | None
    max_value: str | None

    @classmethod
    def from_declaration(cls, key: str, decl: Mapping[str, Any]) -> ParameterSpec:
        def text(name: str) -> str | None:
            return _as_text(decl[name]) if name in decl else None

        return cls(
            key=key,
            type=_as_text(decl.get("Type", "String")),
            default=text("Default"),
            description=text("Description"),
            no_echo=_as_text(decl.get("NoEcho", "false")).lower() == "true",
            allowed_values=tuple(_as_text(v) for v in decl.get("AllowedValues") or ()),
            allowed_pattern=text("AllowedPattern"),
            constraint_description=text("ConstraintDescription"),
            min_length=text("MinLength"),
            max_length=text("MaxLength"),
            min_value=text("MinValue"),
            max_value=text("MaxValue"),
        )

    def describe(self) -> dict[str, Any]:
        """This parameter as a ProvisioningArtifactParameter."""
        constraints: dict[str, Any] = {"AllowedValues": list(self.allowed_values)}
        for name, value in (
            ("AllowedPattern", self.allowed_pattern),
            ("ConstraintDescription", self.constraint_description),
            ("MinLength", self.min_length),
            ("MaxLength", self.max_length),
            ("MinValue", self.min_value),
            ("MaxValue", self.max_value),
        ):
            if value is not None:
                constraints[name] = value
        described: dict[str, Any] = {
            "ParameterKey": self.key,
            "ParameterType": self.type,
            "IsNoEcho": self.no_echo,
            "ParameterConstraints": constraints,
        }
        if self.default is not None:
            described["DefaultValue"] = self.default
        if self.description is not None:
            described["Description"] = self.description
        return described

    def check(self, value: str) -> None:
        """Raise InvalidParametersException if CloudFormation would refuse `value`."""
        is_list = self.type.startswith("List<") or self.type == "CommaDelimitedList"
        items = [item.strip() for item in value.split(",")] if is_list else [value]
        for item in items:
            self._check_item(item)

    def _check_item(self, item: str) -> None:
        shown = "" if self.no_echo else f" (got {item!r})"
        if self.allowed_values and item not in self.allowed_values:
            raise InvalidParametersException(
                f"Parameter '{self.key}' must be one of AllowedValues "
                f"{list(self.allowed_values)}{shown}"
            )
        problem = next(self._constraint_problems(item), None)
        if problem is not None:
            reason = self.constraint_description or problem
            raise InvalidParametersException(
                f"Parameter '{self.key}' failed to satisfy constraint: {reason}{shown}"
            )

    def _constraint_problems(self, item: str) -> Iterator[str]:
        if self.allowed_pattern is not None and not re.fullmatch(self.allowed_pattern, item):
            yield f"must match pattern {self.allowed_pattern}"
        if self.min_length is not None and len(item) < int(self.min_length):
            yield f"must contain at least {self.min_length} characters"
        if self.max_length is not None and len(item) > int(self.max_length):
            yield f"must contain at most {self.max_length} characters"
        if self.type in ("Number", "List<Number>"):
            try:
                number = float(item)
            except ValueError:
                yield "must be a number"
                return
            if math.isnan(number):
                yield "must be a number"
            if self.min_value is not None and number < float(self.min_value):
                yield f"must be a number not less than {self.min_value}"
            if self.max_value is not None and number > float(self.max_value):
                yield f"must be a number not greater than {self.max_value}"


@dataclass(frozen=True)
class ProductTemplate:
    """A product template's body and the parts Service Catalog reads from it."""

    url: str
    body: str
    document: Mapping[str, Any]

    @classmethod
    def parse(cls, url: str, body: str, *, validate: bool = True) -> ProductTemplate:
        """Parse `body`; with `validate`, refuse what is not a CloudFormation template."""
        document, problems = cfnlint.decode.decode_str(body)
        if validate:
            if problems or not isinstance(document, dict):
                detail = problems[0].message if problems else "not a mapping"
                raise InvalidParametersException(f"Template {url} cannot be parsed: {detail}")
            if not isinstance(document.get("Resources"), dict) or not document["Resources"]:
                raise InvalidParametersException(
                    f"Template {url} is not a CloudFormation template: it has no Resources"
                )
        return cls(url=url, body=body, document=document if isinstance(document, dict) else {})

    @property
    def parameters(self) -> list[ParameterSpec]:
        declared = self.document.get("Parameters") or {}
        return [ParameterSpec.from_declaration(k, v or {}) for k, v in declared.items()]

    @property
    def outputs(self) -> list[dict[str, str]]:
        """The template's outputs as ProvisioningArtifactOutputs (key and description)."""
        described = []
        for key, output in (self.document.get("Outputs") or {}).items():
            entry = {"Key": str(key)}
            if isinstance(output, dict) and "Description" in output:
                entry["Description"] = _as_text(output["Description"])
            described.append(entry)
        return described

    def check_parameters(self, supplied: Mapping[str, str]) -> None:
        """Refuse values CreateStack would refuse, before a stack exists."""
        specs = {spec.key: spec for spec in self.parameters}
        undeclared = sorted(set(supplied) - set(specs))
        if undeclared:
            raise InvalidParametersException(
                f"Parameters: [{', '.join(undeclared)}] do not exist in the template; "
                f"it declares [{', '.join(specs)}]"
            )
        missing = [
            key for key, spec in specs.items() if spec.default is None and key not in supplied
        ]
        if missing:
            raise InvalidParametersException(
                f"Parameters: [{', '.join(missing)}] must have values; "
                "pass each as {Key, Value} in ProvisioningParameters"
            )
        for key, value in supplied.items():
            specs[key].check(value)

    def capabilities(self) -> tuple[list[str], list[str]]:
        """The capabilities launching this template needs, and the resource types needing them."""
        needing: set[str] = set()
        named = False
        for resource in (self.document.get("Resources") or {}).values():
            if not isinstance(resource, dict) or resource.get("Type") not in _IAM_TYPES:
                continue
            needing.add(str(resource["Type"]))
            named = named or bool(_IAM_NAME_PROPERTIES & set(resource.get("Properties") or {}))
        capabilities = []
        if needing:
            capabilities.append("CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM")
        if "Transform" in self.document:
            capabilities.append("CAPABILITY_AUTO_EXPAND")
        return capabilities, sorted(needing)

    def usage_instructions(self, launch_role_arn: str | None) -> list[dict[str, str]]:
        """DescribeProvisioningParameters' UsageInstructions, in the order AWS lists them.

        The template's Metadata (AWS::CloudFormation::Interface included) travels here, as a
        compact JSON string of type `metadata`: the console groups and labels parameters from it.
        """
        doc = self.document
        instructions = [
            {"Type": "rules", "Value": _compact_json(doc.get("Rules") or {})},
            {
                "Type": "version",
                "Value": _as_text(doc.get("AWSTemplateFormatVersion", "2010-09-09")),
            },
        ]
        capabilities, needing = self.capabilities()
        if needing:
            reason = f"The following resource(s) require capabilities: [{', '.join(needing)}]"
            instructions.append({"Type": "capabilitiesReason", "Value": reason})
        if "Description" in doc:
            instructions.append({"Type": "description", "Value": _as_text(doc["Description"])})
        if "Metadata" in doc:
            instructions.append({"Type": "metadata", "Value": _compact_json(doc["Metadata"])})
        if launch_role_arn:
            instructions.append({"Type": "launchAsRole", "Value": launch_role_arn})
        instructions.append({"Type": "tagUpdateOnProvisionedProduct", "Value": "NOT_ALLOWED"})
        instructions.extend({"Type": "capability", "Value": c} for c in capabilities)
        return instructions


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
