"""The AWS::ServiceCatalog::* resource types for the local CloudFormation engine.

Each provisioner works on the Service Catalog backend of the stack's account and region, so what
a template creates is what the API shows. Replacement follows the types' resource schemas:
create-only properties raise NeedsReplacement, the rest are updated in place. Physical ids of
the association types join their identifiers with "|", as Cloud Control does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from localaws.servicecatalog.exceptions import ResourceNotFoundException, ServiceCatalogError
from localaws.servicecatalog.models import LocalServiceCatalogBackend, backend_for
from localaws.servicecatalog.models.entities import Portfolio, Product

from .base import (
    NeedsReplacement,
    Provisioned,
    Provisioner,
    ProvisionError,
    ResourceContext,
    register,
)


def _backend(ctx: ResourceContext) -> LocalServiceCatalogBackend:
    try:
        return backend_for(ctx.account_id, ctx.region)
    except RuntimeError as err:
        raise ProvisionError(f"{ctx.resource_type}: {err}") from err


@contextmanager
def _reported() -> Iterator[None]:
    """Turn a Service Catalog error into the resource's failure reason."""
    try:
        yield
    except ServiceCatalogError as err:
        raise ProvisionError(f"{err.code}: {err.message}") from err


@contextmanager
def _gone_is_fine() -> Iterator[None]:
    """Deletes succeed when the thing is already gone, as CloudFormation's do."""
    try:
        with _reported():
            yield
    except ProvisionError as err:
        if not isinstance(err.__cause__, ResourceNotFoundException):
            raise


def _required(ctx: ResourceContext, props: Mapping[str, Any], *names: str) -> None:
    missing = [name for name in names if not props.get(name)]
    if missing:
        raise ProvisionError(
            f"{ctx.logical_id} ({ctx.resource_type}) is missing required properties {missing}"
        )


def _flag(value: Any, default: bool = False) -> bool:
    """A Boolean property, which may arrive as true/false or as "true"/"false"."""
    if value is None:
        return default
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _tags(ctx: ResourceContext, props: Mapping[str, Any]) -> dict[str, str]:
    """The stack's propagated tags, then the resource's own Tags."""
    own = {str(tag["Key"]): str(tag["Value"]) for tag in props.get("Tags") or ()}
    return {**ctx.stack_tags, **own}


def _replace_on(changed: Mapping[str, Any], previous: Mapping[str, Any], *create_only: str) -> None:
    if any(changed.get(name) != previous.get(name) for name in create_only):
        raise NeedsReplacement


