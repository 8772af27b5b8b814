"""The Service Catalog API over HTTP: request parameters in, ActionResult shapes out.

moto parses each request against the botocore model (`automated_parameter_parsing`) and
serialises each result against it, so the dicts here carry AWS's member names and moto drops
anything the model does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, BaseResponse, EmptyResult

from localaws.iam import authorization as iam_authorization

from . import authorization
from .exceptions import ResourceNotFoundException
from .models import LocalServiceCatalogBackend, backend_for
from .models.entities import Constraint, Portfolio, Product, ProvisioningArtifact, page_of, tag_list
from .principals import Caller, resolve_caller
from .provisioning import Record


class LocalServiceCatalogResponse(BaseResponse):
    """One method per operation, named as moto derives it from the action."""

    def __init__(self) -> None:
        super().__init__(service_name="servicecatalog")
        self.automated_parameter_parsing = True

    @property
    def backend(self) -> LocalServiceCatalogBackend:
        return backend_for(self.current_account, self.region)

    def _authenticate_and_authorize_normal_action(self, resource: str = "*") -> None:
        """The installed check, then (enforcement on) Service Catalog's own: `authorization`."""
        super()._authenticate_and_authorize_normal_action(resource)
        if iam_authorization.enforcing():
            authorization.authorize(self)

    @property
    def caller(self) -> Caller:
        return resolve_caller(self.current_account, self.region, self.access_key)

    def _p(self, name: str, default: Any = None) -> Any:
        params: dict[str, Any] = self.params
        return params.get(name, default)

    def _paged(
        self, key: str, items: list[Any], next_key: str = "NextPageToken", **extra: Any
    ) -> ActionResult:
        """The page of `items` the request's PageToken and PageSize ask for, under `key`."""
        page, token = page_of(items, self._p("PageToken"), self._p("PageSize"))
        return ActionResult({key: page, **extra, next_key: token})

    def _tag_map(self, name: str) -> dict[str, str]:
        """A request's `[{Key, Value}]` tag list as a mapping."""
        return {t["Key"]: t["Value"] for t in self._p(name, [])}

    def _tag_options(self, resource: Portfolio | Product) -> list[dict[str, Any]]:
        return [self.backend.get_tag_option(i).detail() for i in resource.tag_option_ids]

    def _launch_choice(self) -> dict[str, Any]:
        """What a launch and an update both name: product, version, launch path, parameters."""
        return {
            "product_id": self._p("ProductId"),
            "product_name": self._p("ProductName"),
            "artifact_id": self._p("ProvisioningArtifactId"),
            "artifact_name": self._p("ProvisioningArtifactName"),
            "path_id": self._p("PathId"),
            "path_name": self._p("PathName"),
            "parameters": self._p("ProvisioningParameters"),
        }

    # ---- portfolios ----------------------------------------------------------------------

    def create_portfolio(self) -> ActionResult:
        portfolio = self.backend.create_portfolio(
            display_name=self._p("DisplayName"),
            provider_name=self._p("ProviderName"),
            description=self._p("Description"),
            tags=self._tag_map("Tags"),
            idempotency_token=self._p("IdempotencyToken"),
        )
        return ActionResult(_portfolio_result(portfolio))

    def _portfolio_view(self, portfolio_id: str) -> dict[str, Any]:
        portfolio = self.backend.get_portfolio(portfolio_id)
        return {
            "PortfolioDetail": portfolio.detail(),
            "Tags": tag_list(portfolio.tags),
            "TagOptions": self._tag_options(portfolio),
            "Budgets": [],
        }

    def describe_portfolio(self) -> ActionResult:
        return ActionResult(self._portfolio_view(self._p("Id")))

    def update_portfolio(self) -> ActionResult:
        portfolio = self.backend.update_portfolio(
            self._p("Id"),
            display_name=self._p("DisplayName"),
            description=self._p("Description"),
            provider_name=self._p("ProviderName"),
            add_tags=self._tag_map("AddTags"),
            remove_tags=self._p("RemoveTags", []),
        )
        return ActionResult(_portfolio_result(portfolio))

    def list_portfolios(self) -> ActionResult:
        details = [p.detail() for p in self.backend.portfolios.values()]
        return self._paged("PortfolioDetails", details)

    def list_portfolios_for_product(self) -> ActionResult:
        product = self.backend.get_product(self._p("ProductId"))
        details = [p.detail() for p in self.backend.portfolios_of(product.id)]
        return self._paged("PortfolioDetails", details)

    def delete_portfolio(self) -> ActionResult:
        self.backend.delete_portfolio(self._p("Id"))
        return EmptyResult()

    # ---- portfolio shares ----------------------------------------------------------------

    def create_portfolio_share(self) -> ActionResult:
        token = self.backend.create_portfolio_share(
            self._p("PortfolioId"),
            account_id=self._p("AccountId"),
            organization_node=self._p("OrganizationNode"),
            share_tag_options=self._p("ShareTagOptions", False),
            share_principals=self._p("SharePrincipals", False),
        )
        return ActionResult({"PortfolioShareToken": token})

    def update_portfolio_share(self) -> ActionResult:
        self.backend.update_portfolio_share(
            self._p("PortfolioId"),
            account_id=self._p("AccountId"),
            organization_node=self._p("OrganizationNode"),
            share_tag_options=self._p("ShareTagOptions"),
            share_principals=self._p("SharePrincipals"),
        )
        return ActionResult({"Status": "COMPLETED"})

    def delete_portfolio_share(self) -> ActionResult:
        self.backend.delete_portfolio_share(
            self._p("PortfolioId"),
            account_id=self._p("AccountId"),
            organization_node=self._p("OrganizationNode"),
        )
        return EmptyResult()

    def describe_portfolio_shares(self) -> ActionResult:
        shares = self.backend.portfolio_shares(self._p("PortfolioId"), self._p("Type"))
        return self._paged("PortfolioShareDetails", [s.detail() for s in shares])

    def list_accepted_portfolio_shares(self) -> ActionResult:
        portfolios = self.backend.accepted_portfolio_shares(self._p("PortfolioShareType"))
        return self._paged("PortfolioDetails", [p.detail() for p in portfolios])

    def list_portfolio_access(self) -> ActionResult:
        shares = self.backend.portfolio_shares(self._p("PortfolioId"), "ACCOUNT")
        return self._paged("AccountIds", [s.principal_id for s in shares])

    # ---- products and provisioning artifacts -----------------------------------------------

    def create_product(self) -> ActionResult:
        product, artifact = self.backend.create_product(
            name=self._p("Name"),
            owner=self._p("Owner"),
            product_type=self._p("ProductType"),
            artifact_properties=self._p("ProvisioningArtifactParameters"),
            description=self._p("Description"),
            distributor=self._p("Distributor"),
            support_description=self._p("SupportDescription"),
            support_email=self._p("SupportEmail"),
            support_url=self._p("SupportUrl"),
            tags=self._tag_map("Tags"),
            idempotency_token=self._p("IdempotencyToken"),
        )
        return ActionResult(
            {
                "ProductViewDetail": product.view_detail(),
                "ProvisioningArtifactDetail": artifact.detail(),
                "Tags": tag_list(product.tags),
            }
        )

    def update_product(self) -> ActionResult:
        product = self.backend.update_product(
            self._p("Id"),
            changes={
                "name": self._p("Name"),
                "owner": self._p("Owner"),
                "description": self._p("Description"),
                "distributor": self._p("Distributor"),
                "support_description": self._p("SupportDescription"),
                "support_email": self._p("SupportEmail"),
                "support_url": self._p("SupportUrl"),
            },
            add_tags=self._tag_map("AddTags"),
            remove_tags=self._p("RemoveTags", []),
        )
        return ActionResult(
            {"ProductViewDetail": product.view_detail(), "Tags": tag_list(product.tags)}
        )

    def describe_product_as_admin(self) -> ActionResult:
        product = self.backend.get_product(self._p("Id"), self._p("Name"))
        return ActionResult(
            {
                "ProductViewDetail": product.view_detail(),
                "ProvisioningArtifactSummaries": [a.summary() for a in product.artifacts.values()],
                "Tags": tag_list(product.tags),
                "TagOptions": self._tag_options(product),
                "Budgets": [],
            }
        )

    def describe_product(self) -> ActionResult:
        """The end-user view: active versions and the caller's launch paths only."""
        caller = self.caller
        product = self.backend.accessible_product(caller, self._p("Id"), self._p("Name"))
        paths = self.backend.launch_paths(caller, product)
        return ActionResult(
            {
                "ProductViewSummary": product.view_summary(has_default_path=len(paths) == 1),
                "ProvisioningArtifacts": [
                    a.end_user_view() for a in product.artifacts.values() if a.active
                ],
                "Budgets": [],
                "LaunchPaths": [{"Id": p.id, "Name": p.display_name} for p in paths],
            }
        )

    def describe_product_view(self) -> ActionResult:
        """DescribeProduct by the product view's id (prodview-...), for a caller with a path."""
        caller = self.caller
        view_id = self._p("Id")
        product = next((p for p in self.backend.products.values() if p.view_id == view_id), None)
        if product is None or not self.backend.launch_paths(caller, product):
            raise ResourceNotFoundException(f"Product view {view_id} not found")
        paths = self.backend.launch_paths(caller, product)
        return ActionResult(
            {
                "ProductViewSummary": product.view_summary(has_default_path=len(paths) == 1),
                "ProvisioningArtifacts": [
                    a.end_user_view() for a in product.artifacts.values() if a.active
                ],
            }
        )

    def list_service_actions_for_provisioning_artifact(self) -> ActionResult:
        """Service actions are not modelled: a version has none (after checking it exists)."""
        product = self.backend.get_product(self._p("ProductId"))
        self.backend.get_artifact(product, self._p("ProvisioningArtifactId"))
        return self._paged("ServiceActionSummaries", [])

    def describe_provisioned_product_plan(self) -> ActionResult:
        """Plans (CreateProvisionedProductPlan) are not modelled: no plan id exists."""
        raise ResourceNotFoundException(f"Provisioned product plan {self._p('PlanId')} not found")

    def search_products(self) -> ActionResult:
        caller = self.caller
        found = self.backend.search_products(caller, self._p("Filters"))
        summaries = [
            p.view_summary(has_default_path=len(self.backend.launch_paths(caller, p)) == 1)
            for p in _sorted_products(found, self._p("SortBy"), self._p("SortOrder"))
        ]
        return self._paged("ProductViewSummaries", summaries, ProductViewAggregations={})

    def search_products_as_admin(self) -> ActionResult:
        products = self.backend.search_products_as_admin(self._p("PortfolioId"), self._p("Filters"))
        ordered = _sorted_products(products, self._p("SortBy"), self._p("SortOrder"))
        return self._paged("ProductViewDetails", [p.view_detail() for p in ordered])

    def delete_product(self) -> ActionResult:
        self.backend.delete_product(self._p("Id"))
        return EmptyResult()

    def create_provisioning_artifact(self) -> ActionResult:
        artifact = self.backend.create_provisioning_artifact(
            self._p("ProductId"), self._p("Parameters"), self._p("IdempotencyToken")
        )
        return ActionResult(_artifact_result(artifact))

    def list_provisioning_artifacts(self) -> ActionResult:
        product = self.backend.get_product(self._p("ProductId"))
        return ActionResult(
            {"ProvisioningArtifactDetails": [a.detail() for a in product.artifacts.values()]}
        )

    def describe_provisioning_artifact(self) -> ActionResult:
        product = self.backend.get_product(self._p("ProductId"), self._p("ProductName"))
        artifact = self.backend.get_artifact(
            product, self._p("ProvisioningArtifactId"), self._p("ProvisioningArtifactName")
        )
        result = _artifact_result(artifact)
        if self._p("IncludeProvisioningArtifactParameters"):
            parameters = artifact.template().parameters
            result["ProvisioningArtifactParameters"] = [p.describe() for p in parameters]
        return ActionResult(result)

    def update_provisioning_artifact(self) -> ActionResult:
        artifact = self.backend.update_provisioning_artifact(
            self._p("ProductId"),
            self._p("ProvisioningArtifactId"),
            name=self._p("Name"),
            description=self._p("Description"),
            active=self._p("Active"),
            guidance=self._p("Guidance"),
        )
        return ActionResult(_artifact_result(artifact))

    def delete_provisioning_artifact(self) -> ActionResult:
        self.backend.delete_provisioning_artifact(
            self._p("ProductId"), self._p("ProvisioningArtifactId")
        )
        return EmptyResult()

    # ---- associations and constraints ------------------------------------------------------

    def associate_product_with_portfolio(self) -> ActionResult:
        self.backend.associate_product_with_portfolio(self._p("ProductId"), self._p("PortfolioId"))
        return EmptyResult()

    def disassociate_product_from_portfolio(self) -> ActionResult:
        self.backend.disassociate_product_from_portfolio(
            self._p("ProductId"), self._p("PortfolioId")
        )
        return EmptyResult()

    def associate_principal_with_portfolio(self) -> ActionResult:
        self.backend.associate_principal_with_portfolio(
            self._p("PortfolioId"), self._p("PrincipalARN"), self._p("PrincipalType")
        )
        return EmptyResult()

    def disassociate_principal_from_portfolio(self) -> ActionResult:
        self.backend.disassociate_principal_from_portfolio(
            self._p("PortfolioId"), self._p("PrincipalARN"), self._p("PrincipalType")
        )
        return EmptyResult()

    def list_principals_for_portfolio(self) -> ActionResult:
        portfolio = self.backend.get_portfolio(self._p("PortfolioId"))
        principals = [
            {"PrincipalARN": arn, "PrincipalType": kind} for arn, kind in portfolio.principals
        ]
        return self._paged("Principals", principals)

    def create_constraint(self) -> ActionResult:
        constraint = self.backend.create_constraint(
            portfolio_id=self._p("PortfolioId"),
            product_id=self._p("ProductId"),
            constraint_type=self._p("Type"),
            parameters=self._p("Parameters"),
            description=self._p("Description"),
            idempotency_token=self._p("IdempotencyToken"),
        )
        return ActionResult(_constraint_result(constraint))

    def update_constraint(self) -> ActionResult:
        constraint = self.backend.update_constraint(
            self._p("Id"), description=self._p("Description"), parameters=self._p("Parameters")
        )
        return ActionResult(_constraint_result(constraint))

    def describe_constraint(self) -> ActionResult:
        constraint = self.backend.get_constraint(self._p("Id"))
        return ActionResult(_constraint_result(constraint))

    def list_constraints_for_portfolio(self) -> ActionResult:
        constraints = self.backend.constraints_for(self._p("PortfolioId"), self._p("ProductId"))
        return self._paged("ConstraintDetails", [c.detail() for c in constraints])

    def delete_constraint(self) -> ActionResult:
        self.backend.delete_constraint(self._p("Id"))
        return EmptyResult()

    # ---- TagOptions ----------------------------------------------------------------------

    def create_tag_option(self) -> ActionResult:
        option = self.backend.create_tag_option(self._p("Key"), self._p("Value"))
        return ActionResult({"TagOptionDetail": option.detail()})

    def describe_tag_option(self) -> ActionResult:
        return ActionResult(
            {"TagOptionDetail": self.backend.get_tag_option(self._p("Id")).detail()}
        )

    def update_tag_option(self) -> ActionResult:
        option = self.backend.update_tag_option(
            self._p("Id"), value=self._p("Value"), active=self._p("Active")
        )
        return ActionResult({"TagOptionDetail": option.detail()})

    def delete_tag_option(self) -> ActionResult:
        self.backend.delete_tag_option(self._p("Id"))
        return EmptyResult()

    def list_tag_options(self) -> ActionResult:
        options = [o.detail() for o in self.backend.list_tag_options(self._p("Filters"))]
        return self._paged("TagOptionDetails", options, next_key="PageToken")

    def associate_tag_option_with_resource(self) -> ActionResult:
        self.backend.associate_tag_option_with_resource(
            self._p("ResourceId"), self._p("TagOptionId")
        )
        return EmptyResult()

    def disassociate_tag_option_from_resource(self) -> ActionResult:
        self.backend.disassociate_tag_option_from_resource(
            self._p("ResourceId"), self._p("TagOptionId")
        )
        return EmptyResult()

    # ---- end users -----------------------------------------------------------------------

    def list_launch_paths(self) -> ActionResult:
        caller = self.caller
        product = self.backend.get_product(self._p("ProductId"))
        summaries = [
            {
                "Id": portfolio.id,
                "ConstraintSummaries": [
                    c.summary() for c in self.backend.constraints_for(portfolio.id, product.id)
                ],
                "Tags": tag_list(portfolio.tags),
                "Name": portfolio.display_name,
            }
            for portfolio in self.backend.launch_paths(caller, product)
        ]
        return self._paged("LaunchPathSummaries", summaries)

    def describe_provisioning_parameters(self) -> ActionResult:
        caller = self.caller
        product = self.backend.accessible_product(
            caller, self._p("ProductId"), self._p("ProductName")
        )
        artifact = self.backend.get_artifact(
            product, self._p("ProvisioningArtifactId"), self._p("ProvisioningArtifactName")
        )
        portfolio = self.backend.resolve_path(
            caller, product, self._p("PathId"), self._p("PathName")
        )
        return ActionResult(
            self.backend.provisioning_parameters(caller, product, artifact, portfolio)
        )

    def provision_product(self) -> ActionResult:
        record = self.backend.provision_product(
            self.caller,
            name=self._p("ProvisionedProductName"),
            token=self._p("ProvisionToken"),
            **self._launch_choice(),
            tags=self._tag_map("Tags"),
        )
        return ActionResult({"RecordDetail": record.detail()})

    def update_provisioned_product(self) -> ActionResult:
        record = self.backend.update_provisioned_product(
            self.caller,
            token=self._p("UpdateToken"),
            pp_id=self._p("ProvisionedProductId"),
            pp_name=self._p("ProvisionedProductName"),
            **self._launch_choice(),
            # Absent Tags keep the launch's tags; an empty list would ask to remove them.
            tags=None if self._p("Tags") is None else self._tag_map("Tags"),
        )
        return ActionResult({"RecordDetail": record.detail()})

    def terminate_provisioned_product(self) -> ActionResult:
        record = self.backend.terminate_provisioned_product(
            self.caller,
            token=self._p("TerminateToken"),
            pp_id=self._p("ProvisionedProductId"),
            pp_name=self._p("ProvisionedProductName"),
            ignore_errors=self._p("IgnoreErrors", False),
            retain_physical_resources=self._p("RetainPhysicalResources", False),
        )
        return ActionResult({"RecordDetail": record.detail()})

    def describe_record(self) -> ActionResult:
        record = self.backend.get_record(self._p("Id"))
        return self._paged("RecordOutputs", record.outputs, RecordDetail=record.detail())

    def list_record_history(self) -> ActionResult:
        records = self.backend.record_history(
            self.caller, self._p("AccessLevelFilter"), self._p("SearchFilter")
        )
        return self._paged("RecordDetails", [r.detail() for r in records])

    def describe_provisioned_product(self) -> ActionResult:
        pp = self.backend.get_provisioned_product(self._p("Id"), self._p("Name"))
        return ActionResult({"ProvisionedProductDetail": pp.detail(), "CloudWatchDashboards": []})

    def get_provisioned_product_outputs(self) -> ActionResult:
        pp = self.backend.get_provisioned_product(
            self._p("ProvisionedProductId"), self._p("ProvisionedProductName")
        )
        last_success = pp.last_successful_record_id
        record: Record | None = self.backend.records.get(last_success) if last_success else None
        wanted = self._p("OutputKeys")
        outputs = [
            o for o in (record.outputs if record else []) if not wanted or o["OutputKey"] in wanted
        ]
        return self._paged("Outputs", outputs)

    def search_provisioned_products(self) -> ActionResult:
        visible = self.backend.visible_provisioned_products(
            self.caller, self._p("AccessLevelFilter")
        )
        rows = [pp.attributes(*self.backend.product_and_artifact_names(pp)) for pp in visible]
        for query in (self._p("Filters") or {}).get("SearchQuery", []):
            rows = [row for row in rows if _matches_query(row, query)]
        sort_by = self._p("SortBy") or "createdTime"
        field = {"arn": "Arn", "id": "Id", "name": "Name", "lastRecordId": "LastRecordId"}.get(
            sort_by, "CreatedTime"
        )
        rows.sort(key=lambda row: row[field], reverse=self._p("SortOrder") == "DESCENDING")
        return self._paged("ProvisionedProducts", rows, TotalResultsCount=len(rows))

    def scan_provisioned_products(self) -> ActionResult:
        visible = self.backend.visible_provisioned_products(
            self.caller, self._p("AccessLevelFilter")
        )
        return self._paged("ProvisionedProducts", [pp.detail() for pp in visible])


