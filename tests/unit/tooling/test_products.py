"""valohai_hybrid.products names the products as template.yaml declares them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from valohai_hybrid.checkout import CFN, ROOT
from valohai_hybrid.products import PRODUCTS, Product, product_name
from valohai_hybrid.templates import load_template

PLATFORM = load_template(ROOT / "template.yaml")


def _resources(resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in PLATFORM["Resources"].items()
        if resource["Type"] == resource_type
    }


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: p.key)
def test_each_product_is_declared_with_its_name_root_template_and_launch_role(
    product: Product,
) -> None:
    products = _resources("AWS::ServiceCatalog::CloudFormationProduct")
    (logical_id,) = [lid for lid, props in products.items() if props["Name"] == product.name]
    stem = product.root_template.removesuffix(".yml")
    assert f"/{stem}.json" in json.dumps(products[logical_id]["ProvisioningArtifactParameters"])
    assert (CFN / product.root_template).is_file()

    (constraint,) = [
        props
        for props in _resources("AWS::ServiceCatalog::LaunchRoleConstraint").values()
        if props["ProductId"] == {"Ref": logical_id}
    ]
    role = constraint["LocalRoleName"]["Ref"]
    output = PLATFORM["Outputs"][product.launch_role_output]
    assert output["Value"] == {"Fn::GetAtt": [role, "Arn"]}


def test_short_names_resolve_and_anything_else_passes_through() -> None:
    assert product_name("IAM") == "Valohai Hybrid IAM"
    assert product_name("workers") == "Valohai Hybrid Workers"
    assert product_name("prod-abc123") == "prod-abc123"
