"""The administrator's half: portfolios, products and artifacts, associations, constraints,
TagOptions and shares."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from localaws.servicecatalog.exceptions import (
    DuplicateResourceException,
    InvalidParametersException,
    InvalidStateException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from localaws.servicecatalog.principals import check_principal, role_arn_for_name, role_exists
from localaws.servicecatalog.templates import ProductTemplate, read_template

from .entities import (
    Constraint,
    Portfolio,
    PortfolioShare,
    Product,
    ProvisioningArtifact,
    TagOption,
    new_id,
)
from .state import CatalogState

_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/.+")
_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_ACCOUNT_ID = re.compile(r"\d{12}")
_PRODUCT_TYPE = "CLOUD_FORMATION_TEMPLATE"


def _launch_role_reference(raw: str) -> tuple[str, str]:
    """Check a LAUNCH constraint's Parameters JSON; return ("RoleArn"|"LocalRoleName", value)."""
    usage = (
        'LAUNCH Parameters are {"RoleArn": "arn:aws:iam::<account>:role/<name>"} '
        'or {"LocalRoleName": "<name>"}'
    )
    try:
        params = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InvalidParametersException(f"Parameters is not valid JSON ({err}); {usage}") from err
    if not isinstance(params, dict):
        raise InvalidParametersException(f"Parameters must be a JSON object; {usage}")
    unknown = sorted(set(params) - {"RoleArn", "LocalRoleName"})
    if unknown:
        raise InvalidParametersException(f"Unknown LAUNCH parameters {unknown}; {usage}")
    if len(params) != 1:
        raise InvalidParametersException(f"Give exactly one of RoleArn and LocalRoleName; {usage}")
    (kind, value), *_ = params.items()
    pattern = _ROLE_ARN if kind == "RoleArn" else _ROLE_NAME
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidParametersException(f"{kind} {value!r} is not valid; {usage}")
    return kind, value


