"""Service Catalog over the whole local AWS (its CloudFormation engine): launches of products
whose nested stacks make IAM resources, the end-user lookups AWS documents, and search."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

NESTED_ROLE = """
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: {name}
      AssumeRolePolicyDocument: {{Version: '2012-10-17', Statement: []}}
"""

ROOT = """
Resources:
  Roles:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: {url}
"""

TRUSTS_ITS_ACCOUNT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
LISTS_SHARES = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "servicecatalog:ListAcceptedPortfolioShares",
                "Resource": "*",
            }
        ],
    }
)


@dataclass
class Launchable:
    sc: Any
    portfolio_id: str
    product_id: str
    view_id: str
    artifact_id: str
    role_name: str


@pytest.fixture(scope="module")
def launchable(local_aws: LocalAwsHandle, upload: Callable[..., str]) -> Launchable:
    """A portfolio with one product whose nested stack makes a named IAM role; the account's
    own credentials (its root, for the local AWS) see every portfolio."""
    sc = local_aws.client("servicecatalog")
    role_name = unique("nested-role")
    root = upload(ROOT.format(url=upload(NESTED_ROLE.format(name=role_name))))
    portfolio = sc.create_portfolio(DisplayName=unique("strict"), ProviderName="tests")
    created = sc.create_product(
        Name=unique("Nested roles"),
        Owner="Platform team",
        Description="A queue with its machine roles",
        Distributor="Example Corp",
        ProductType="CLOUD_FORMATION_TEMPLATE",
        ProvisioningArtifactParameters={"Name": "v1", "Info": {"LoadTemplateFromURL": root}},
    )
    summary = created["ProductViewDetail"]["ProductViewSummary"]
    portfolio_id = portfolio["PortfolioDetail"]["Id"]
    sc.associate_product_with_portfolio(ProductId=summary["ProductId"], PortfolioId=portfolio_id)
    return Launchable(
        sc=sc,
        portfolio_id=portfolio_id,
        product_id=summary["ProductId"],
        view_id=summary["Id"],
        artifact_id=created["ProvisioningArtifactDetail"]["Id"],
        role_name=role_name,
    )


def _settled(sc: Any, record_id: str) -> dict[str, Any]:
    for _ in range(600):
        detail: dict[str, Any] = sc.describe_record(Id=record_id)["RecordDetail"]
        if detail["Status"] in ("SUCCEEDED", "FAILED"):
            return detail
    raise AssertionError(f"record {record_id} never settled")


def test_a_launch_acknowledges_capabilities_for_nested_iam_resources(
    local_aws: LocalAwsHandle, launchable: Launchable
) -> None:
    """ProvisionProduct takes no Capabilities (Service Catalog API Reference): Service Catalog
    acknowledges them itself, and they reach nested stacks, which CloudFormation otherwise
    fails with "Requires capabilities" (AWS::CloudFormation::Stack)."""
    sc = launchable.sc
    record = sc.provision_product(
        ProductId=launchable.product_id,
        ProvisioningArtifactId=launchable.artifact_id,
        ProvisionedProductName=unique("nested"),
    )["RecordDetail"]
    detail = _settled(sc, record["RecordId"])
    assert detail["Status"] == "SUCCEEDED", detail.get("RecordErrors")
    local_aws.client("iam").get_role(RoleName=launchable.role_name)
    terminated = sc.terminate_provisioned_product(
        ProvisionedProductId=record["ProvisionedProductId"], TerminateToken=unique("t")
    )["RecordDetail"]
    assert _settled(sc, terminated["RecordId"])["Status"] == "SUCCEEDED"


def _error(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_end_user_lookups_answer_as_aws_documents(
    local_aws: LocalAwsHandle, launchable: Launchable
) -> None:
    """Service Catalog API Reference: DescribeProductView takes the product view id
    (prodview-...) and answers its ProductViewSummary and versions; ListServiceActionsFor-
    ProvisioningArtifact lists a version's service actions (none here: the local AWS has no
    service actions), ResourceNotFoundException for an unknown version; DescribeProvisioned-
    ProductPlan answers ResourceNotFoundException for a plan id that does not exist (the local
    AWS makes no plans); ListAcceptedPortfolioShares lists portfolios another account shared
    with this one (IMPORTED, the default)."""
    sc = launchable.sc
    view = sc.describe_product_view(Id=launchable.view_id)
    assert view["ProductViewSummary"]["ProductId"] == launchable.product_id
    assert [a["Id"] for a in view["ProvisioningArtifacts"]] == [launchable.artifact_id]
    status, code, _ = _error(lambda: sc.describe_product_view(Id="prodview-unknown00000"))
    assert (status, code) == (400, "ResourceNotFoundException")

    actions = sc.list_service_actions_for_provisioning_artifact(
        ProductId=launchable.product_id, ProvisioningArtifactId=launchable.artifact_id
    )
    assert actions["ServiceActionSummaries"] == []
    _, code, _ = _error(
        lambda: sc.list_service_actions_for_provisioning_artifact(
            ProductId=launchable.product_id, ProvisioningArtifactId="pa-unknown000000"
        )
    )
    assert code == "ResourceNotFoundException"

    _, code, message = _error(lambda: sc.describe_provisioned_product_plan(PlanId="plan-nope"))
    assert code == "ResourceNotFoundException"
    assert "plan-nope" in message

    other_account = "210987654321"
    sc.create_portfolio_share(PortfolioId=launchable.portfolio_id, AccountId=other_account)
    # The other account's catalog admin, a role that may list what was shared with it (made
    # with that role's own session, as the account's administrator would make it: the local
    # AWS does not authorize IAM's API yet).
    role = unique("catalog-admin")
    credentials = local_aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{other_account}:role/{role}", RoleSessionName="recipient"
    )["Credentials"]
    keys = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    iam = local_aws.client("iam", **keys)
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUSTS_ITS_ACCOUNT)
    iam.put_role_policy(RoleName=role, PolicyName="shares", PolicyDocument=LISTS_SHARES)
    recipient = local_aws.client("servicecatalog", **keys)
    shared = recipient.list_accepted_portfolio_shares()["PortfolioDetails"]
    assert [p["Id"] for p in shared] == [launchable.portfolio_id]
    assert sc.list_accepted_portfolio_shares()["PortfolioDetails"] == []
    organizations = recipient.list_accepted_portfolio_shares(PortfolioShareType="AWS_ORGANIZATIONS")
    assert organizations["PortfolioDetails"] == []
    sc.delete_portfolio_share(PortfolioId=launchable.portfolio_id, AccountId=other_account)


def test_search_products_filters_as_aws_documents(launchable: Launchable) -> None:
    """SearchProducts (Service Catalog API Reference): Filters by FullTextSearch, Owner,
    ProductType and SourceProductId; without filters, every product the caller can launch."""
    sc = launchable.sc

    def found(**filters: list[str]) -> set[str]:
        ids: set[str] = set()
        request: dict[str, Any] = {"Filters": filters, "PageSize": 20}
        while True:
            page = sc.search_products(**request)
            ids.update(p["ProductId"] for p in page["ProductViewSummaries"])
            if not page.get("NextPageToken"):
                return ids
            request["PageToken"] = page["NextPageToken"]

    product = launchable.product_id
    assert product in found()
    assert product in found(FullTextSearch=["machine roles"])
    assert product in found(FullTextSearch=["EXAMPLE corp"])
    assert product not in found(FullTextSearch=["no product says this"])
    assert product in found(Owner=["Platform team"])
    assert product not in found(Owner=["Someone else"])
    assert product in found(SourceProductId=[product])