def _tag_changes(old: dict[str, str], new: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    return {k: v for k, v in new.items() if old.get(k) != v}, [k for k in old if k not in new]


def _with_info_mapping(ctx: ResourceContext, artifact: Mapping[str, Any]) -> dict[str, Any]:
    """The resource schema allows a version's Info as a JSON string as well as a mapping."""
    info = artifact.get("Info")
    if not isinstance(info, str):
        return dict(artifact)
    try:
        return {**artifact, "Info": json.loads(info)}
    except json.JSONDecodeError as err:
        raise ProvisionError(
            f"{ctx.logical_id}: ProvisioningArtifactParameters Info is neither a mapping nor "
            f"JSON ({err}); write it as a mapping with LoadTemplateFromURL"
        ) from err


@register
class PortfolioProvisioner(Provisioner):
    resource_type = "AWS::ServiceCatalog::Portfolio"

    @staticmethod
    def _provisioned(portfolio: Portfolio) -> Provisioned:
        return Provisioned(
            portfolio.id, {"Id": portfolio.id, "PortfolioName": portfolio.display_name}
        )

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        _required(ctx, props, "DisplayName", "ProviderName")
        with _reported():
            portfolio = _backend(ctx).create_portfolio(
                display_name=props["DisplayName"],
                provider_name=props["ProviderName"],
                description=props.get("Description"),
                tags=_tags(ctx, props),
            )
        return self._provisioned(portfolio)

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        _required(ctx, new_props, "DisplayName", "ProviderName")
        backend = _backend(ctx)
        with _reported():
            portfolio = backend.get_portfolio(current.physical_id)
            add, remove = _tag_changes(portfolio.tags, _tags(ctx, new_props))
            portfolio = backend.update_portfolio(
                portfolio.id,
                display_name=new_props["DisplayName"],
                provider_name=new_props["ProviderName"],
                description=new_props.get("Description", ""),
                add_tags=add,
                remove_tags=remove,
            )
        return self._provisioned(portfolio)

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        with _gone_is_fine():
            _backend(ctx).delete_portfolio(current.physical_id)


_PRODUCT_FIELDS = {
    "Name": "name",
    "Owner": "owner",
    "Description": "description",
    "Distributor": "distributor",
    "SupportDescription": "support_description",
    "SupportEmail": "support_email",
    "SupportUrl": "support_url",
}


@register
class CloudFormationProductProvisioner(Provisioner):
    """A product and its versions.

    Versions are matched by (template URL, name), as AWS matches them: a matched version keeps
    its id, a new entry becomes a new version, and a version dropped from the list is deleted
    (AWS keeps only the versions the template lists: to keep a release, keep listing it).
    ReplaceProvisioningArtifacts true replaces every version with new ones.
    ProvisioningArtifactIds/Names list the template's versions in order, comma-separated.
    """

    resource_type = "AWS::ServiceCatalog::CloudFormationProduct"

    @staticmethod
    def _provisioned(product: Product, artifact_ids: list[str]) -> Provisioned:
        names = [product.artifacts[a].name for a in artifact_ids]
        return Provisioned(
            product.id,
            {
                "Id": product.id,
                "ProductName": product.name,
                "ProvisioningArtifactIds": ",".join(artifact_ids),
                "ProvisioningArtifactNames": ",".join(names),
            },
        )

    @staticmethod
    def _artifacts(ctx: ResourceContext, props: Mapping[str, Any]) -> list[dict[str, Any]]:
        artifacts = props.get("ProvisioningArtifactParameters") or []
        if not artifacts:
            raise ProvisionError(
                f"{ctx.logical_id} needs ProvisioningArtifactParameters: at least one version "
                "with Info.LoadTemplateFromURL"
            )
        return [_with_info_mapping(ctx, artifact) for artifact in artifacts]

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        _required(ctx, props, "Name", "Owner")
        artifacts = self._artifacts(ctx, props)
        backend = _backend(ctx)
        with _reported():
            product, first = backend.create_product(
                name=props["Name"],
                owner=props["Owner"],
                product_type=props.get("ProductType") or "CLOUD_FORMATION_TEMPLATE",
                artifact_properties=artifacts[0],
                description=props.get("Description"),
                distributor=props.get("Distributor"),
                support_description=props.get("SupportDescription"),
                support_email=props.get("SupportEmail"),
                support_url=props.get("SupportUrl"),
                tags=_tags(ctx, props),
            )
            try:
                ids = [first.id]
                ids += [
                    backend.create_provisioning_artifact(product.id, a).id for a in artifacts[1:]
                ]
            except ServiceCatalogError:
                # CloudFormation never learns this product's id: do not leave it behind.
                backend.delete_product(product.id)
                raise
        return self._provisioned(product, ids)

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        _required(ctx, new_props, "Name", "Owner")
        old_type = old_props.get("ProductType") or "CLOUD_FORMATION_TEMPLATE"
        if (new_props.get("ProductType") or "CLOUD_FORMATION_TEMPLATE") != old_type:
            raise NeedsReplacement
        artifacts = self._artifacts(ctx, new_props)
        backend = _backend(ctx)
        with _reported():
            product = backend.get_product(current.physical_id)
            add, remove = _tag_changes(product.tags, _tags(ctx, new_props))
            backend.update_product(
                product.id,
                {attr: new_props.get(key, "") for key, attr in _PRODUCT_FIELDS.items()},
                add_tags=add,
                remove_tags=remove,
            )
            ids = self._update_artifacts(
                backend, product, artifacts, _flag(new_props.get("ReplaceProvisioningArtifacts"))
            )
        return self._provisioned(product, ids)

    @staticmethod
    def _update_artifacts(
        backend: LocalServiceCatalogBackend,
        product: Product,
        wanted: list[dict[str, Any]],
        replace: bool,
    ) -> list[str]:
        existing = list(product.artifacts.values())
        ids = []
        for properties in wanted:
            key = (
                (properties.get("Info") or {}).get("LoadTemplateFromURL"),
                properties.get("Name") or "",
            )
            match = (
                None
                if replace
                else next((a for a in existing if (a.template_url, a.name) == key), None)
            )
            if match is None:
                ids.append(backend.create_provisioning_artifact(product.id, properties).id)
                continue
            description = properties.get("Description")
            if description is not None and description != match.description:
                backend.update_provisioning_artifact(product.id, match.id, description=description)
            ids.append(match.id)
        for artifact in existing:
            if artifact.id not in ids:
                backend.delete_provisioning_artifact(product.id, artifact.id)
        return ids

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        with _gone_is_fine():
            _backend(ctx).delete_product(current.physical_id)


@register
class PortfolioProductAssociationProvisioner(Provisioner):
    """Every property is create-only: any change replaces it (the base class's update)."""

    resource_type = "AWS::ServiceCatalog::PortfolioProductAssociation"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        _required(ctx, props, "PortfolioId", "ProductId")
        with _reported():
            _backend(ctx).associate_product_with_portfolio(props["ProductId"], props["PortfolioId"])
        return Provisioned(f"{props['PortfolioId']}|{props['ProductId']}")

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        portfolio_id, _, product_id = current.physical_id.partition("|")
        with _gone_is_fine():
            _backend(ctx).disassociate_product_from_portfolio(product_id, portfolio_id)


@register
class LaunchRoleConstraintProvisioner(Provisioner):
    resource_type = "AWS::ServiceCatalog::LaunchRoleConstraint"

    @staticmethod
    def _parameters(ctx: ResourceContext, props: Mapping[str, Any]) -> str:
        given = {k: props[k] for k in ("RoleArn", "LocalRoleName") if props.get(k)}
        if len(given) != 1:
            raise ProvisionError(
                f"{ctx.logical_id} needs exactly one of RoleArn and LocalRoleName, "
                f"got {sorted(given)}"
            )
        return json.dumps(given)

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        _required(ctx, props, "PortfolioId", "ProductId")
        with _reported():
            constraint = _backend(ctx).create_constraint(
                portfolio_id=props["PortfolioId"],
                product_id=props["ProductId"],
                constraint_type="LAUNCH",
                parameters=self._parameters(ctx, props),
                description=props.get("Description"),
            )
        return Provisioned(constraint.id, {"Id": constraint.id})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        _replace_on(new_props, old_props, "PortfolioId", "ProductId")
        with _reported():
            _backend(ctx).update_constraint(
                current.physical_id,
                description=new_props.get("Description", ""),
                parameters=self._parameters(ctx, new_props),
            )
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        with _gone_is_fine():
            _backend(ctx).delete_constraint(current.physical_id)


@register
class PortfolioPrincipalAssociationProvisioner(Provisioner):
    """Every property is create-only: any change replaces it (the base class's update)."""

    resource_type = "AWS::ServiceCatalog::PortfolioPrincipalAssociation"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        _required(ctx, props, "PortfolioId", "PrincipalARN", "PrincipalType")
        with _reported():
            _backend(ctx).associate_principal_with_portfolio(
                props["PortfolioId"], props["PrincipalARN"], props["PrincipalType"]
            )
        return Provisioned(f"{props['PortfolioId']}|{props['PrincipalARN']}")

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        portfolio_id, _, principal_arn = current.physical_id.partition("|")
        with _gone_is_fine():
            _backend(ctx).disassociate_principal_from_portfolio(
                portfolio_id, principal_arn, props.get("PrincipalType")
            )


@register
class PortfolioShareProvisioner(Provisioner):
    resource_type = "AWS::ServiceCatalog::PortfolioShare"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        _required(ctx, props, "PortfolioId", "AccountId")
        with _reported():
            _backend(ctx).create_portfolio_share(
                props["PortfolioId"],
                account_id=str(props["AccountId"]),
                share_tag_options=_flag(props.get("ShareTagOptions")),
                share_principals=_flag(props.get("SharePrincipals")),
            )
        return Provisioned(f"{props['PortfolioId']}|{props['AccountId']}")

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        _replace_on(new_props, old_props, "PortfolioId", "AccountId")
        with _reported():
            _backend(ctx).update_portfolio_share(
                new_props["PortfolioId"],
                account_id=str(new_props["AccountId"]),
                share_tag_options=_flag(new_props.get("ShareTagOptions")),
                share_principals=_flag(new_props.get("SharePrincipals")),
            )
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        portfolio_id, _, account_id = current.physical_id.partition("|")
        with _gone_is_fine():
            _backend(ctx).delete_portfolio_share(portfolio_id, account_id=account_id)


@register
class TagOptionProvisioner(Provisioner):
    resource_type = "AWS::ServiceCatalog::TagOption"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        _required(ctx, props, "Key", "Value")
        backend = _backend(ctx)
        with _reported():
            option = backend.create_tag_option(str(props["Key"]), str(props["Value"]))
            backend.update_tag_option(option.id, active=_flag(props.get("Active"), default=True))
        return Provisioned(option.id, {"Id": option.id})

    def update(
        self,
        ctx: ResourceContext,
        current: Provisioned,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
    ) -> Provisioned:
        _replace_on(new_props, old_props, "Key", "Value")
        with _reported():
            _backend(ctx).update_tag_option(
                current.physical_id, active=_flag(new_props.get("Active"), default=True)
            )
        return current

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        with _gone_is_fine():
            _backend(ctx).delete_tag_option(current.physical_id)


@register
class TagOptionAssociationProvisioner(Provisioner):
    """Every property is create-only: any change replaces it (the base class's update)."""

    resource_type = "AWS::ServiceCatalog::TagOptionAssociation"

    def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Provisioned:
        _required(ctx, props, "TagOptionId", "ResourceId")
        with _reported():
            _backend(ctx).associate_tag_option_with_resource(
                props["ResourceId"], props["TagOptionId"]
            )
        return Provisioned(f"{props['TagOptionId']}|{props['ResourceId']}")

    def delete(self, ctx: ResourceContext, current: Provisioned, props: dict[str, Any]) -> None:
        tag_option_id, _, resource_id = current.physical_id.partition("|")
        with _gone_is_fine():
            _backend(ctx).disassociate_tag_option_from_resource(resource_id, tag_option_id)
