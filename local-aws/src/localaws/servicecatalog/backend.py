"""The Service Catalog backend: admin objects, launch paths, and products launched as stacks."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from moto.cloudformation.exceptions import CloudFormationError
from moto.core.base_backend import BaseBackend
from moto.core.resource_tagging import TaggableResourcesMixin, TaggedResource
from moto.servicecatalog.models import servicecatalog_backends

from .exceptions import (
    DuplicateResourceException,
    InvalidParametersException,
    InvalidStateException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from .models import (
    Constraint,
    Portfolio,
    PortfolioShare,
    Product,
    ProvisioningArtifact,
    TagOption,
    new_id,
)
from .principals import Caller, check_principal, role_arn_for_name, role_exists
from .provisioning import (
    PROVISION,
    TERMINATE,
    UPDATE,
    ProvisionedProduct,
    Record,
    cloudformation,
    stack_tags,
)
from .templates import ProductTemplate, read_template

T = TypeVar("T")

_PP_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}")
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


def _found(items: Mapping[str, T], item_id: str, kind: str) -> T:
    """`items[item_id]`, or the not-found error AWS answers for an unknown id."""
    try:
        return items[item_id]
    except KeyError:
        raise ResourceNotFoundException(f"{kind} {item_id} not found") from None


def _parameter_values(parameters: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for parameter in parameters or ():
        key = parameter.get("Key")
        if not key or parameter.get("Value") is None:
            raise InvalidParametersException(
                f"Provisioning parameter {dict(parameter)} needs both Key and Value"
            )
        if key in values:
            raise InvalidParametersException(f"Provisioning parameter {key} is given twice")
        values[key] = parameter["Value"]
    return values


class LocalServiceCatalogBackend(BaseBackend, TaggableResourcesMixin):
    """Service Catalog for one account and region, in place of moto's."""

    SERVICE_NAMESPACE = "catalog"

    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.portfolios: dict[str, Portfolio] = {}
        self.products: dict[str, Product] = {}
        self.constraints: dict[str, Constraint] = {}
        self.tag_options: dict[str, TagOption] = {}
        self.shares: dict[str, list[PortfolioShare]] = {}
        self.provisioned_products: dict[str, ProvisionedProduct] = {}
        self.records: dict[str, Record] = {}
        self._tokens: dict[tuple[str, str], Any] = {}

    @property
    def _url_module(self) -> Any:
        """Where moto finds the URL handlers (by default: next to the backend's module)."""
        from . import urls

        return urls

    def _once(self, operation: str, token: str | None, create: Callable[[], T]) -> T:
        """Honour an idempotency token: a repeated request gets the first request's result."""
        if not token:
            return create()
        key = (operation, token)
        if key not in self._tokens:
            self._tokens[key] = create()
        result: T = self._tokens[key]
        return result

    # ---- lookups -------------------------------------------------------------------------

    def get_portfolio(self, portfolio_id: str) -> Portfolio:
        return _found(self.portfolios, portfolio_id, "Portfolio")

    def get_product(self, product_id: str | None, name: str | None = None) -> Product:
        if product_id:
            if product_id in self.products:
                return self.products[product_id]
            raise ResourceNotFoundException(f"Product {product_id} not found")
        if not name:
            raise InvalidParametersException("Give the product's Id (or ProductId) or its Name")
        for product in self.products.values():
            if product.name == name:
                return product
        raise ResourceNotFoundException(f"Product named {name!r} not found")

    def get_artifact(
        self, product: Product, artifact_id: str | None, name: str | None = None
    ) -> ProvisioningArtifact:
        if artifact_id:
            if artifact_id in product.artifacts:
                return product.artifacts[artifact_id]
            raise ResourceNotFoundException(
                f"Provisioning artifact {artifact_id} not found in product {product.id}; "
                f"it has {list(product.artifacts)}"
            )
        if not name:
            raise InvalidParametersException(
                "Give the ProvisioningArtifactId or the ProvisioningArtifactName"
            )
        named = [a for a in product.artifacts.values() if a.name == name]
        if not named:
            raise ResourceNotFoundException(
                f"Provisioning artifact named {name!r} not found in product {product.id}"
            )
        return named[-1]

    def get_constraint(self, constraint_id: str) -> Constraint:
        return _found(self.constraints, constraint_id, "Constraint")

    def get_tag_option(self, tag_option_id: str) -> TagOption:
        return _found(self.tag_options, tag_option_id, "TagOption")

    def get_provisioned_product(
        self, pp_id: str | None, name: str | None = None
    ) -> ProvisionedProduct:
        """A provisioned product that is not terminated, by id, name or ARN."""
        live = [pp for pp in self.provisioned_products.values() if not pp.terminated]
        for pp in live:
            if (pp_id and pp.id == pp_id) or (name and name in (pp.name, pp.arn)):
                pp.refresh()
                if not pp.terminated:
                    return pp
        if not pp_id and not name:
            raise InvalidParametersException(
                "Give the ProvisionedProductId or the ProvisionedProductName"
            )
        raise ResourceNotFoundException(f"Provisioned product {pp_id or name} not found")

    def get_record(self, record_id: str) -> Record:
        record = self.records.get(record_id)
        if record is None:
            raise ResourceNotFoundException(f"Record {record_id} not found")
        self.provisioned_products[record.provisioned_product_id].refresh()
        record.refresh()
        return record

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

    # ---- end users: launch paths and parameters ------------------------------------------

    def launch_paths(self, caller: Caller, product: Product) -> list[Portfolio]:
        """The portfolios through which `caller` may launch `product` (the root: all of them)."""
        return [
            portfolio
            for portfolio in self.portfolios_of(product.id)
            if caller.is_root
            or any(caller.may_use(arn, kind) for arn, kind in portfolio.principals)
        ]

    def accessible_product(
        self, caller: Caller, product_id: str | None, name: str | None
    ) -> Product:
        """A product the caller has a launch path to; others do not exist for end users."""
        product = self.get_product(product_id, name)
        if not self.launch_paths(caller, product):
            raise ResourceNotFoundException(f"Product {product_id or name} not found")
        return product

    def resolve_path(
        self, caller: Caller, product: Product, path_id: str | None, path_name: str | None
    ) -> Portfolio:
        paths = self.launch_paths(caller, product)
        if not paths:
            raise InvalidParametersException(f"No launch paths found for resource: {product.id}")
        if path_id or path_name:
            for portfolio in paths:
                if path_id == portfolio.id or path_name == portfolio.display_name:
                    return portfolio
            raise InvalidParametersException(
                f"{path_id or path_name} is not a launch path of {product.id} for "
                f"{caller.identity_arn}; its paths are {[p.id for p in paths]}"
            )
        if len(paths) > 1:
            raise InvalidParametersException(
                f"Product {product.id} has launch paths {[p.id for p in paths]}: "
                "pick one with PathId (see ListLaunchPaths)"
            )
        return paths[0]

    def search_products(
        self, caller: Caller, filters: Mapping[str, Sequence[str]] | None
    ) -> list[Product]:
        """The products `caller` can launch."""
        return [
            product
            for product in self.products.values()
            if self.launch_paths(caller, product) and _product_matches(product, filters or {})
        ]

    def provisioning_parameters(
        self, caller: Caller, product: Product, artifact: ProvisioningArtifact, portfolio: Portfolio
    ) -> dict[str, Any]:
        template = artifact.template()
        constraint = self.launch_constraint(portfolio.id, product.id)
        role = None
        if constraint is not None:
            kind, value = _launch_role_reference(constraint.parameters)
            local_role = role_arn_for_name(self.account_id, self.region_name, value)
            role = value if kind == "RoleArn" else local_role
        tag_options = self.tag_option_values(portfolio, product)
        return {
            "ProvisioningArtifactParameters": [spec.describe() for spec in template.parameters],
            "ConstraintSummaries": [
                c.summary() for c in self.constraints_for(portfolio.id, product.id)
            ],
            "UsageInstructions": template.usage_instructions(role),
            "TagOptions": [{"Key": k, "Values": v} for k, v in tag_options.items()],
            "ProvisioningArtifactPreferences": {},
            "ProvisioningArtifactOutputs": template.outputs,
            "ProvisioningArtifactOutputKeys": template.outputs,
        }

    def _launch_tags(
        self, portfolio: Portfolio, product: Product, tags: dict[str, str]
    ) -> dict[str, str]:
        """The user's tags checked against the TagOptions; single-valued options are applied."""
        reserved = [key for key in tags if key.lower().startswith("aws:")]
        if reserved:
            raise InvalidParametersException(f"Tag keys {reserved} use the reserved prefix aws:")
        options = self.tag_option_values(portfolio, product)
        merged = dict(tags)
        for key, allowed in options.items():
            if key in merged and merged[key] not in allowed:
                raise InvalidParametersException(
                    f"Tag {key}={merged[key]} is not allowed: its TagOption values are {allowed}"
                )
            if key not in merged:
                if len(allowed) > 1:
                    raise InvalidParametersException(
                        f"Tag {key} is required by a TagOption: pass it in Tags with one of "
                        f"{allowed}"
                    )
                merged[key] = allowed[0]
        return merged

    # ---- end users: provisioning ---------------------------------------------------------

    def provision_product(
        self,
        caller: Caller,
        *,
        name: str,
        token: str,
        product_id: str | None = None,
        product_name: str | None = None,
        artifact_id: str | None = None,
        artifact_name: str | None = None,
        path_id: str | None = None,
        path_name: str | None = None,
        parameters: Sequence[Mapping[str, Any]] | None = None,
        tags: dict[str, str] | None = None,
    ) -> Record:
        def launch() -> Record:
            product = self.get_product(product_id, product_name)
            artifact = self.get_artifact(product, artifact_id, artifact_name)
            if not artifact.active or artifact.guidance == "DEPRECATED":
                raise InvalidParametersException(
                    f"Provisioning artifact {artifact.id} of {product.id} is "
                    f"{'deprecated' if artifact.active else 'inactive'}: new launches need an "
                    "active, non-deprecated version (see ListProvisioningArtifacts)"
                )
            portfolio = self.resolve_path(caller, product, path_id, path_name)
            self._check_new_name(name)
            values = _parameter_values(parameters)
            template = artifact.template()
            template.check_parameters(values)
            pp = ProvisionedProduct(
                account_id=self.account_id,
                region=self.region_name,
                name=name,
                product_id=product.id,
                artifact_id=artifact.id,
                path_id=portfolio.id,
                launch_role_arn=self.launch_role(portfolio, product),
                user_arn=caller.identity_arn,
                user_arn_session=caller.session_arn,
                tags=self._launch_tags(portfolio, product, tags or {}),
                idempotency_token=token,
            )
            record = self._new_record(pp, PROVISION, artifact.id, values)
            try:
                stack = cloudformation(self.account_id, self.region_name).create_stack(
                    name=pp.stack_name,
                    template=artifact.template_body,
                    parameters=values,
                    tags=stack_tags(pp, record, portfolio.arn, product.arn),
                    role_arn=pp.launch_role_arn,
                )
            except CloudFormationError as err:
                raise InvalidParametersException(err.message) from err
            pp.stack_id = record.stack_id = stack.stack_id
            self._start(pp, record)
            return record

        record = self._once("ProvisionProduct", token, launch)
        return self.get_record(record.id)

    def _check_new_name(self, name: str) -> None:
        if not _PP_NAME.fullmatch(name):
            raise InvalidParametersException(
                f"ProvisionedProductName {name!r} is not valid: start with a letter or digit, "
                "then up to 127 letters, digits, '.', '_' or '-'"
            )
        for pp in self.provisioned_products.values():
            pp.refresh()
            if pp.name == name and not pp.terminated:
                raise DuplicateResourceException(
                    f"A provisioned product named {name} already exists ({pp.id})"
                )

    def _new_record(
        self,
        pp: ProvisionedProduct,
        record_type: str,
        artifact_id: str,
        values: dict[str, str],
        path: tuple[str, str | None] | None = None,
    ) -> Record:
        """A record of `pp`; `path` is the (portfolio id, launch role) it uses, if it changes."""
        path_id, launch_role = path or (pp.path_id, pp.launch_role_arn)
        return Record(
            type=record_type,
            account_id=self.account_id,
            region=self.region_name,
            provisioned_product_id=pp.id,
            provisioned_product_name=pp.name,
            product_id=pp.product_id,
            artifact_id=artifact_id,
            path_id=path_id,
            launch_role_arn=launch_role,
            tags=dict(pp.tags),
            parameters=values,
            stack_id=pp.stack_id,
        )

    def _start(self, pp: ProvisionedProduct, record: Record) -> None:
        pp.records.append(record)
        self.provisioned_products[pp.id] = pp
        self.records[record.id] = record
        pp.refresh()

    def _stack_of(self, pp: ProvisionedProduct) -> Any:
        """The provisioned product's stack, or None if it was deleted behind our back."""
        try:
            return cloudformation(self.account_id, self.region_name).get_stack(pp.stack_id)
        except CloudFormationError:
            return None

    def _ready_for_change(self, pp: ProvisionedProduct) -> None:
        if not pp.last_record.final:
            raise InvalidParametersException(
                f"Provisioned product {pp.id} is {pp.status}: wait until record "
                f"{pp.last_record.id} has finished"
            )

    def update_provisioned_product(
        self,
        caller: Caller,
        *,
        token: str,
        pp_id: str | None = None,
        pp_name: str | None = None,
        product_id: str | None = None,
        product_name: str | None = None,
        artifact_id: str | None = None,
        artifact_name: str | None = None,
        path_id: str | None = None,
        path_name: str | None = None,
        parameters: Sequence[Mapping[str, Any]] | None = None,
        tags: dict[str, str] | None = None,
    ) -> Record:
        def update() -> Record:
            pp = self.get_provisioned_product(pp_id, pp_name)
            self._ready_for_change(pp)
            product = self.get_product(
                product_id or (None if product_name else pp.product_id), product_name
            )
            if product.id != pp.product_id:
                raise InvalidParametersException(
                    f"{pp.id} was launched from {pp.product_id}; an update cannot switch it to "
                    f"{product.id}"
                )
            if artifact_id or artifact_name:
                artifact = self.get_artifact(product, artifact_id, artifact_name)
            else:
                artifact = self.get_artifact(product, pp.artifact_id)
            if not artifact.active:
                raise InvalidParametersException(
                    f"Provisioning artifact {artifact.id} is inactive: pick an active version"
                )
            if tags is not None and tags != pp.tags:
                raise InvalidParametersException(
                    "Changing tags needs a RESOURCE_UPDATE constraint allowing tag updates, "
                    "which the local Service Catalog does not support; leave Tags out"
                )
            portfolio = self.resolve_path(
                caller, product, path_id or (None if path_name else pp.path_id), path_name
            )
            template = artifact.template()
            values = _update_values(pp, template, parameters or ())
            template.check_parameters(values)
            path = (portfolio.id, self.launch_role(portfolio, product))
            record = self._new_record(pp, UPDATE, artifact.id, values, path)
            stack = self._stack_of(pp)
            if stack is None:
                raise InvalidParametersException(
                    f"The stack of {pp.id} ({pp.stack_id}) no longer exists: terminate the "
                    "provisioned product and launch it again"
                )
            record.events_before = len(stack.events)
            try:
                cloudformation(self.account_id, self.region_name).update_stack(
                    name=pp.stack_id,
                    template=artifact.template_body,
                    role_arn=record.launch_role_arn,
                    parameters=[
                        {"ParameterKey": k, "ParameterValue": v} for k, v in values.items()
                    ],
                    tags=stack_tags(pp, record, portfolio.arn, product.arn),
                )
            except CloudFormationError as err:
                if "No updates are to be performed" not in err.message:
                    raise InvalidParametersException(err.message) from err
                record.succeed_unchanged(stack)
            self._start(pp, record)
            return record

        record = self._once("UpdateProvisionedProduct", token, update)
        return self.get_record(record.id)

    def terminate_provisioned_product(
        self,
        *,
        token: str,
        pp_id: str | None = None,
        pp_name: str | None = None,
        ignore_errors: bool = False,
        retain_physical_resources: bool = False,
    ) -> Record:
        def terminate() -> Record:
            if retain_physical_resources:
                raise InvalidParametersException(
                    "RetainPhysicalResources is not supported by the local Service Catalog"
                )
            pp = self.get_provisioned_product(pp_id, pp_name)
            self._ready_for_change(pp)
            record = self._new_record(pp, TERMINATE, pp.artifact_id, pp.parameters)
            record.ignore_errors = ignore_errors
            stack = self._stack_of(pp)
            if stack is not None:  # else there is nothing left to delete
                record.events_before = len(stack.events)
                try:
                    cloudformation(self.account_id, self.region_name).delete_stack(pp.stack_id)
                except CloudFormationError as err:
                    raise InvalidParametersException(err.message) from err
            self._start(pp, record)
            return record

        record = self._once("TerminateProvisionedProduct", token, terminate)
        return self.get_record(record.id)

    # ---- end users: what has been launched ------------------------------------------------

    def visible_provisioned_products(
        self, caller: Caller, access_level: Mapping[str, str] | None
    ) -> list[ProvisionedProduct]:
        """The live provisioned products `caller` sees at the access level asked."""
        visible = []
        for pp in self._accessible(caller, access_level):
            pp.refresh()
            if not pp.terminated:
                visible.append(pp)
        return visible

    def record_history(
        self,
        caller: Caller,
        access_level: Mapping[str, str] | None,
        search_filter: Mapping[str, str] | None,
    ) -> list[Record]:
        """Records of the accessible provisioned products (terminated ones too), newest first."""
        key = (search_filter or {}).get("Key")
        value = (search_filter or {}).get("Value")
        if key not in (None, "product", "provisionedproduct"):
            raise InvalidParametersException(
                f"SearchFilter Key {key!r} is not valid: use product or provisionedproduct"
            )
        records = []
        for pp in self._accessible(caller, access_level):
            pp.refresh()
            for record in pp.records:
                record.refresh()
                if key == "product" and record.product_id != value:
                    continue
                if key == "provisionedproduct" and record.provisioned_product_id != value:
                    continue
                records.append(record)
        return sorted(records, key=lambda r: r.created_time, reverse=True)

    def _accessible(
        self, caller: Caller, access_level: Mapping[str, str] | None
    ) -> list[ProvisionedProduct]:
        """AccessLevelFilter: User (the default) sees its launches, Role its role's, Account all.

        The account root sees everything whatever the level: it owns the account.
        """
        level = (access_level or {}).get("Key", "User")
        if level not in ("User", "Role", "Account"):
            raise InvalidParametersException(
                f"AccessLevelFilter Key {level!r} is not valid: use Account, Role or User"
            )
        return [
            pp
            for pp in self.provisioned_products.values()
            if caller.is_root
            or level == "Account"
            or (level == "Role" and pp.user_arn == caller.identity_arn)
            or pp.user_arn_session == caller.session_arn
        ]

    def product_and_artifact_names(self, pp: ProvisionedProduct) -> tuple[str, str | None]:
        product = self.products.get(pp.product_id)
        if product is None:
            return "", None
        artifact = product.artifacts.get(pp.artifact_id)
        return product.name, artifact.name if artifact else None

    # ---- Resource Groups Tagging API -----------------------------------------------------

    def iter_tagged_resources(self) -> Iterator[TaggedResource]:
        for portfolio in self.portfolios.values():
            yield TaggedResource(portfolio.arn, dict(portfolio.tags), "servicecatalog:portfolio")
        for product in self.products.values():
            yield TaggedResource(product.arn, dict(product.tags), "servicecatalog:product")


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


def _update_values(
    pp: ProvisionedProduct, template: ProductTemplate, given: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """The parameter values of an update: given ones, else the previous ones still declared."""
    declared = {spec.key for spec in template.parameters}
    values = {k: v for k, v in pp.parameters.items() if k in declared}
    for parameter in given:
        key = parameter.get("Key")
        if not key:
            raise InvalidParametersException(f"Provisioning parameter {dict(parameter)} has no Key")
        if parameter.get("UsePreviousValue"):
            if key not in pp.parameters:
                raise InvalidParametersException(
                    f"Parameter {key} has no previous value to use: give it a Value"
                )
            values[key] = pp.parameters[key]
        elif parameter.get("Value") is None:
            raise InvalidParametersException(
                f"Parameter {key}: give a Value or set UsePreviousValue"
            )
        else:
            values[key] = parameter["Value"]
    return values


def backend_for(account_id: str, region: str) -> LocalServiceCatalogBackend:
    """The account's and region's backend, which install() made ours."""
    backend = servicecatalog_backends[account_id][region]
    if not isinstance(backend, LocalServiceCatalogBackend):
        raise RuntimeError(
            "moto's own Service Catalog is serving: call "
            "localaws.servicecatalog.install() before the first request"
        )
    return backend
