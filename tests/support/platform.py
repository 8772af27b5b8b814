"""The platform stack as each of its users meets it: a maintainer publishing it, an end user of
the customer's account launching its products through Service Catalog, and Valohai receiving
the events.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from localaws.harness import LocalAwsHandle, unique

from tests.support import common
from tests.support.common import eventually
from valohai_hybrid.checkout import ROOT
from valohai_hybrid.local.platform import Customer
from valohai_hybrid.local.standin import ReceivedEvent, StandIn
from valohai_hybrid.products import IAM, WORKERS
from valohai_hybrid.publish import Published

# A region no other test package uses: the platform's names are fixed per account and region.
REGION = "eu-central-1"
SETUP_TOKEN = "platform-it-setup-token-Zk4Wq9Rt2Yx7Nc3Vb8"
VALOHAI_PRINCIPAL = "arn:aws:iam::905675611115:user/valohai-customer-acme"
EXTERNAL_ID = "valohai-acme-platform-2b8e"
#: The release this checkout publishes.
RELEASE = version("valohai-hybrid-aws")
IAM_PRODUCT = IAM.name
WORKERS_PRODUCT = WORKERS.name
RECORD_TIMEOUT = 120.0


def publish_release(
    local_aws: LocalAwsHandle, project_dir: Path = ROOT, region: str = REGION, **options: Any
) -> Published:
    """`valohai-hybrid publish` (quietly) against the local AWS, in this package's region."""
    return common.publish_release(local_aws, region, project_dir, **options)


def project_with_changed_functions(destination: Path, change: str) -> Path:
    """The platform's sources with a change in the functions' code: a new build, new code."""
    destination.mkdir(parents=True)
    for name in ("template.yaml", "samconfig.toml"):
        shutil.copy2(ROOT / name, destination / name)
    shutil.copytree(
        ROOT / "functions", destination / "functions", ignore=shutil.ignore_patterns("__pycache__")
    )
    package = destination / "functions" / "valohai_cr" / "__init__.py"
    package.write_text(package.read_text() + f"# {change}\n")
    return destination


def release_copy(release: str, destination: Path) -> Path:
    """cfn/ as a maintainer prepares the next release: the same templates, a new version."""
    shutil.copytree(ROOT / "cfn", destination)
    main = destination / "main.yml"
    text, count = re.subn(
        r"(Release:\n\s+Version: )\S+", rf"\g<1>{release}", main.read_text(), count=1
    )
    assert count == 1, "cfn/main.yml has no Mappings Product Release Version"
    main.write_text(text)
    return destination


def next_patch(release: str) -> str:
    major, minor, patch = release.split("-", 1)[0].split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


def validate(event: ReceivedEvent) -> None:
    """The event as docs/schemas publishes it (a receiver can be written from the docs alone)."""
    schema = json.loads((ROOT / "docs" / "schemas" / f"{event.type}.schema.json").read_text())
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        event.body
    )


@dataclass
class Record:
    """A Service Catalog record once it is final: its detail and all its outputs."""

    detail: dict[str, Any]
    outputs: dict[str, str]

    @property
    def status(self) -> str:
        return str(self.detail["Status"])

    @property
    def provisioned_product_id(self) -> str:
        return str(self.detail["ProvisionedProductId"])

    @property
    def stack_id(self) -> str:
        return self.outputs["CloudformationStackARN"]

    @property
    def errors(self) -> str:
        return " ".join(e["Description"] for e in self.detail.get("RecordErrors", []))


