"""Service Catalog on the local AWS: admin flow, end-user launches, CloudFormation resource types.

Everything goes through boto3 against an in-process moto server with the extension installed,
except the resource-type tests, which call the provisioners as the stack engine does and read
the result back through boto3. The canaries at the end show the stock moto gaps the extension
fills: when one fails, moto has caught up and that part of the extension can go.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from localaws import access, s3_objects, servicecatalog
from localaws.cloudformation.provisioners.base import (
    NeedsReplacement,
    Provisioned,
    ProvisionError,
    ResourceContext,
)
from localaws.cloudformation.provisioners.registry import provisioner_for
from moto import mock_aws
from moto.cloudformation.models import CloudFormationBackend, Event, cloudformation_backends
from moto.server import ThreadedMotoServer
from moto.servicecatalog.models import ServiceCatalogBackend, servicecatalog_backends

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "product-templates"
FIXTURES = Path(__file__).parent / "fixtures" / "servicecatalog"

pytestmark = pytest.mark.localaws


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            env.setenv(name, value)
        servicecatalog.install()
        s3_objects.install()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture
def aws(endpoint: str) -> Callable[..., Any]:
    """A boto3 client factory for a freshly reset local AWS; pass keys to act as someone else."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))

    def client(service: str, keys: tuple[str, str] | None = None) -> Any:
        access_key, secret = keys or ("testing", "testing")
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
        )

    return client


def upload(aws: Callable[..., Any], name: str, key: str | None = None) -> str:
    s3 = aws("s3")
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=BUCKET, Key=key or name, Body=(FIXTURES / name).read_bytes())
    return f"https://{BUCKET}.s3.amazonaws.com/{key or name}"


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


@dataclass
class Catalog:
    """A portfolio with one product (versions v1, v2), a launch role and an end user."""

    portfolio_id: str
    product_id: str
    v1: str
    v2: str
    user_keys: tuple[str, str]
    user_arn: str


