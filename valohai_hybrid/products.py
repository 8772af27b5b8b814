"""The two products, named once: every module and test that names one reads it from here.

`template.yaml` is where they are declared for AWS (the Service Catalog products, their launch
roles); tests/unit/tooling/test_products.py checks that this module and the template agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    """One product of the portfolio."""

    key: str  #: the console command's short name (`valohai-hybrid launch iam ...`)
    name: str  #: the Service Catalog product's name, as template.yaml declares it
    title: str  #: the short name in prose and README tables
    root_template: str  #: its template in cfn/, the one a release's URL points at
    launch_role_output: str  #: the platform stack's output naming its launch role


IAM = Product("iam", "Valohai Hybrid IAM", "IAM", "iam.yml", "IamLaunchRoleArn")
WORKERS = Product(
    "workers", "Valohai Hybrid Workers", "Workers", "main.yml", "WorkersLaunchRoleArn"
)
PRODUCTS = (IAM, WORKERS)
ROOT_TEMPLATES = tuple(product.root_template for product in PRODUCTS)


def product_name(name_or_key: str) -> str:
    """The Service Catalog name for a short name (`iam`, `workers`); anything else as given
    (a product's full name or id)."""
    found = {product.key: product.name for product in PRODUCTS}
    return found.get(name_or_key.lower(), name_or_key)
