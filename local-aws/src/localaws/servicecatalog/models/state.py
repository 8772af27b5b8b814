"""What both halves of the Service Catalog backend share: its objects, idempotency and lookups."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from moto.core.base_backend import BaseBackend
from moto.core.resource_tagging import TaggableResourcesMixin, TaggedResource

from localaws.servicecatalog.exceptions import InvalidParametersException, ResourceNotFoundException
from localaws.servicecatalog.provisioning import ProvisionedProduct, Record

from .entities import (
    Constraint,
    Portfolio,
    PortfolioShare,
    Product,
    ProvisioningArtifact,
    TagOption,
)

T = TypeVar("T")


def _found(items: Mapping[str, T], item_id: str, kind: str) -> T:
    """`items[item_id]`, or the not-found error AWS answers for an unknown id."""
    try:
        return items[item_id]
    except KeyError:
        raise ResourceNotFoundException(f"{kind} {item_id} not found") from None


class CatalogState(BaseBackend, TaggableResourcesMixin):
    """The objects of one account and region, and how a request finds them."""

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

    # ---- Resource Groups Tagging API -----------------------------------------------------

    def iter_tagged_resources(self) -> Iterator[TaggedResource]:
        for portfolio in self.portfolios.values():
            yield TaggedResource(portfolio.arn, dict(portfolio.tags), "servicecatalog:portfolio")
        for product in self.products.values():
            yield TaggedResource(product.arn, dict(product.tags), "servicecatalog:product")
