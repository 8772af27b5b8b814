"""The admin-side Service Catalog objects and the shapes the API returns them in."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from moto.core.utils import utcnow

from localaws.servicecatalog.templates import ProductTemplate

T = TypeVar("T")
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str) -> str:
    """An id shaped like AWS's: the prefix, a dash and 13 lower-case alphanumerics."""
    return f"{prefix}-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(13))


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def page_of(
    items: list[T], token: str | None, size: int | None, default: int = 20
) -> tuple[list[T], str | None]:
    """One page of `items` and the token of the next one (an offset, opaque to the caller)."""
    start = int(token) if token and token.isdigit() else 0
    end = start + (size or default)
    return items[start:end], (str(end) if end < len(items) else None)


@dataclass
class Portfolio:
    account_id: str
    region: str
    display_name: str
    provider_name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: new_id("port"))
    created_time: datetime = field(default_factory=utcnow)
    product_ids: list[str] = field(default_factory=list)
    # (PrincipalARN, PrincipalType)
    principals: list[tuple[str, str]] = field(default_factory=list)
    tag_option_ids: list[str] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return f"arn:aws:catalog:{self.region}:{self.account_id}:portfolio/{self.id}"

    def detail(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "ARN": self.arn,
            "DisplayName": self.display_name,
            "Description": self.description,
            "CreatedTime": self.created_time,
            "ProviderName": self.provider_name,
        }


@dataclass
class ProvisioningArtifact:
    """A product version: its template is copied when the version is created, as AWS does."""

    name: str
    template_url: str
    template_body: str
    description: str | None = None
    type: str = "CLOUD_FORMATION_TEMPLATE"
    active: bool = True
    guidance: str = "DEFAULT"
    id: str = field(default_factory=lambda: new_id("pa"))
    created_time: datetime = field(default_factory=utcnow)
    _parsed: ProductTemplate | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def info(self) -> dict[str, str]:
        return {"TemplateUrl": self.template_url}

    def template(self) -> ProductTemplate:
        """The version's template, parsed once: its body never changes, and every launch and
        DescribeProvisioningParameters reads it."""
        if self._parsed is None:
            self._parsed = ProductTemplate.parse(
                self.template_url, self.template_body, validate=False
            )
        return self._parsed

    def detail(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Description": self.description,
            "Type": self.type,
            "CreatedTime": self.created_time,
            "Active": self.active,
            "Guidance": self.guidance,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Description": self.description,
            "CreatedTime": self.created_time,
            "ProvisioningArtifactMetadata": self.info,
        }

    def end_user_view(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Description": self.description,
            "CreatedTime": self.created_time,
            "Guidance": self.guidance,
        }


@dataclass
class Product:
    account_id: str
    region: str
    name: str
    owner: str
    product_type: str = "CLOUD_FORMATION_TEMPLATE"
    description: str | None = None
    distributor: str | None = None
    support_description: str | None = None
    support_email: str | None = None
    support_url: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: new_id("prod"))
    view_id: str = field(default_factory=lambda: new_id("prodview"))
    created_time: datetime = field(default_factory=utcnow)
    # Insertion order is creation order, as ListProvisioningArtifacts shows them.
    artifacts: dict[str, ProvisioningArtifact] = field(default_factory=dict)
    tag_option_ids: list[str] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return f"arn:aws:catalog:{self.region}:{self.account_id}:product/{self.id}"

    def view_summary(self, has_default_path: bool = False) -> dict[str, Any]:
        return {
            "Id": self.view_id,
            "ProductId": self.id,
            "Name": self.name,
            "Owner": self.owner,
            "ShortDescription": self.description,
            "Type": self.product_type,
            "Distributor": self.distributor,
            "HasDefaultPath": has_default_path,
            "SupportEmail": self.support_email,
            "SupportDescription": self.support_description,
            "SupportUrl": self.support_url,
        }

    def view_detail(self) -> dict[str, Any]:
        return {
            "ProductViewSummary": self.view_summary(),
            "Status": "AVAILABLE",
            "ProductARN": self.arn,
            "CreatedTime": self.created_time,
        }


@dataclass
class Constraint:
    portfolio_id: str
    product_id: str
    type: str
    parameters: str
    owner: str
    description: str | None = None
    id: str = field(default_factory=lambda: new_id("cons"))

    def detail(self) -> dict[str, Any]:
        return {
            "ConstraintId": self.id,
            "Type": self.type,
            "Description": self.description,
            "Owner": self.owner,
            "ProductId": self.product_id,
            "PortfolioId": self.portfolio_id,
        }

    def summary(self) -> dict[str, Any]:
        return {"Type": self.type, "Description": self.description}


@dataclass
class TagOption:
    key: str
    value: str
    owner: str
    active: bool = True
    id: str = field(default_factory=lambda: new_id("tag"))

    def detail(self) -> dict[str, Any]:
        return {
            "Key": self.key,
            "Value": self.value,
            "Active": self.active,
            "Id": self.id,
            "Owner": self.owner,
        }


@dataclass
class PortfolioShare:
    """A share to an account or an organization node (ORGANIZATION, ORGANIZATIONAL_UNIT, ...)."""

    type: str
    principal_id: str
    share_tag_options: bool = False
    share_principals: bool = False

    def detail(self) -> dict[str, Any]:
        return {
            "PrincipalId": self.principal_id,
            "Type": self.type,
            # The recipient account's acceptance is not modelled: shares are usable at once.
            "Accepted": True,
            "ShareTagOptions": self.share_tag_options,
            "SharePrincipals": self.share_principals,
        }