_PRODUCT_SORT_KEYS: dict[str, Callable[[Product], Any]] = {
    "Title": lambda p: p.name.lower(),
    "CreationDate": lambda p: p.created_time,
    "VersionCount": lambda p: len(p.artifacts),
}


def _sorted_products(
    products: list[Product], sort_by: str | None, order: str | None
) -> list[Product]:
    """Products as SortBy (Title, CreationDate: the default, VersionCount) and SortOrder ask."""
    key = _PRODUCT_SORT_KEYS.get(sort_by or "CreationDate", _PRODUCT_SORT_KEYS["CreationDate"])
    return sorted(products, key=key, reverse=order == "DESCENDING")


def _matches_query(row: dict[str, Any], query: str) -> bool:
    """A SearchQuery term: `field:value` (e.g. name:web, productId:prod-...) or free text."""
    field, sep, value = query.partition(":")
    fields = {k[0].lower() + k[1:]: str(v) for k, v in row.items() if isinstance(v, str)}
    if sep and field in fields:
        return value.lower() in fields[field].lower()
    return any(query.lower() in v.lower() for v in fields.values())


def _portfolio_result(portfolio: Portfolio) -> dict[str, Any]:
    return {"PortfolioDetail": portfolio.detail(), "Tags": tag_list(portfolio.tags)}


def _constraint_result(constraint: Constraint) -> dict[str, Any]:
    return {
        "ConstraintDetail": constraint.detail(),
        "ConstraintParameters": constraint.parameters,
        "Status": "AVAILABLE",
    }


def _artifact_result(artifact: ProvisioningArtifact) -> dict[str, Any]:
    return {
        "ProvisioningArtifactDetail": artifact.detail(),
        "Info": artifact.info,
        "Status": "AVAILABLE",
    }