def iam_user(aws: Callable[..., Any], name: str) -> tuple[tuple[str, str], str]:
    iam = aws("iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return (key["AccessKeyId"], key["SecretAccessKey"]), arn


@pytest.fixture
def catalog(aws: Callable[..., Any]) -> Catalog:
    """What a platform stack sets up, made through the admin API."""
    sc = aws("servicecatalog")
    aws("iam").create_role(RoleName="SCLaunchRole", AssumeRolePolicyDocument="{}")
    portfolio = sc.create_portfolio(
        DisplayName="Example", ProviderName="Example", Tags=[{"Key": "team", "Value": "ml"}]
    )["PortfolioDetail"]
    created = sc.create_product(
        Name="Queue",
        Owner="Example",
        ProductType="CLOUD_FORMATION_TEMPLATE",
        ProvisioningArtifactParameters={
            "Name": "v1",
            "Info": {"LoadTemplateFromURL": upload(aws, "queue-v1.yml")},
        },
    )
    product_id = created["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    v2 = sc.create_provisioning_artifact(
        ProductId=product_id,
        Parameters={"Name": "v2", "Info": {"LoadTemplateFromURL": upload(aws, "queue-v2.yml")}},
    )["ProvisioningArtifactDetail"]["Id"]
    sc.associate_product_with_portfolio(ProductId=product_id, PortfolioId=portfolio["Id"])
    sc.create_constraint(
        PortfolioId=portfolio["Id"],
        ProductId=product_id,
        Type="LAUNCH",
        Parameters=json.dumps({"LocalRoleName": "SCLaunchRole"}),
        Description="Launch as SCLaunchRole",
    )
    keys, arn = iam_user(aws, "end-user")
    sc.associate_principal_with_portfolio(
        PortfolioId=portfolio["Id"], PrincipalARN=arn, PrincipalType="IAM"
    )
    option = sc.create_tag_option(Key="CostCenter", Value="ml-platform")["TagOptionDetail"]
    sc.associate_tag_option_with_resource(ResourceId=portfolio["Id"], TagOptionId=option["Id"])
    return Catalog(
        portfolio_id=portfolio["Id"],
        product_id=product_id,
        v1=created["ProvisioningArtifactDetail"]["Id"],
        v2=v2,
        user_keys=keys,
        user_arn=arn,
    )


def provision(sc: Any, catalog: Catalog, name: str = "queue", **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ProductId": catalog.product_id,
        "ProvisioningArtifactId": catalog.v1,
        "ProvisionedProductName": name,
        "ProvisioningParameters": [{"Key": "QueueSuffix", "Value": "orders"}],
        **overrides,
    }
    record: dict[str, Any] = sc.provision_product(**request)["RecordDetail"]
    return record


def settled(sc: Any, record_id: str) -> dict[str, Any]:
    """DescribeRecord until the record is final, as a client of the asynchronous API must."""
    for _ in range(100):
        described: dict[str, Any] = sc.describe_record(Id=record_id)
        if described["RecordDetail"]["Status"] in ("SUCCEEDED", "FAILED"):
            return described
    raise AssertionError(f"record {record_id} never finished: {described['RecordDetail']}")


def outputs_of(described: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in described["RecordOutputs"]}


# ---- admin flow ------------------------------------------------------------------------------


def test_admin_flow_builds_a_catalog_with_aws_shaped_ids(
    aws: Callable[..., Any], catalog: Catalog
) -> None:
    sc = aws("servicecatalog")
    assert re.fullmatch(r"port-[a-z0-9]{13}", catalog.portfolio_id)
    assert re.fullmatch(r"prod-[a-z0-9]{13}", catalog.product_id)
    assert re.fullmatch(r"pa-[a-z0-9]{13}", catalog.v1)

    admin_view = sc.describe_product_as_admin(Id=catalog.product_id)
    assert [a["Name"] for a in admin_view["ProvisioningArtifactSummaries"]] == ["v1", "v2"]
    assert admin_view["ProductViewDetail"]["ProductARN"].endswith(f":product/{catalog.product_id}")
    found = sc.search_products_as_admin(PortfolioId=catalog.portfolio_id)["ProductViewDetails"]
    assert [p["ProductViewSummary"]["ProductId"] for p in found] == [catalog.product_id]
    assert [
        p["Id"]
        for p in sc.list_portfolios_for_product(ProductId=catalog.product_id)["PortfolioDetails"]
    ] == [catalog.portfolio_id]

    (constraint,) = sc.list_constraints_for_portfolio(PortfolioId=catalog.portfolio_id)[
        "ConstraintDetails"
    ]
    assert re.fullmatch(r"cons-[a-z0-9]{13}", constraint["ConstraintId"])
    described = sc.describe_constraint(Id=constraint["ConstraintId"])
    assert json.loads(described["ConstraintParameters"]) == {"LocalRoleName": "SCLaunchRole"}
    assert described["ConstraintDetail"]["Type"] == "LAUNCH"

    principals = sc.list_principals_for_portfolio(PortfolioId=catalog.portfolio_id)["Principals"]
    assert principals == [{"PrincipalARN": catalog.user_arn, "PrincipalType": "IAM"}]

    portfolio = sc.describe_portfolio(Id=catalog.portfolio_id)
    assert portfolio["Tags"] == [{"Key": "team", "Value": "ml"}]
    (option,) = portfolio["TagOptions"]
    assert re.fullmatch(r"tag-[a-z0-9]{13}", option["Id"])
    assert sc.list_tag_options(Filters={"Key": "CostCenter"})["TagOptionDetails"] == [option]
    assert error_of(lambda: sc.create_tag_option(Key="CostCenter", Value="ml-platform"))[0] == (
        "DuplicateResourceException"
    )


def test_admin_refusals_name_the_problem(aws: Callable[..., Any], catalog: Catalog) -> None:
    sc = aws("servicecatalog")
    code, message = error_of(
        lambda: sc.create_constraint(
            PortfolioId=catalog.portfolio_id,
            ProductId=catalog.product_id,
            Type="LAUNCH",
            Parameters=json.dumps({"RoleArn": "arn:aws:iam::123456789012:role/Other"}),
        )
    )
    assert code == "DuplicateResourceException"
    assert "already has LAUNCH constraint" in message

    other = sc.create_portfolio(DisplayName="Other", ProviderName="x")["PortfolioDetail"]["Id"]
    code, message = error_of(
        lambda: sc.create_constraint(
            PortfolioId=other,
            ProductId=catalog.product_id,
            Type="LAUNCH",
            Parameters=json.dumps({"LocalRoleName": "SCLaunchRole"}),
        )
    )
    assert code == "ResourceNotFoundException"
    assert "associate it first" in message

    sc.associate_product_with_portfolio(ProductId=catalog.product_id, PortfolioId=other)
    for parameters, expected in [
        ("not json", "not valid JSON"),
        (json.dumps({"RoleArn": "r", "LocalRoleName": "n"}), "exactly one of RoleArn"),
        (json.dumps({"RoleArn": "launch-role"}), "RoleArn 'launch-role' is not valid"),
        (json.dumps({"Role": "x"}), "Unknown LAUNCH parameters ['Role']"),
    ]:
        code, message = error_of(
            lambda p=parameters: sc.create_constraint(
                PortfolioId=other, ProductId=catalog.product_id, Type="LAUNCH", Parameters=p
            )
        )
        assert (code, expected in message) == ("InvalidParametersException", True), message

    code, message = error_of(
        lambda: sc.associate_principal_with_portfolio(
            PortfolioId=other,
            PrincipalARN="arn:aws:iam::123456789012:role/Admin*",
            PrincipalType="IAM",
        )
    )
    assert code == "InvalidParametersException"
    assert "IAM_PATTERN" in message
    code, message = error_of(lambda: sc.delete_portfolio(Id=catalog.portfolio_id))
    assert code == "ResourceInUseException"
    assert "products" in message
    code, _ = error_of(lambda: sc.delete_product(Id=catalog.product_id))
    assert code == "ResourceInUseException"
    assert error_of(lambda: sc.describe_portfolio(Id="port-doesnotexist1"))[0] == (
        "ResourceNotFoundException"
    )


def test_inactive_tag_options_cannot_be_associated(
    aws: Callable[..., Any], catalog: Catalog
) -> None:
    sc = aws("servicecatalog")
    option = sc.create_tag_option(Key="Stage", Value="beta")["TagOptionDetail"]["Id"]
    sc.update_tag_option(Id=option, Active=False)
    code, message = error_of(
        lambda: sc.associate_tag_option_with_resource(
            ResourceId=catalog.product_id, TagOptionId=option
        )
    )
    assert code == "InvalidStateException"
    assert "activate it" in message
    assert sc.list_tag_options(Filters={"Active": False})["TagOptionDetails"][0]["Id"] == option


def test_list_operations_page_through_results(aws: Callable[..., Any]) -> None:
    sc = aws("servicecatalog")
    for n in range(5):
        sc.create_portfolio(DisplayName=f"P{n}", ProviderName="me")
    pages = sc.get_paginator("list_portfolios").paginate(PaginationConfig={"PageSize": 2})
    assert [[p["DisplayName"] for p in page["PortfolioDetails"]] for page in pages] == [
        ["P0", "P1"],
        ["P2", "P3"],
        ["P4"],
    ]


def test_idempotency_tokens_return_the_first_result(aws: Callable[..., Any]) -> None:
    sc = aws("servicecatalog")
    first = sc.create_portfolio(DisplayName="P", ProviderName="me", IdempotencyToken="once")
    again = sc.create_portfolio(DisplayName="P", ProviderName="me", IdempotencyToken="once")
    assert first["PortfolioDetail"]["Id"] == again["PortfolioDetail"]["Id"]
    assert len(sc.list_portfolios()["PortfolioDetails"]) == 1


@pytest.mark.parametrize(
    "url_of",
    [
        lambda endpoint, key: f"https://{BUCKET}.s3.amazonaws.com/{key}",
        lambda endpoint, key: f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/{key}",
        lambda endpoint, key: f"https://s3.eu-west-1.amazonaws.com/{BUCKET}/{key}",
        lambda endpoint, key: f"{endpoint}/{BUCKET}/{key}",
        lambda endpoint, key: f"{endpoint.replace('127.0.0.1', 'localhost')}/{BUCKET}/{key}",
    ],
    ids=["virtual-host", "virtual-host-regional", "path-style", "127.0.0.1", "localhost"],
)
def test_artifact_templates_are_read_from_the_local_s3(
    aws: Callable[..., Any], endpoint: str, url_of: Callable[[str, str], str]
) -> None:
    upload(aws, "queue-v1.yml", key="releases/1.0/queue.yml")
    sc = aws("servicecatalog")
    created = sc.create_product(
        Name="Queue",
        Owner="me",
        ProductType="CLOUD_FORMATION_TEMPLATE",
        ProvisioningArtifactParameters={
            "Name": "v1",
            "Info": {"LoadTemplateFromURL": url_of(endpoint, "releases/1.0/queue.yml")},
        },
    )
    described = sc.describe_provisioning_artifact(
        ProductId=created["ProductViewDetail"]["ProductViewSummary"]["ProductId"],
        ProvisioningArtifactId=created["ProvisioningArtifactDetail"]["Id"],
        IncludeProvisioningArtifactParameters=True,
    )
    assert [p["ParameterKey"] for p in described["ProvisioningArtifactParameters"]] == [
        "QueueSuffix",
        "Environment",
        "ApiKey",
    ]


def test_artifact_templates_that_cannot_be_read_are_refused(aws: Callable[..., Any]) -> None:
    upload(aws, "queue-v1.yml")
    aws("s3").put_object(Bucket=BUCKET, Key="notes.txt", Body=b"just: words")
    sc = aws("servicecatalog")
    for url, expected in [
        ("https://example.com/queue.yml", "must be an Amazon S3 URL"),
        (f"https://{BUCKET}.s3.amazonaws.com/missing.yml", "missing.yml: no such object"),
        ("https://nobucket.s3.amazonaws.com/queue.yml", "The specified bucket does not exist"),
        (f"https://{BUCKET}.s3.amazonaws.com/notes.txt", "it has no Resources"),
    ]:
        code, message = error_of(
            lambda u=url: sc.create_product(
                Name="Queue",
                Owner="me",
                ProductType="CLOUD_FORMATION_TEMPLATE",
                ProvisioningArtifactParameters={"Name": "v1", "Info": {"LoadTemplateFromURL": u}},
            )
        )
        assert (code, expected in message) == ("InvalidParametersException", True), message
    assert sc.search_products_as_admin()["ProductViewDetails"] == []


def test_provisioning_artifacts_can_be_retired(aws: Callable[..., Any], catalog: Catalog) -> None:
    sc = aws("servicecatalog")
    updated = sc.update_provisioning_artifact(
        ProductId=catalog.product_id, ProvisioningArtifactId=catalog.v1, Guidance="DEPRECATED"
    )
    assert updated["ProvisioningArtifactDetail"]["Guidance"] == "DEPRECATED"
    code, message = error_of(lambda: provision(sc, catalog))
    assert code == "InvalidParametersException"
    assert "deprecated" in message

    sc.update_provisioning_artifact(
        ProductId=catalog.product_id, ProvisioningArtifactId=catalog.v1, Active=False
    )
    end_user = aws("servicecatalog", catalog.user_keys)
    artifacts = end_user.describe_product(Id=catalog.product_id)["ProvisioningArtifacts"]
    assert [a["Id"] for a in artifacts] == [catalog.v2]

    sc.delete_provisioning_artifact(ProductId=catalog.product_id, ProvisioningArtifactId=catalog.v1)
    details = sc.list_provisioning_artifacts(ProductId=catalog.product_id)
    assert [a["Id"] for a in details["ProvisioningArtifactDetails"]] == [catalog.v2]
    code, message = error_of(
        lambda: sc.delete_provisioning_artifact(
            ProductId=catalog.product_id, ProvisioningArtifactId=catalog.v2
        )
    )
    assert code == "InvalidParametersException"
    assert "last provisioning artifact" in message


def test_portfolio_shares(aws: Callable[..., Any], catalog: Catalog) -> None:
    sc = aws("servicecatalog")
    sc.create_portfolio_share(
        PortfolioId=catalog.portfolio_id, AccountId="210987654321", ShareTagOptions=True
    )
    shares = sc.describe_portfolio_shares(PortfolioId=catalog.portfolio_id, Type="ACCOUNT")
    assert [(s["PrincipalId"], s["ShareTagOptions"]) for s in shares["PortfolioShareDetails"]] == [
        ("210987654321", True)
    ]
    assert sc.list_portfolio_access(PortfolioId=catalog.portfolio_id)["AccountIds"] == [
        "210987654321"
    ]
    code, _ = error_of(
        lambda: sc.create_portfolio_share(PortfolioId=catalog.portfolio_id, AccountId=ACCOUNT)
    )
    assert code == "InvalidParametersException"
    sc.delete_portfolio_share(PortfolioId=catalog.portfolio_id, AccountId="210987654321")
    assert sc.list_portfolio_access(PortfolioId=catalog.portfolio_id)["AccountIds"] == []


# ---- end users -------------------------------------------------------------------------------


def test_launch_paths_follow_principal_associations(
    aws: Callable[..., Any], catalog: Catalog
) -> None:
    member = aws("servicecatalog", catalog.user_keys)
    (path,) = member.list_launch_paths(ProductId=catalog.product_id)["LaunchPathSummaries"]
    assert path["Id"] == catalog.portfolio_id
    assert path["Name"] == "Example"
    assert path["ConstraintSummaries"] == [
        {"Type": "LAUNCH", "Description": "Launch as SCLaunchRole"}
    ]
    assert [p["ProductId"] for p in member.search_products()["ProductViewSummaries"]] == [
        catalog.product_id
    ]

    outsider_keys, _ = iam_user(aws, "outsider")
    outsider = aws("servicecatalog", outsider_keys)
    assert outsider.list_launch_paths(ProductId=catalog.product_id)["LaunchPathSummaries"] == []
    assert outsider.search_products()["ProductViewSummaries"] == []
    code, message = error_of(lambda: provision(outsider, catalog))
    assert code == "InvalidParametersException"
    assert message == f"No launch paths found for resource: {catalog.product_id}"

    # A wildcard association, or one of the user's groups, lets the outsider in.
    sc = aws("servicecatalog")
    sc.associate_principal_with_portfolio(
        PortfolioId=catalog.portfolio_id,
        PrincipalARN="arn:aws:iam:::user/out*",
        PrincipalType="IAM_PATTERN",
    )
    assert len(outsider.list_launch_paths(ProductId=catalog.product_id)["LaunchPathSummaries"]) == 1
    sc.disassociate_principal_from_portfolio(
        PortfolioId=catalog.portfolio_id,
        PrincipalARN="arn:aws:iam:::user/out*",
        PrincipalType="IAM_PATTERN",
    )
    iam = aws("iam")
    group_arn = iam.create_group(GroupName="launchers")["Group"]["Arn"]
    iam.add_user_to_group(GroupName="launchers", UserName="outsider")
    sc.associate_principal_with_portfolio(
        PortfolioId=catalog.portfolio_id, PrincipalARN=group_arn, PrincipalType="IAM"
    )
    assert len(outsider.list_launch_paths(ProductId=catalog.product_id)["LaunchPathSummaries"]) == 1


def test_an_assumed_role_launches_through_its_role_association(
    aws: Callable[..., Any], catalog: Catalog
) -> None:
    role_arn = aws("iam").create_role(RoleName="Admins", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    aws("servicecatalog").associate_principal_with_portfolio(
        PortfolioId=catalog.portfolio_id, PrincipalARN=role_arn, PrincipalType="IAM"
    )
    credentials = aws("sts").assume_role(RoleArn=role_arn, RoleSessionName="alice")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )
    admin = session.client("servicecatalog", endpoint_url=aws("s3").meta.endpoint_url)
    assert len(admin.list_launch_paths(ProductId=catalog.product_id)["LaunchPathSummaries"]) == 1
    record = provision(admin, catalog)
    (launched,) = admin.search_provisioned_products()["ProvisionedProducts"]
    assert launched["UserArn"] == role_arn
    assert launched["UserArnSession"].endswith(":assumed-role/Admins/alice")
    assert settled(admin, record["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"


def test_describe_provisioning_parameters(aws: Callable[..., Any], catalog: Catalog) -> None:
    member = aws("servicecatalog", catalog.user_keys)
    described = member.describe_provisioning_parameters(
        ProductId=catalog.product_id, ProvisioningArtifactId=catalog.v1
    )
    parameters = {p["ParameterKey"]: p for p in described["ProvisioningArtifactParameters"]}
    assert parameters["QueueSuffix"] == {
        "ParameterKey": "QueueSuffix",
        "ParameterType": "String",
        "IsNoEcho": False,
        "Description": "Appended to the queue's name",
        "ParameterConstraints": {
            "AllowedValues": [],
            "AllowedPattern": "[a-z0-9-]+",
            "ConstraintDescription": "lower-case letters, digits and dashes only",
            "MaxLength": "40",
        },
    }
    assert parameters["Environment"]["DefaultValue"] == "dev"
    assert parameters["Environment"]["ParameterConstraints"]["AllowedValues"] == ["dev", "prod"]
    assert parameters["ApiKey"]["IsNoEcho"] is True
    assert described["ConstraintSummaries"] == [
        {"Type": "LAUNCH", "Description": "Launch as SCLaunchRole"}
    ]
    assert described["TagOptions"] == [{"Key": "CostCenter", "Values": ["ml-platform"]}]
    assert [o["Key"] for o in described["ProvisioningArtifactOutputKeys"]] == [
        "QueueUrl",
        "Environment",
    ]
    # AWS hands the template's Metadata (the console's parameter groups and labels) to
    # clients as a "metadata" usage instruction, next to the launch role.
    instructions = {i["Type"]: i["Value"] for i in described["UsageInstructions"]}
    interface = json.loads(instructions["metadata"])["AWS::CloudFormation::Interface"]
    assert interface["ParameterLabels"] == {"QueueSuffix": {"default": "Queue name suffix"}}
    assert instructions["launchAsRole"] == f"arn:aws:iam::{ACCOUNT}:role/SCLaunchRole"
    assert instructions["version"] == "2010-09-09"


def test_end_user_provisions_updates_and_terminates(
    aws: Callable[..., Any], catalog: Catalog
) -> None:
    member = aws("servicecatalog", catalog.user_keys)
    record = provision(member, catalog)
    assert re.fullmatch(r"rec-[a-z0-9]{13}", record["RecordId"])
    assert re.fullmatch(r"pp-[a-z0-9]{13}", record["ProvisionedProductId"])
    assert record["RecordType"] == "PROVISION_PRODUCT"
    assert record["PathId"] == catalog.portfolio_id
    done = settled(member, record["RecordId"])
    assert done["RecordDetail"]["Status"] == "SUCCEEDED"
    outputs = outputs_of(done)
    assert outputs["QueueUrl"].endswith("/sc-test-orders")
    assert outputs["Environment"] == "dev"

    # A real stack, named and tagged as Service Catalog does, running as the launch role.
    pp_id = record["ProvisionedProductId"]
    (stack,) = aws("cloudformation").describe_stacks(StackName=f"SC-{ACCOUNT}-{pp_id}")["Stacks"]
    assert stack["StackId"] == outputs["CloudformationStackARN"]
    assert stack["RoleARN"] == f"arn:aws:iam::{ACCOUNT}:role/SCLaunchRole"
    tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
    assert tags["CostCenter"] == "ml-platform"
    assert tags["aws:servicecatalog:provisioningPrincipalArn"] == catalog.user_arn
    assert tags["aws:servicecatalog:provisioningArtifactIdentifier"] == catalog.v1
    assert tags["aws:servicecatalog:productArn"].endswith(f":product/{catalog.product_id}")
    queue_url = aws("sqs").get_queue_url(QueueName="sc-test-orders")["QueueUrl"]

    detail = member.describe_provisioned_product(Id=pp_id)["ProvisionedProductDetail"]
    assert (detail["Status"], detail["LaunchRoleArn"]) == ("AVAILABLE", stack["RoleARN"])
    assert member.get_provisioned_product_outputs(
        ProvisionedProductId=pp_id, OutputKeys=["Environment"]
    )["Outputs"] == [{"OutputKey": "Environment", "OutputValue": "dev"}]

    update = member.update_provisioned_product(
        ProvisionedProductName="queue",
        ProvisioningArtifactId=catalog.v2,
        ProvisioningParameters=[
            {"Key": "QueueSuffix", "UsePreviousValue": True},
            {"Key": "Environment", "Value": "prod"},
        ],
    )["RecordDetail"]
    done = settled(member, update["RecordId"])
    assert done["RecordDetail"]["Status"] == "SUCCEEDED"
    assert outputs_of(done)["Version"] == "v2"
    assert outputs_of(done)["Environment"] == "prod"
    setting = aws("ssm").get_parameter(Name="/sc-test/orders/environment")["Parameter"]
    assert setting["Value"] == "prod"

    (found,) = member.search_provisioned_products(Filters={"SearchQuery": ["name:queue"]})[
        "ProvisionedProducts"
    ]
    assert (found["Id"], found["ProvisioningArtifactName"], found["Status"]) == (
        pp_id,
        "v2",
        "AVAILABLE",
    )
    assert found["LastSuccessfulProvisioningRecordId"] == update["RecordId"]
    assert (
        member.search_provisioned_products(Filters={"SearchQuery": ["name:other"]})[
            "ProvisionedProducts"
        ]
        == []
    )
    (scanned,) = member.scan_provisioned_products()["ProvisionedProducts"]
    assert scanned["Id"] == pp_id

    terminate = member.terminate_provisioned_product(ProvisionedProductId=pp_id)["RecordDetail"]
    assert settled(member, terminate["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
    with pytest.raises(ClientError, match="NonExistentQueue"):
        aws("sqs").get_queue_attributes(QueueUrl=queue_url)
    assert member.search_provisioned_products()["ProvisionedProducts"] == []
    assert error_of(lambda: member.describe_provisioned_product(Id=pp_id))[0] == (
        "ResourceNotFoundException"
    )
    history = member.list_record_history(SearchFilter={"Key": "provisionedproduct", "Value": pp_id})
    assert [r["RecordType"] for r in history["RecordDetails"]] == [
        "TERMINATE_PROVISIONED_PRODUCT",
        "UPDATE_PROVISIONED_PRODUCT",
        "PROVISION_PRODUCT",
    ]
    # The name is free again once the product is terminated.
    assert settled(member, provision(member, catalog)["RecordId"])["RecordDetail"]["Status"] == (
        "SUCCEEDED"
    )


def test_launches_and_updates_are_made_from_service_catalogs_tagged_copy(
    aws: Callable[..., Any], catalog: Catalog
) -> None:
    """As the launch-constraint guide describes: each stack operation's template is a copy in
    a bucket Service Catalog owns, tagged servicecatalog:provisioning=true, read by the
    launch role (so the role needs s3:GetObject on objects with that tag)."""
    access.clear()
    member = aws("servicecatalog", catalog.user_keys)
    launched = provision(member, catalog)
    assert settled(member, launched["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
    updated = member.update_provisioned_product(
        ProvisionedProductId=launched["ProvisionedProductId"],
        ProvisioningArtifactId=catalog.v2,
        ProvisioningParameters=[{"Key": "QueueSuffix", "UsePreviousValue": True}],
    )["RecordDetail"]
    assert settled(member, updated["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"

    stack = f"SC-{ACCOUNT}-{launched['ProvisionedProductId']}"
    reads = [a for a in access.recorded() if a["Purpose"] == f"template of stack {stack}"]
    assert len(reads) == 2, reads
    bucket = f"servicecatalog-provisioning-{REGION}-999999999999"
    s3 = aws("s3")
    for read, version in zip(reads, ("queue-v1.yml", "queue-v2.yml"), strict=True):
        assert read["PrincipalArn"] == (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/SCLaunchRole/AWSCloudFormation"
        )
        assert read["Action"] == "s3:GetObject"
        # Another account's bucket: the role's own policy must allow the read, too.
        assert read["ResourceAccount"] != ACCOUNT
        assert read["Context"] == {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}
        prefix = f"arn:aws:s3:::{bucket}/"
        assert read["Resource"].startswith(prefix)
        key = read["Resource"].removeprefix(prefix)
        assert key.startswith(f"{ACCOUNT}/{launched['ProvisionedProductId']}/")
        # The copy itself, through S3's API: the artifact's template, tagged.
        copy = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert copy == (FIXTURES / version).read_bytes()
        assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [
            {"Key": "servicecatalog:provisioning", "Value": "true"}
        ]
    assert reads[0]["Resource"] != reads[1]["Resource"]
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_a_launch_role_that_may_not_read_the_copy_cannot_launch(
    aws: Callable[..., Any], catalog: Catalog
) -> None:
    """The read goes through the local AWS's authorization hook: a refusal fails the launch's
    record with S3's AccessDenied (the request itself was accepted) and creates no stack."""

    def refuse(requests: Sequence[access.Access]) -> str | None:
        for request in requests:
            if request.action == "s3:GetObject":
                return (
                    f"User: {request.principal_arn} is not authorized to perform: s3:GetObject "
                    f"on resource: {request.resource_arn}"
                )
        return None

    member = aws("servicecatalog", catalog.user_keys)
    access.set_authorizer(refuse)
    try:
        record = provision(member, catalog)
    finally:
        access.set_authorizer(None)
    detail = settled(member, record["RecordId"])["RecordDetail"]
    assert detail["Status"] == "FAILED"
    (error,) = detail["RecordErrors"]
    assert error["Code"] == "AccessDenied"
    assert "Access Denied" in error["Description"]
    assert "assumed-role/SCLaunchRole/AWSCloudFormation is not authorized" in error["Description"]
    pp_id = record["ProvisionedProductId"]
    assert (
        member.describe_provisioned_product(Id=pp_id)["ProvisionedProductDetail"]["Status"]
        == "ERROR"
    )
    with pytest.raises(ClientError):
        aws("cloudformation").describe_stacks(StackName=f"SC-{ACCOUNT}-{pp_id}")


def test_users_see_their_own_launches_unless_they_ask_for_the_account(
    aws: Callable[..., Any], catalog: Catalog
) -> None:
    member = aws("servicecatalog", catalog.user_keys)
    provision(member, catalog)
    colleague_keys, colleague_arn = iam_user(aws, "colleague")
    aws("servicecatalog").associate_principal_with_portfolio(
        PortfolioId=catalog.portfolio_id, PrincipalARN=colleague_arn, PrincipalType="IAM"
    )
    colleague = aws("servicecatalog", colleague_keys)
    assert colleague.search_provisioned_products()["ProvisionedProducts"] == []
    everyone = colleague.search_provisioned_products(
        AccessLevelFilter={"Key": "Account", "Value": "self"}
    )["ProvisionedProducts"]
    assert [p["UserArn"] for p in everyone] == [catalog.user_arn]
    # The account root (the test suite's default key) sees every launch.
    assert len(aws("servicecatalog").search_provisioned_products()["ProvisionedProducts"]) == 1


def test_provision_token_makes_a_launch_happen_once(
    aws: Callable[..., Any], catalog: Catalog
) -> None:
    member = aws("servicecatalog", catalog.user_keys)
    first = provision(member, catalog, ProvisionToken="launch-1")
    again = provision(member, catalog, ProvisionToken="launch-1")
    assert again["RecordId"] == first["RecordId"]
    assert len(aws("cloudformation").describe_stacks()["Stacks"]) == 1
    code, message = error_of(lambda: provision(member, catalog, ProvisionToken="launch-2"))
    assert code == "DuplicateResourceException"
    assert "named queue already exists" in message


@pytest.mark.parametrize(
    ("overrides", "code", "expected"),
    [
        ({"ProvisioningArtifactId": "pa-unknown000000"}, "ResourceNotFoundException", "pa-unknown"),
        (
            {"ProvisioningParameters": []},
            "InvalidParametersException",
            "[QueueSuffix] must have values",
        ),
        (
            {
                "ProvisioningParameters": [
                    {"Key": "QueueSuffix", "Value": "orders"},
                    {"Key": "Environment", "Value": "staging"},
                ]
            },
            "InvalidParametersException",
            "Parameter 'Environment' must be one of AllowedValues ['dev', 'prod'] (got 'staging')",
        ),
        (
            {"ProvisioningParameters": [{"Key": "QueueSuffix", "Value": "Orders!"}]},
            "InvalidParametersException",
            "Parameter 'QueueSuffix' failed to satisfy constraint: lower-case letters, digits and "
            "dashes only (got 'Orders!')",
        ),
        (
            {
                "ProvisioningParameters": [
                    {"Key": "QueueSuffix", "Value": "orders"},
                    {"Key": "ApiKey", "Value": "x" * 3},
                    {"Key": "Colour", "Value": "blue"},
                ]
            },
            "InvalidParametersException",
            "Parameters: [Colour] do not exist in the template",
        ),
        ({"ProvisionedProductName": "-bad name"}, "InvalidParametersException", "is not valid"),
        (
            {"Tags": [{"Key": "CostCenter", "Value": "other"}]},
            "InvalidParametersException",
            "ml-platform",
        ),
        ({"PathId": "port-notmine000000"}, "InvalidParametersException", "is not a launch path"),
    ],
    ids=[
        "unknown-artifact",
        "missing-parameter",
        "value-not-allowed",
        "pattern",
        "undeclared-parameter",
        "bad-name",
        "tag-option-value",
        "foreign-path",
    ],
)
def test_bad_launches_are_refused_before_any_stack_exists(
    aws: Callable[..., Any],
    catalog: Catalog,
    overrides: dict[str, Any],
    code: str,
    expected: str,
) -> None:
    member = aws("servicecatalog", catalog.user_keys)
    refused, message = error_of(lambda: provision(member, catalog, **overrides))
    assert refused == code
    assert expected in message
    assert aws("cloudformation").describe_stacks()["Stacks"] == []
    assert member.scan_provisioned_products()["ProvisionedProducts"] == []


def test_create_stack_refusals_come_back_as_invalid_parameters(
    aws: Callable[..., Any], catalog: Catalog
) -> None:
    sc = aws("servicecatalog")
    broken = sc.create_provisioning_artifact(
        ProductId=catalog.product_id,
        Parameters={
            "Name": "broken",
            "Info": {"LoadTemplateFromURL": upload(aws, "unresolved-output.yml")},
        },
    )["ProvisioningArtifactDetail"]["Id"]
    member = aws("servicecatalog", catalog.user_keys)
    code, message = error_of(
        lambda: provision(member, catalog, ProvisioningArtifactId=broken, ProvisioningParameters=[])
    )
    assert code == "InvalidParametersException"
    assert "Unresolved resource dependencies [Queue] in the Outputs block" in message
    assert aws("cloudformation").describe_stacks()["Stacks"] == []
    assert member.scan_provisioned_products()["ProvisionedProducts"] == []


# ---- records follow stacks that finish later -------------------------------------------------


def _stack_of(record: dict[str, Any]) -> Any:
    name = f"SC-{ACCOUNT}-{record['ProvisionedProductId']}"
    return cloudformation_backends[ACCOUNT][REGION].get_stack(name)


def _fail(stack: Any, logical_id: str, status: str, reason: str, stack_status: str) -> None:
    """What an asynchronous engine records when a resource fails and the stack rolls back."""
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id="",
            resource_type="AWS::SQS::Queue",
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )
    stack.status = stack_status


def test_a_record_follows_a_create_that_finishes_later(
    aws: Callable[..., Any], catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_stack = CloudFormationBackend.create_stack

    def still_creating(self: CloudFormationBackend, **kwargs: Any) -> Any:
        stack = create_stack(self, **kwargs)
        stack.status = "CREATE_IN_PROGRESS"
        return stack

    monkeypatch.setattr(CloudFormationBackend, "create_stack", still_creating)
    member = aws("servicecatalog", catalog.user_keys)
    record = provision(member, catalog)
    assert record["Status"] == "IN_PROGRESS"
    pp_id = record["ProvisionedProductId"]
    assert member.describe_provisioned_product(Id=pp_id)["ProvisionedProductDetail"]["Status"] == (
        "UNDER_CHANGE"
    )
    code, message = error_of(
        lambda: member.terminate_provisioned_product(ProvisionedProductId=pp_id)
    )
    assert code == "InvalidParametersException"
    assert "wait until record" in message

    stack = _stack_of(record)
    _fail(stack, "Queue", "CREATE_FAILED", "Queue name already taken", "ROLLBACK_IN_PROGRESS")
    in_error = member.describe_record(Id=record["RecordId"])["RecordDetail"]
    assert in_error["Status"] == "IN_PROGRESS_IN_ERROR"
    assert in_error["RecordErrors"] == [
        {"Code": "CREATE_FAILED", "Description": "Queue: Queue name already taken"}
    ]

    stack.status = "ROLLBACK_COMPLETE"
    failed = member.describe_record(Id=record["RecordId"])
    assert failed["RecordDetail"]["Status"] == "FAILED"
    assert failed["RecordOutputs"] == []
    detail = member.describe_provisioned_product(Id=pp_id)["ProvisionedProductDetail"]
    assert (detail["Status"], detail["StatusMessage"]) == (
        "ERROR",
        "Queue: Queue name already taken",
    )
    terminate = member.terminate_provisioned_product(ProvisionedProductId=pp_id)["RecordDetail"]
    assert settled(member, terminate["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"


def test_a_rolled_back_update_taints_the_product(
    aws: Callable[..., Any], catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = aws("servicecatalog", catalog.user_keys)
    record = provision(member, catalog)
    settled(member, record["RecordId"])

    def rolled_back(self: CloudFormationBackend, name: str, **_: Any) -> Any:
        stack = self.get_stack(name)
        _fail(stack, "Setting", "UPDATE_FAILED", "Value is too long", "UPDATE_ROLLBACK_COMPLETE")
        return stack

    monkeypatch.setattr(CloudFormationBackend, "update_stack", rolled_back)
    update = member.update_provisioned_product(
        ProvisionedProductId=record["ProvisionedProductId"],
        ProvisioningArtifactId=catalog.v2,
    )["RecordDetail"]
    failed = settled(member, update["RecordId"])["RecordDetail"]
    assert failed["Status"] == "FAILED"
    assert failed["RecordErrors"][0]["Description"] == "Setting: Value is too long"
    detail = member.describe_provisioned_product(Id=record["ProvisionedProductId"])[
        "ProvisionedProductDetail"
    ]
    # Still running the version it had, as AWS reports a rolled-back update.
    assert (detail["Status"], detail["ProvisioningArtifactId"]) == ("TAINTED", catalog.v1)


def test_terminate_can_ignore_a_failed_delete(
    aws: Callable[..., Any], catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = aws("servicecatalog", catalog.user_keys)
    pp_ids = []
    for name in ("kept", "dropped"):
        record = provision(
            member,
            catalog,
            name=name,
            ProvisioningParameters=[{"Key": "QueueSuffix", "Value": name}],
        )
        settled(member, record["RecordId"])
        pp_ids.append(record["ProvisionedProductId"])

    def delete_fails(self: CloudFormationBackend, name_or_stack_id: str) -> None:
        stack = self.get_stack(name_or_stack_id)
        _fail(stack, "Queue", "DELETE_FAILED", "Queue is busy", "DELETE_FAILED")

    monkeypatch.setattr(CloudFormationBackend, "delete_stack", delete_fails)
    failed = member.terminate_provisioned_product(ProvisionedProductId=pp_ids[0])["RecordDetail"]
    assert settled(member, failed["RecordId"])["RecordDetail"]["Status"] == "FAILED"
    ignored = member.terminate_provisioned_product(
        ProvisionedProductId=pp_ids[1], IgnoreErrors=True
    )["RecordDetail"]
    assert settled(member, ignored["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
    remaining = member.search_provisioned_products()["ProvisionedProducts"]
    assert [(p["Id"], p["Status"]) for p in remaining] == [(pp_ids[0], "ERROR")]


# ---- CloudFormation resource types -----------------------------------------------------------


def context(resource_type: str, logical_id: str) -> ResourceContext:
    return ResourceContext(
        account_id=ACCOUNT,
        region=REGION,
        partition="aws",
        stack_id=f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/platform/{uuid.uuid4()}",
        stack_name="platform",
        logical_id=logical_id,
        resource_type=resource_type,
        stack_tags={"aws:cloudformation:stack-name": "platform"},
    )


class Resource:
    """One template resource driven through its provisioner, as the engine drives it."""

    def __init__(self, resource_type: str, props: dict[str, Any]) -> None:
        provisioner = provisioner_for(resource_type)
        assert provisioner is not None, f"no provisioner for {resource_type}"
        self.provisioner = provisioner
        self.ctx = context(resource_type, resource_type.rsplit(":", 1)[-1])
        self.props = props
        self.current: Provisioned = provisioner.create(self.ctx, props)

    @property
    def ref(self) -> str:
        return self.current.physical_id

    def update(self, **changes: Any) -> Provisioned:
        new_props = {**self.props, **changes}
        self.current = self.provisioner.update(self.ctx, self.current, self.props, new_props)
        self.props = new_props
        return self.current

    def delete(self) -> None:
        self.provisioner.delete(self.ctx, self.current, self.props)


def test_portfolio_and_product_resources(aws: Callable[..., Any]) -> None:
    sc = aws("servicecatalog")
    portfolio = Resource(
        "AWS::ServiceCatalog::Portfolio",
        {"DisplayName": "Example", "ProviderName": "Example", "Tags": [{"Key": "a", "Value": "1"}]},
    )
    assert portfolio.current.get_att("PortfolioName") == "Example"
    assert portfolio.update(DisplayName="Example Hybrid", Tags=[]).physical_id == portfolio.ref
    described = sc.describe_portfolio(Id=portfolio.ref)
    assert described["PortfolioDetail"]["DisplayName"] == "Example Hybrid"
    assert described["Tags"] == [{"Key": "aws:cloudformation:stack-name", "Value": "platform"}]

    v1 = {"Name": "v1", "Info": {"LoadTemplateFromURL": upload(aws, "queue-v1.yml")}}
    v2 = {"Name": "v2", "Info": {"LoadTemplateFromURL": upload(aws, "queue-v2.yml")}}
    product = Resource(
        "AWS::ServiceCatalog::CloudFormationProduct",
        {"Name": "Queue", "Owner": "Example", "ProvisioningArtifactParameters": [v1]},
    )
    (first,) = product.current.get_att("ProvisioningArtifactIds").split(",")
    assert product.current.get_att("ProductName") == "Queue"

    # A new version is added and the listed old one keeps its id; one dropped from the list
    # is deleted, as AWS deletes it.
    product.update(ProvisioningArtifactParameters=[v1, v2], Description="Queues")
    assert product.current.get_att("ProvisioningArtifactNames") == "v1,v2"
    kept, second = product.current.get_att("ProvisioningArtifactIds").split(",")
    assert kept == first
    product.update(ProvisioningArtifactParameters=[v2])
    listed = sc.list_provisioning_artifacts(ProductId=product.ref)["ProvisioningArtifactDetails"]
    assert [a["Id"] for a in listed] == [second]
    assert (
        sc.describe_product_as_admin(Id=product.ref)["ProductViewDetail"]["ProductViewSummary"][
            "ShortDescription"
        ]
        == "Queues"
    )

    product.update(ProvisioningArtifactParameters=[v2], ReplaceProvisioningArtifacts="true")
    (replaced,) = product.current.get_att("ProvisioningArtifactIds").split(",")
    listed = sc.list_provisioning_artifacts(ProductId=product.ref)["ProvisioningArtifactDetails"]
    assert [a["Id"] for a in listed] == [replaced]
    assert replaced not in (first, second)

    with pytest.raises(NeedsReplacement):
        product.update(ProductType="MARKETPLACE")
    product.delete()
    product.delete()  # already gone: still a success, as CloudFormation needs
    portfolio.delete()
    assert sc.list_portfolios()["PortfolioDetails"] == []
    assert sc.search_products_as_admin()["ProductViewDetails"] == []


def test_product_resource_failures_are_reported(aws: Callable[..., Any]) -> None:
    provisioner = provisioner_for("AWS::ServiceCatalog::CloudFormationProduct")
    assert provisioner is not None
    ctx = context("AWS::ServiceCatalog::CloudFormationProduct", "Product")
    good = {"Name": "v1", "Info": {"LoadTemplateFromURL": upload(aws, "queue-v1.yml")}}
    missing = {
        "Name": "v2",
        "Info": {"LoadTemplateFromURL": f"https://{BUCKET}.s3.amazonaws.com/nope.yml"},
    }
    with pytest.raises(ProvisionError, match=r"InvalidParametersException: .*nope\.yml: no such"):
        provisioner.create(
            ctx, {"Name": "Queue", "Owner": "me", "ProvisioningArtifactParameters": [good, missing]}
        )
    # The half-made product was removed: CloudFormation never learnt its id.
    assert aws("servicecatalog").search_products_as_admin()["ProductViewDetails"] == []


def test_association_constraint_and_tag_option_resources(aws: Callable[..., Any]) -> None:
    sc = aws("servicecatalog")
    role_arn = aws("iam").create_role(RoleName="Launch", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    portfolio = Resource(
        "AWS::ServiceCatalog::Portfolio", {"DisplayName": "P", "ProviderName": "me"}
    )
    product = Resource(
        "AWS::ServiceCatalog::CloudFormationProduct",
        {
            "Name": "Queue",
            "Owner": "me",
            "ProvisioningArtifactParameters": [
                {"Name": "v1", "Info": {"LoadTemplateFromURL": upload(aws, "queue-v1.yml")}}
            ],
        },
    )
    constraint_props = {"PortfolioId": portfolio.ref, "ProductId": product.ref, "RoleArn": role_arn}
    with pytest.raises(ProvisionError, match="DependsOn the association"):
        Resource("AWS::ServiceCatalog::LaunchRoleConstraint", constraint_props)

    association = Resource(
        "AWS::ServiceCatalog::PortfolioProductAssociation",
        {"PortfolioId": portfolio.ref, "ProductId": product.ref},
    )
    assert association.ref == f"{portfolio.ref}|{product.ref}"
    constraint = Resource("AWS::ServiceCatalog::LaunchRoleConstraint", constraint_props)
    constraint.update(RoleArn=None, LocalRoleName="Launch", Description="as Launch")
    described = sc.describe_constraint(Id=constraint.ref)
    assert json.loads(described["ConstraintParameters"]) == {"LocalRoleName": "Launch"}
    assert described["ConstraintDetail"]["Description"] == "as Launch"
    with pytest.raises(NeedsReplacement):
        constraint.update(PortfolioId="port-another000000")

    principal = Resource(
        "AWS::ServiceCatalog::PortfolioPrincipalAssociation",
        {"PortfolioId": portfolio.ref, "PrincipalARN": role_arn, "PrincipalType": "IAM"},
    )
    with pytest.raises(NeedsReplacement):
        principal.update(PrincipalARN=f"arn:aws:iam::{ACCOUNT}:role/Other")
    share = Resource(
        "AWS::ServiceCatalog::PortfolioShare",
        {"PortfolioId": portfolio.ref, "AccountId": "210987654321"},
    )
    share.update(ShareTagOptions="true")
    (shared,) = sc.describe_portfolio_shares(PortfolioId=portfolio.ref, Type="ACCOUNT")[
        "PortfolioShareDetails"
    ]
    assert shared["ShareTagOptions"] is True

    option = Resource("AWS::ServiceCatalog::TagOption", {"Key": "CostCenter", "Value": "ml"})
    tagging = Resource(
        "AWS::ServiceCatalog::TagOptionAssociation",
        {"TagOptionId": option.ref, "ResourceId": portfolio.ref},
    )
    assert [o["Id"] for o in sc.describe_portfolio(Id=portfolio.ref)["TagOptions"]] == [option.ref]
    option.update(Active=False)
    assert sc.describe_tag_option(Id=option.ref)["TagOptionDetail"]["Active"] is False
    with pytest.raises(NeedsReplacement):
        option.update(Value="finance")

    # Deleted in reverse dependency order, as CloudFormation does: nothing is left.
    for resource in (
        tagging,
        option,
        share,
        principal,
        constraint,
        association,
        product,
        portfolio,
    ):
        resource.delete()
    assert sc.list_portfolios()["PortfolioDetails"] == []
    assert sc.list_tag_options()["TagOptionDetails"] == []


def test_install_is_idempotent_and_keeps_state(aws: Callable[..., Any]) -> None:
    sc = aws("servicecatalog")
    portfolio_id = sc.create_portfolio(DisplayName="P", ProviderName="me")["PortfolioDetail"]["Id"]
    servicecatalog.install()
    assert sc.describe_portfolio(Id=portfolio_id)["PortfolioDetail"]["Id"] == portfolio_id


# ---- canaries: what stock moto does ----------------------------------------------------------


@pytest.fixture
def stock_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's own Service Catalog in decorator mode, whatever install() did to this process."""
    monkeypatch.setattr(servicecatalog_backends, "backend", ServiceCatalogBackend)
    servicecatalog_backends.clear()
    with mock_aws():
        yield boto3.client(
            "servicecatalog",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    servicecatalog_backends.clear()


def test_canary_stock_moto_ids_are_uuids_and_products_have_no_versions(stock_moto: Any) -> None:
    portfolio = stock_moto.create_portfolio(DisplayName="P", ProviderName="me")["PortfolioDetail"]
    assert uuid.UUID(portfolio["Id"])
    created = stock_moto.create_product(
        Name="Queue",
        Owner="me",
        ProductType="CLOUD_FORMATION_TEMPLATE",
        ProvisioningArtifactParameters={
            "Name": "v1",
            "Info": {"LoadTemplateFromURL": "https://b.s3.amazonaws.com/t.yml"},
        },
    )
    assert uuid.UUID(created["ProductViewDetail"]["ProductViewSummary"]["ProductId"])
    assert "Id" not in created.get("ProvisioningArtifactDetail", {})


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("associate_product_with_portfolio", {"ProductId": "p", "PortfolioId": "q"}),
        ("list_launch_paths", {"ProductId": "p"}),
        ("provision_product", {"ProductId": "p", "ProvisionedProductName": "x"}),
        ("describe_record", {"Id": "r"}),
        ("terminate_provisioned_product", {"ProvisionedProductName": "x"}),
    ],
)
def test_canary_stock_moto_cannot_launch_products(
    stock_moto: Any, operation: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(NotImplementedError):
        getattr(stock_moto, operation)(**kwargs)
