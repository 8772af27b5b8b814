"""With enforcement on, Service Catalog asks what AWS asks of an end user: the
`servicecatalog:*` action in the user's identity policies (AWSServiceCatalogEndUserFullAccess),
and then the user's principal associated with the product's portfolio."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

END_USER_FULL = "arn:aws:iam::aws:policy/AWSServiceCatalogEndUserFullAccess"
END_USER_READ_ONLY = "arn:aws:iam::aws:policy/AWSServiceCatalogEndUserReadOnlyAccess"

PARAMETER = """
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties: {Name: NAME, Type: String, Value: launched}
"""

LAUNCH_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ssm:PutParameter",
                "ssm:GetParameters",
                "ssm:DeleteParameter",
                "ssm:AddTagsToResource",
            ],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}
            },
        },
    ],
}


@pytest.fixture(scope="module")
def portfolio(enforcing: LocalAwsHandle, upload: Callable[..., str]) -> dict[str, str]:
    """A portfolio with one small product, launched as a launch role that may make it."""
    role = enforcing.iam_role(
        "launch", {"Service": "servicecatalog.amazonaws.com"}, *LAUNCH_ROLE_POLICY["Statement"]
    ).rsplit("/", 1)[1]
    sc = enforcing.client("servicecatalog")
    name = unique("setting")
    created = sc.create_product(
        Name=name,
        Owner="tests",
        ProductType="CLOUD_FORMATION_TEMPLATE",
        ProvisioningArtifactParameters={
            "Name": "v1",
            "Info": {"LoadTemplateFromURL": upload(PARAMETER.replace("NAME", unique("/sc-iam/")))},
        },
    )
    product = created["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    portfolio_id = sc.create_portfolio(DisplayName=unique("p"), ProviderName="tests")[
        "PortfolioDetail"
    ]["Id"]
    sc.associate_product_with_portfolio(ProductId=product, PortfolioId=portfolio_id)
    sc.create_constraint(
        PortfolioId=portfolio_id,
        ProductId=product,
        Type="LAUNCH",
        Parameters=json.dumps({"LocalRoleName": role}),
    )
    return {
        "id": portfolio_id,
        "product": product,
        "name": name,
        "artifact": created["ProvisioningArtifactDetail"]["Id"],
    }


def _user(aws: LocalAwsHandle, portfolio: dict[str, str] | None, *policies: str) -> tuple[str, Any]:
    """A new IAM user with `policies` attached, associated with `portfolio` if given: its ARN
    and its Service Catalog client."""
    arn, session = aws.iam_user("sc-user")
    for policy in policies:
        aws.client("iam").attach_user_policy(UserName=arn.rsplit("/", 1)[1], PolicyArn=policy)
    if portfolio is not None:
        aws.client("servicecatalog").associate_principal_with_portfolio(
            PortfolioId=portfolio["id"], PrincipalARN=arn, PrincipalType="IAM"
        )
    return arn, session.client("servicecatalog", endpoint_url=aws.endpoint_url)


def _denied(call: Callable[..., Any], **kwargs: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException", error
    return str(error["Message"])


def _launch(sc: Any, portfolio: dict[str, str]) -> dict[str, Any]:
    started = sc.provision_product(
        ProductId=portfolio["product"],
        ProvisioningArtifactId=portfolio["artifact"],
        ProvisionedProductName=unique("pp"),
        ProvisionToken=unique("t"),
    )
    return _settled(sc, started["RecordDetail"]["RecordId"])


def _settled(sc: Any, record_id: str) -> dict[str, Any]:
    for _ in range(1200):
        detail: dict[str, Any] = sc.describe_record(Id=record_id)["RecordDetail"]
        if detail["Status"] in ("SUCCEEDED", "FAILED"):
            return detail
    raise AssertionError(f"record {record_id} never settled")


def test_an_associated_user_needs_the_service_catalog_actions(
    enforcing: LocalAwsHandle, portfolio: dict[str, str]
) -> None:
    """The principal association alone launches nothing: each end-user call is refused with
    AWS's message until the user has AWSServiceCatalogEndUserFullAccess; then it launches,
    reads its record and terminates its launch."""
    arn, sc = _user(enforcing, portfolio)
    product_arn = f"arn:aws:catalog:{enforcing.region}:123456789012:product/{portfolio['product']}"
    message = _denied(
        sc.provision_product,
        ProductId=portfolio["product"],
        ProvisioningArtifactId=portfolio["artifact"],
        ProvisionedProductName=unique("pp"),
        ProvisionToken=unique("t"),
    )
    assert message == (
        f"User: {arn} is not authorized to perform: servicecatalog:ProvisionProduct on "
        f"resource: {product_arn} because no identity-based policy allows the "
        "servicecatalog:ProvisionProduct action"
    )
    assert "servicecatalog:SearchProducts" in _denied(sc.search_products)
    assert "servicecatalog:DescribeProduct" in _denied(sc.describe_product, Id=portfolio["product"])

    enforcing.client("iam").attach_user_policy(
        UserName=arn.rsplit("/", 1)[1], PolicyArn=END_USER_FULL
    )
    found = sc.search_products(Filters={"FullTextSearch": [portfolio["name"]]})
    assert [p["ProductId"] for p in found["ProductViewSummaries"]] == [portfolio["product"]]
    launched = _launch(sc, portfolio)
    assert launched["Status"] == "SUCCEEDED", launched.get("RecordErrors")
    ended = sc.terminate_provisioned_product(
        ProvisionedProductId=launched["ProvisionedProductId"], TerminateToken=unique("t")
    )
    assert _settled(sc, ended["RecordDetail"]["RecordId"])["Status"] == "SUCCEEDED"


def test_the_policy_alone_reaches_no_portfolio_and_no_one_elses_launch(
    enforcing: LocalAwsHandle, portfolio: dict[str, str]
) -> None:
    """With the end-user policy but no principal association the product does not exist for
    the user; AWSServiceCatalogEndUserFullAccess's userLevel "self" keeps a user away from
    another user's launch and from the account's list; the read-only policy launches nothing."""
    _, owner = _user(enforcing, portfolio, END_USER_FULL)
    launched = _launch(owner, portfolio)
    assert launched["Status"] == "SUCCEEDED", launched.get("RecordErrors")
    pp = launched["ProvisionedProductId"]

    _, outsider = _user(enforcing, None, END_USER_FULL)
    assert outsider.search_products()["ProductViewSummaries"] == []
    with pytest.raises(ClientError) as refused:
        outsider.describe_product(Id=portfolio["product"])
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"

    other_arn, other = _user(enforcing, portfolio, END_USER_FULL)
    message = _denied(other.terminate_provisioned_product, ProvisionedProductId=pp)
    assert message.startswith(
        f"User: {other_arn} is not authorized to perform: "
        "servicecatalog:TerminateProvisionedProduct"
    )
    _denied(other.describe_record, Id=launched["RecordId"])
    _denied(
        other.search_provisioned_products, AccessLevelFilter={"Key": "Account", "Value": "self"}
    )
    assert other.search_provisioned_products()["ProvisionedProducts"] == []

    _, reader = _user(enforcing, portfolio, END_USER_READ_ONLY)
    assert reader.describe_product(Id=portfolio["product"])["ProductViewSummary"]
    _denied(
        reader.provision_product,
        ProductId=portfolio["product"],
        ProvisioningArtifactId=portfolio["artifact"],
        ProvisionedProductName=unique("pp"),
        ProvisionToken=unique("t"),
    )

    ended = owner.terminate_provisioned_product(ProvisionedProductId=pp, TerminateToken="end")
    assert _settled(owner, ended["RecordDetail"]["RecordId"])["Status"] == "SUCCEEDED"