class AdminMixin(CatalogState):
    """The admin operations, over `CatalogState`."""

    # ---- portfolios ----------------------------------------------------------------------

    def create_portfolio(
        self,
        display_name: str,
        provider_name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        idempotency_token: str | None = None,
    ) -> Portfolio:
        def create() -> Portfolio:
            portfolio = Portfolio(
                account_id=self.account_id,
                region=self.region_name,
                display_name=display_name,
                provider_name=provider_name,
                description=description,
                tags=dict(tags or {}),
            )
            self.portfolios[portfolio.id] = portfolio
            return portfolio

        return self._once("CreatePortfolio", idempotency_token, create)

    def update_portfolio(
        self,
        portfolio_id: str,
        display_name: str | None = None,
        description: str | None = None,
        provider_name: str | None = None,
        add_tags: dict[str, str] | None = None,
        remove_tags: Sequence[str] = (),
    ) -> Portfolio:
        portfolio = self.get_portfolio(portfolio_id)
        if display_name is not None:
            portfolio.display_name = display_name
        if description is not None:
            portfolio.description = description
        if provider_name is not None:
            portfolio.provider_name = provider_name
        for key in remove_tags:
            portfolio.tags.pop(key, None)
        portfolio.tags.update(add_tags or {})
        return portfolio

    def delete_portfolio(self, portfolio_id: str) -> None:
        portfolio = self.get_portfolio(portfolio_id)
        in_use = {
            "products": portfolio.product_ids,
            "principals": [arn for arn, _ in portfolio.principals],
            "constraints": [
                c.id for c in self.constraints.values() if c.portfolio_id == portfolio_id
            ],
            "shares": [s.principal_id for s in self.shares.get(portfolio_id, [])],
            "TagOptions": portfolio.tag_option_ids,
        }
        blocking = {what: ids for what, ids in in_use.items() if ids}
        if blocking:
            raise ResourceInUseException(
                f"Portfolio {portfolio_id} still has {blocking}: remove them before deleting it"
            )
        del self.portfolios[portfolio_id]

    def portfolios_of(self, product_id: str) -> list[Portfolio]:
        return [p for p in self.portfolios.values() if product_id in p.product_ids]

    # ---- products and provisioning artifacts -----------------------------------------------

    def _build_artifact(self, properties: Mapping[str, Any]) -> ProvisioningArtifact:
        info = properties.get("Info") or {}
        if "ImportFromPhysicalId" in info:
            raise InvalidParametersException(
                "Info.ImportFromPhysicalId is not supported by the local Service Catalog: "
                "upload the template to S3 and give Info.LoadTemplateFromURL"
            )
        url = info.get("LoadTemplateFromURL")
        if not url:
            raise InvalidParametersException(
                "Provisioning artifact Info needs LoadTemplateFromURL (the template's S3 URL)"
            )
        artifact_type = properties.get("Type") or _PRODUCT_TYPE
        if artifact_type != _PRODUCT_TYPE:
            raise InvalidParametersException(
                f"Provisioning artifact Type {artifact_type} is not supported by the local "
                f"Service Catalog; use {_PRODUCT_TYPE}"
            )
        name = properties.get("Name") or ""
        if " " in name:
            raise InvalidParametersException(
                f"Provisioning artifact Name {name!r} contains spaces, which AWS refuses "
                "(use e.g. v1.2.0)"
            )
        body = read_template(url, self.account_id)
        ProductTemplate.parse(url, body, validate=not properties.get("DisableTemplateValidation"))
        return ProvisioningArtifact(
            name=name,
            template_url=url,
            template_body=body,
            description=properties.get("Description"),
        )

    def create_product(
        self,
        name: str,
        owner: str,
        product_type: str,
        artifact_properties: Mapping[str, Any] | None,
        description: str | None = None,
        distributor: str | None = None,
        support_description: str | None = None,
        support_email: str | None = None,
        support_url: str | None = None,
        tags: dict[str, str] | None = None,
        idempotency_token: str | None = None,
    ) -> tuple[Product, ProvisioningArtifact]:
        def create() -> tuple[Product, ProvisioningArtifact]:
            if product_type != _PRODUCT_TYPE:
                raise InvalidParametersException(
                    f"ProductType {product_type} is not supported by the local Service Catalog; "
                    f"use {_PRODUCT_TYPE}"
                )
            if not artifact_properties:
                raise InvalidParametersException(
                    "ProvisioningArtifactParameters is required: the product's first version "
                    "with Info.LoadTemplateFromURL"
                )
            artifact = self._build_artifact(artifact_properties)
            product = Product(
                account_id=self.account_id,
                region=self.region_name,
                name=name,
                owner=owner,
                product_type=product_type,
                description=description,
                distributor=distributor,
                support_description=support_description,
                support_email=support_email,
                support_url=support_url,
                tags=dict(tags or {}),
            )
            product.artifacts[artifact.id] = artifact
            self.products[product.id] = product
            return product, artifact

        return self._once("CreateProduct", idempotency_token, create)

    def update_product(
        self,
        product_id: str,
        changes: Mapping[str, str | None],
        add_tags: dict[str, str] | None = None,
        remove_tags: Sequence[str] = (),
    ) -> Product:
        """Apply `changes` (attribute name -> new value; None leaves it) and the tag changes."""
        product = self.get_product(product_id)
        for attribute, value in changes.items():
            if value is not None:
                setattr(product, attribute, value)
        for key in remove_tags:
            product.tags.pop(key, None)
        product.tags.update(add_tags or {})
        return product

    def delete_product(self, product_id: str) -> None:
        product = self.get_product(product_id)
        portfolios = [p.id for p in self.portfolios_of(product_id)]
        if portfolios:
            raise ResourceInUseException(
                f"Product {product_id} is in portfolios {portfolios}: disassociate it first"
            )
        if product.tag_option_ids:
            raise ResourceInUseException(
                f"Product {product_id} has TagOptions {product.tag_option_ids}: "
                "disassociate them first"
            )
        del self.products[product_id]

    def search_products_as_admin(
        self, portfolio_id: str | None, filters: Mapping[str, Sequence[str]] | None
    ) -> list[Product]:
        products = list(self.products.values())
        if portfolio_id:
            members = self.get_portfolio(portfolio_id).product_ids
            products = [p for p in products if p.id in members]
        return [p for p in products if _product_matches(p, filters or {})]

    def create_provisioning_artifact(
        self, product_id: str, properties: Mapping[str, Any], idempotency_token: str | None = None
    ) -> ProvisioningArtifact:
        product = self.get_product(product_id)

        def create() -> ProvisioningArtifact:
            artifact = self._build_artifact(properties)
            product.artifacts[artifact.id] = artifact
            return artifact

        return self._once(f"CreateProvisioningArtifact/{product_id}", idempotency_token, create)

    def update_provisioning_artifact(
        self,
        product_id: str,
        artifact_id: str,
        name: str | None = None,
        description: str | None = None,
        active: bool | None = None,
        guidance: str | None = None,
    ) -> ProvisioningArtifact:
        artifact = self.get_artifact(self.get_product(product_id), artifact_id)
        if name is not None:
            artifact.name = name
        if description is not None:
            artifact.description = description
        if active is not None:
            artifact.active = active
        if guidance is not None:
            if guidance not in ("DEFAULT", "DEPRECATED"):
                raise InvalidParametersException(
                    f"Guidance {guidance!r} is not valid: use DEFAULT or DEPRECATED"
                )
            artifact.guidance = guidance
        return artifact

    def delete_provisioning_artifact(self, product_id: str, artifact_id: str) -> None:
        product = self.get_product(product_id)
        self.get_artifact(product, artifact_id)
        if len(product.artifacts) == 1:
            raise InvalidParametersException(
                f"{artifact_id} is the last provisioning artifact of {product_id}: a product "
                "keeps at least one; add another first or delete the product"
            )
        del product.artifacts[artifact_id]

    # ---- associations --------------------------------------------------------------------

    def associate_product_with_portfolio(self, product_id: str, portfolio_id: str) -> None:
        self.get_product(product_id)
        portfolio = self.get_portfolio(portfolio_id)
        if product_id not in portfolio.product_ids:
            portfolio.product_ids.append(product_id)

    def disassociate_product_from_portfolio(self, product_id: str, portfolio_id: str) -> None:
        portfolio = self.get_portfolio(portfolio_id)
        if product_id not in portfolio.product_ids:
            raise ResourceNotFoundException(
                f"Product {product_id} is not associated with portfolio {portfolio_id}"
            )
        constraints = [
            c.id
            for c in self.constraints.values()
            if c.portfolio_id == portfolio_id and c.product_id == product_id
        ]
        if constraints:
            raise ResourceInUseException(
                f"Product {product_id} has constraints {constraints} in portfolio "
                f"{portfolio_id}: delete them first"
            )
        portfolio.product_ids.remove(product_id)

    def associate_principal_with_portfolio(
        self, portfolio_id: str, principal_arn: str, principal_type: str
    ) -> None:
        portfolio = self.get_portfolio(portfolio_id)
        check_principal(principal_arn, principal_type)
        if (principal_arn, principal_type) not in portfolio.principals:
            portfolio.principals.append((principal_arn, principal_type))

    def disassociate_principal_from_portfolio(
        self, portfolio_id: str, principal_arn: str, principal_type: str | None = None
    ) -> None:
        portfolio = self.get_portfolio(portfolio_id)
        matching = [
            entry
            for entry in portfolio.principals
            if entry[0] == principal_arn and principal_type in (None, entry[1])
        ]
        if not matching:
            raise ResourceNotFoundException(
                f"Principal {principal_arn} is not associated with portfolio {portfolio_id}"
            )
        for entry in matching:
            portfolio.principals.remove(entry)

    # ---- constraints ---------------------------------------------------------------------

    def create_constraint(
        self,
        portfolio_id: str,
        product_id: str,
        constraint_type: str,
        parameters: str,
        description: str | None = None,
        idempotency_token: str | None = None,
    ) -> Constraint:
        def create() -> Constraint:
            portfolio = self.get_portfolio(portfolio_id)
            self.get_product(product_id)
            if product_id not in portfolio.product_ids:
                raise ResourceNotFoundException(
                    f"Product {product_id} is not in portfolio {portfolio_id}: associate it "
                    "first (in a template, make the constraint DependsOn the association)"
                )
            if constraint_type != "LAUNCH":
                raise InvalidParametersException(
                    f"Constraint type {constraint_type} is not supported by the local Service "
                    "Catalog; it supports LAUNCH"
                )
            _launch_role_reference(parameters)
            existing = self.launch_constraint(portfolio_id, product_id)
            if existing is not None:
                raise DuplicateResourceException(
                    f"Product {product_id} already has LAUNCH constraint {existing.id} in "
                    f"portfolio {portfolio_id}: update or delete that one"
                )
            constraint = Constraint(
                portfolio_id=portfolio_id,
                product_id=product_id,
                type=constraint_type,
                parameters=parameters,
                owner=self.account_id,
                description=description,
            )
            self.constraints[constraint.id] = constraint
            return constraint

        return self._once("CreateConstraint", idempotency_token, create)

    def update_constraint(
        self, constraint_id: str, description: str | None = None, parameters: str | None = None
    ) -> Constraint:
        constraint = self.get_constraint(constraint_id)
        if parameters is not None:
            _launch_role_reference(parameters)
            constraint.parameters = parameters
        if description is not None:
            constraint.description = description
        return constraint

    def delete_constraint(self, constraint_id: str) -> None:
        self.get_constraint(constraint_id)
        del self.constraints[constraint_id]

    def constraints_for(self, portfolio_id: str, product_id: str | None = None) -> list[Constraint]:
        self.get_portfolio(portfolio_id)
        return [
            c
            for c in self.constraints.values()
            if c.portfolio_id == portfolio_id and product_id in (None, c.product_id)
        ]

    def launch_constraint(self, portfolio_id: str, product_id: str) -> Constraint | None:
        found = [c for c in self.constraints_for(portfolio_id, product_id) if c.type == "LAUNCH"]
        return found[0] if found else None

    def launch_role(self, portfolio: Portfolio, product: Product) -> str | None:
        """The role launches through `portfolio` run as; None (the caller's) if unconstrained."""
        constraint = self.launch_constraint(portfolio.id, product.id)
        if constraint is None:
            return None
        kind, value = _launch_role_reference(constraint.parameters)
        arn = (
            value
            if kind == "RoleArn"
            else role_arn_for_name(self.account_id, self.region_name, value)
        )
        if arn is None or not role_exists(arn):
            raise InvalidParametersException(
                f"The launch role {value} of LAUNCH constraint {constraint.id} does not exist: "
                "create the role or fix the constraint"
            )
        return arn

    # ---- TagOptions ----------------------------------------------------------------------

    def create_tag_option(self, key: str, value: str) -> TagOption:
        for option in self.tag_options.values():
            if (option.key, option.value) == (key, value):
                raise DuplicateResourceException(
                    f"TagOption {key}={value} already exists as {option.id}"
                )
        option = TagOption(key=key, value=value, owner=self.account_id)
        self.tag_options[option.id] = option
        return option

    def update_tag_option(
        self, tag_option_id: str, value: str | None = None, active: bool | None = None
    ) -> TagOption:
        option = self.get_tag_option(tag_option_id)
        if value is not None:
            option.value = value
        if active is not None:
            option.active = active
        return option

    def delete_tag_option(self, tag_option_id: str) -> None:
        self.get_tag_option(tag_option_id)
        users = [r.id for r in self._tag_option_resources() if tag_option_id in r.tag_option_ids]
        if users:
            raise ResourceInUseException(
                f"TagOption {tag_option_id} is associated with {users}: disassociate it first"
            )
        del self.tag_options[tag_option_id]

    def list_tag_options(self, filters: Mapping[str, Any] | None) -> list[TagOption]:
        filters = filters or {}
        return [
            option
            for option in self.tag_options.values()
            if filters.get("Key") in (None, option.key)
            and filters.get("Value") in (None, option.value)
            and filters.get("Active") in (None, option.active)
        ]

    def _tag_option_resources(self) -> Iterator[Portfolio | Product]:
        yield from self.portfolios.values()
        yield from self.products.values()

    def _tag_option_resource(self, resource_id: str) -> Portfolio | Product:
        for resource in self._tag_option_resources():
            if resource.id == resource_id:
                return resource
        raise ResourceNotFoundException(
            f"Resource {resource_id} not found: TagOptions go on portfolios and products"
        )

    def associate_tag_option_with_resource(self, resource_id: str, tag_option_id: str) -> None:
        resource = self._tag_option_resource(resource_id)
        option = self.get_tag_option(tag_option_id)
        if not option.active:
            raise InvalidStateException(
                f"TagOption {tag_option_id} is inactive: activate it before associating it"
            )
        if tag_option_id in resource.tag_option_ids:
            raise DuplicateResourceException(
                f"TagOption {tag_option_id} is already associated with {resource_id}"
            )
        resource.tag_option_ids.append(tag_option_id)

    def disassociate_tag_option_from_resource(self, resource_id: str, tag_option_id: str) -> None:
        resource = self._tag_option_resource(resource_id)
        if tag_option_id not in resource.tag_option_ids:
            raise ResourceNotFoundException(
                f"TagOption {tag_option_id} is not associated with {resource_id}"
            )
        resource.tag_option_ids.remove(tag_option_id)

    def tag_option_values(self, *resources: Portfolio | Product) -> dict[str, list[str]]:
        """The active TagOptions of `resources`, as key -> allowed values."""
        values: dict[str, list[str]] = {}
        for resource in resources:
            for option_id in resource.tag_option_ids:
                option = self.tag_options.get(option_id)
                if option and option.active and option.value not in values.get(option.key, []):
                    values.setdefault(option.key, []).append(option.value)
        return values

    # ---- portfolio shares ----------------------------------------------------------------

    def _share_target(
        self, account_id: str | None, organization_node: Mapping[str, str] | None
    ) -> tuple[str, str]:
        if bool(account_id) == bool(organization_node):
            raise InvalidParametersException("Give exactly one of AccountId and OrganizationNode")
        if account_id:
            if not _ACCOUNT_ID.fullmatch(account_id):
                raise InvalidParametersException(f"AccountId {account_id!r} is not 12 digits")
            if account_id == self.account_id:
                raise InvalidParametersException(
                    "A portfolio cannot be shared with the account that owns it"
                )
            return "ACCOUNT", account_id
        assert organization_node is not None
        return organization_node.get("Type", ""), organization_node.get("Value", "")

    def create_portfolio_share(
        self,
        portfolio_id: str,
        account_id: str | None = None,
        organization_node: Mapping[str, str] | None = None,
        share_tag_options: bool = False,
        share_principals: bool = False,
    ) -> str | None:
        """Share the portfolio; organization shares return a token, like AWS's asynchronous ones."""
        self.get_portfolio(portfolio_id)
        share_type, principal = self._share_target(account_id, organization_node)
        shares = self.shares.setdefault(portfolio_id, [])
        if any((s.type, s.principal_id) == (share_type, principal) for s in shares):
            raise DuplicateResourceException(
                f"Portfolio {portfolio_id} is already shared with {principal}"
            )
        shares.append(PortfolioShare(share_type, principal, share_tag_options, share_principals))
        return None if share_type == "ACCOUNT" else new_id("share")

    def accepted_portfolio_shares(self, share_type: str | None) -> list[Portfolio]:
        """ListAcceptedPortfolioShares: portfolios other accounts shared with this one.

        IMPORTED (the default) are account-to-account shares, which this emulation treats as
        accepted at once; organization membership is not modelled, so no organization share
        reaches an account (AWS_ORGANIZATIONS, and the deprecated AWS_SERVICECATALOG, list none).
        """
        if share_type not in (None, "IMPORTED", "AWS_ORGANIZATIONS", "AWS_SERVICECATALOG"):
            raise InvalidParametersException(
                f"PortfolioShareType {share_type!r} is not valid: use IMPORTED, "
                "AWS_ORGANIZATIONS or AWS_SERVICECATALOG"
            )
        if share_type not in (None, "IMPORTED"):
            return []
        from moto.servicecatalog.models import servicecatalog_backends

        accepted = []
        for account_id, regions in servicecatalog_backends.items():
            owner: Any = regions.get(self.region_name) if account_id != self.account_id else None
            if owner is None or not hasattr(owner, "shares"):  # none, or moto's own backend
                continue
            for portfolio_id, shares in owner.shares.items():
                if any((s.type, s.principal_id) == ("ACCOUNT", self.account_id) for s in shares):
                    accepted.append(owner.get_portfolio(portfolio_id))
        return accepted

    def update_portfolio_share(
        self,
        portfolio_id: str,
        account_id: str | None = None,
        organization_node: Mapping[str, str] | None = None,
        share_tag_options: bool | None = None,
        share_principals: bool | None = None,
    ) -> None:
        share = self._share(portfolio_id, account_id, organization_node)
        if share_tag_options is not None:
            share.share_tag_options = share_tag_options
        if share_principals is not None:
            share.share_principals = share_principals

    def delete_portfolio_share(
        self,
        portfolio_id: str,
        account_id: str | None = None,
        organization_node: Mapping[str, str] | None = None,
    ) -> None:
        share = self._share(portfolio_id, account_id, organization_node)
        self.shares[portfolio_id].remove(share)

    def _share(
        self, portfolio_id: str, account_id: str | None, organization_node: Mapping[str, str] | None
    ) -> PortfolioShare:
        self.get_portfolio(portfolio_id)
        target = self._share_target(account_id, organization_node)
        for share in self.shares.get(portfolio_id, []):
            if (share.type, share.principal_id) == target:
                return share
        raise ResourceNotFoundException(f"Portfolio {portfolio_id} is not shared with {target[1]}")

    def portfolio_shares(self, portfolio_id: str, share_type: str) -> list[PortfolioShare]:
        self.get_portfolio(portfolio_id)
        return [s for s in self.shares.get(portfolio_id, []) if s.type == share_type]


def _product_matches(product: Product, filters: Mapping[str, Sequence[str]]) -> bool:
    """SearchProducts filters: FullTextSearch, Owner, ProductType, SourceProductId."""
    fields = {
        "FullTextSearch": " ".join(
            filter(None, (product.name, product.owner, product.description, product.distributor))
        ).lower(),
        "Owner": product.owner.lower(),
        "ProductType": product.product_type.lower(),
        "SourceProductId": product.id,
    }
    for name, wanted in filters.items():
        if name not in fields:
            raise InvalidParametersException(f"Filter {name} is not valid: use {', '.join(fields)}")
        if wanted and not any(w.lower() in fields[name] for w in wanted):
            return False
    return True
