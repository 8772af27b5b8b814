"""The end user's half: launch paths, parameters, provisioning, and what has been launched."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from moto.cloudformation.exceptions import CloudFormationError
from moto.utilities.utils import get_partition

from localaws import s3urls
from localaws.access import role_session_arn
from localaws.servicecatalog.exceptions import (
    DuplicateResourceException,
    InvalidParametersException,
    ResourceNotFoundException,
)
from localaws.servicecatalog.principals import Caller, role_arn_for_name
from localaws.servicecatalog.provisioning import (
    PROVISION,
    TERMINATE,
    UPDATE,
    ProvisionedProduct,
    Record,
    acknowledged,
    as_caller,
    cloudformation,
    stack_tags,
)
from localaws.servicecatalog.template_copy import put_copy, read_copy
from localaws.servicecatalog.templates import ProductTemplate

from .admin import AdminMixin, _launch_role_reference, _product_matches
from .entities import (
    Portfolio,
    Product,
    ProvisioningArtifact,
)

_PP_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}")


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


class EndUserMixin(AdminMixin):
    """The end-user operations; they read the admin objects `AdminMixin` keeps."""

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
            body = self._stack_template(caller, pp, record, artifact)
            if body is None:
                self._start(pp, record)
                return record
            try:
                backend = cloudformation(self.account_id, self.region_name)
                stack = backend.create_stack(
                    name=pp.stack_name,
                    template=body,
                    parameters=values,
                    tags=stack_tags(pp, record, portfolio.arn, product.arn),
                    role_arn=pp.launch_role_arn,
                    **as_caller(backend, caller.credentials_arn),
                    **acknowledged(backend),
                )
            except CloudFormationError as err:
                raise InvalidParametersException(err.message) from err
            pp.stack_id = record.stack_id = stack.stack_id
            self._start(pp, record)
            return record

        record = self._once("ProvisionProduct", token, launch)
        return self.get_record(record.id)

    def _stack_template(
        self,
        caller: Caller,
        pp: ProvisionedProduct,
        record: Record,
        artifact: ProvisioningArtifact,
    ) -> str | None:
        """The template a record's stack operation uses, as AWS gets it to CloudFormation:
        copied into Service Catalog's bucket and read from there by the launch role (without a
        launch constraint, by the end user), which needs `s3:GetObject` on the tagged copy.
        A denied read fails the record (None), with S3's AccessDenied among its errors: the
        request was accepted, and CloudFormation's read is what fails."""
        partition = get_partition(self.region_name)
        url = put_copy(
            account_id=self.account_id,
            region=self.region_name,
            partition=partition,
            provisioned_product_id=pp.id,
            record_id=record.id,
            body=artifact.template_body,
        )
        role = record.launch_role_arn
        try:
            return read_copy(
                url,
                principal_arn=role_session_arn(role) if role else caller.session_arn,
                account_id=self.account_id,
                partition=partition,
                stack=pp.stack_name,
            )
        except s3urls.TemplateAccessDenied as denied:
            record.fail("AccessDenied", str(denied))
            return None
        except s3urls.TemplateUrlError as err:
            raise InvalidParametersException(str(err)) from err

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
        """The provisioned product's stack, or None if it was deleted behind our back (or
        never made: its launch failed before CloudFormation)."""
        if pp.stack_id is None:
            return None
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
            body = self._stack_template(caller, pp, record, artifact)
            if body is None:
                self._start(pp, record)
                return record
            try:
                backend = cloudformation(self.account_id, self.region_name)
                backend.update_stack(
                    name=pp.stack_id,
                    template=body,
                    role_arn=record.launch_role_arn,
                    parameters=[
                        {"ParameterKey": k, "ParameterValue": v} for k, v in values.items()
                    ],
                    tags=stack_tags(pp, record, portfolio.arn, product.arn),
                    **as_caller(backend, caller.credentials_arn),
                    **acknowledged(backend),
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
        caller: Caller,
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
                    backend = cloudformation(self.account_id, self.region_name)
                    backend.delete_stack(pp.stack_id, **as_caller(backend, caller.credentials_arn))
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