class EndUser:
    """An IAM user of the customer's account with its own access key, made as the local
    platform makes its customer admin: AWSServiceCatalogEndUserFullAccess, which Service
    Catalog asks of every end-user call, and a principal association with the portfolio
    (the platform's fixtures publish with this user among the principals).
    """

    def __init__(self, local_aws: LocalAwsHandle) -> None:
        customer = Customer.create(local_aws, "platform-end-user", REGION)
        self.arn = customer.arn
        self.servicecatalog: Any = customer.client("servicecatalog")
        self.ec2: Any = customer.client("ec2")

    def product_id(self, name: str) -> str:
        found = self.servicecatalog.search_products(Filters={"FullTextSearch": [name]})
        (product,) = [p for p in found["ProductViewSummaries"] if p["Name"] == name]
        return str(product["ProductId"])

    def versions(self, product_id: str) -> dict[str, dict[str, Any]]:
        """The product's versions an end user sees, by name."""
        listed = self.servicecatalog.describe_product(Id=product_id)["ProvisioningArtifacts"]
        return {v["Name"]: v for v in listed}

    def version_id(self, product_id: str, version: str | None) -> str:
        """`version`'s id; None: the one new launches are meant to use (not deprecated)."""
        versions = self.versions(product_id).values()
        (match,) = [
            v["Id"]
            for v in versions
            if v["Name"] == version or (version is None and v["Guidance"] == "DEFAULT")
        ]
        return str(match)

    def provision(
        self,
        product: str,
        version: str | None,
        parameters: dict[str, str],
        name: str | None = None,
    ) -> Record:
        product_id = self.product_id(product)
        (path,) = self.servicecatalog.list_launch_paths(ProductId=product_id)["LaunchPathSummaries"]
        started = self.servicecatalog.provision_product(
            ProductId=product_id,
            ProvisioningArtifactId=self.version_id(product_id, version),
            PathId=path["Id"],
            ProvisionedProductName=name or unique("launch"),
            ProvisionToken=unique("token"),
            ProvisioningParameters=[{"Key": k, "Value": v} for k, v in parameters.items()],
        )
        return self.wait(started["RecordDetail"]["RecordId"])

    def update(self, record: Record, product: str, version: str, keep: list[str]) -> Record:
        """Move a launch to `version`, keeping the values of the parameters in `keep`."""
        product_id = self.product_id(product)
        started = self.servicecatalog.update_provisioned_product(
            ProvisionedProductId=record.provisioned_product_id,
            ProductId=product_id,
            ProvisioningArtifactId=self.version_id(product_id, version),
            ProvisioningParameters=[{"Key": key, "UsePreviousValue": True} for key in keep],
            UpdateToken=unique("token"),
        )
        return self.wait(started["RecordDetail"]["RecordId"])

    def terminate(self, record: Record) -> Record:
        started = self.servicecatalog.terminate_provisioned_product(
            ProvisionedProductId=record.provisioned_product_id, TerminateToken=unique("token")
        )
        return self.wait(started["RecordDetail"]["RecordId"])

    def wait(self, record_id: str, timeout: float = RECORD_TIMEOUT) -> Record:
        """DescribeRecord until the record is final; its outputs come 20 to a page."""

        def final() -> dict[str, Any] | None:
            described: dict[str, Any] = self.servicecatalog.describe_record(Id=record_id)
            done = described["RecordDetail"]["Status"] in ("SUCCEEDED", "FAILED")
            return described if done else None

        described = eventually(final, timeout, f"record {record_id}")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("RecordOutputs", [])}
        while described.get("NextPageToken"):
            described = self.servicecatalog.describe_record(
                Id=record_id, PageToken=described["NextPageToken"]
            )
            outputs.update({o["OutputKey"]: o["OutputValue"] for o in described["RecordOutputs"]})
        return Record(described["RecordDetail"], outputs)


def workers_parameters(
    iam: Record, standin: StandIn, key_pair: str, **overrides: str
) -> dict[str, str]:
    """What a customer admin fills in for the Workers product (names unique to one launch)."""
    filled = common.workers_parameters(
        master_role_arn=iam.outputs["ValohaiMasterRoleARN"],
        valohai_url=standin.url,
        setup_token=SETUP_TOKEN,
        key_pair=key_pair,
        suffix=unique("data"),
    )
    return {**filled, **overrides}
