"""Wrong values are refused by Service Catalog's ProvisionProduct itself, naming the parameter
and the fix, before anything is made (no provisioned product, no stack, no setup-token secret, no
word to Valohai).

Service Catalog checks the values against the version's template (its parameter constraints)
and passes on CloudFormation's own refusal of the stack (an AWS-specific parameter type naming
nothing that exists, a template rule): InvalidParametersException either way, the request
refused, not a FAILED record.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import unique

from tests.support.products import Aws, Products
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.products import WORKERS

SETUP_TOKENS = "valohai-hybrid/setup-token/"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"ValohaiMasterRoleARN": "arn:aws:iam::12345678901:role/ValohaiMaster"},
            "must be the output ValohaiMasterRoleARN of the IAM product",
            id="account-id-too-short",
        ),
        pytest.param(
            {"ValohaiMasterRoleARN": "arn:aws:iam::123456789012:user/ValohaiMaster"},
            "such as arn:aws:iam::123456789012:role/ValohaiMaster",
            id="user-not-role",
        ),
        pytest.param(
            {"ValohaiMasterRoleARN": "arn:aws:iam::123456789012:role/SomeoneElsesRole"},
            "launch the IAM product first",
            id="another-role",
        ),
        pytest.param(
            {"QueueAddress": "https://acme.vqueue.net"},
            "must be a lower-case DNS name",
            id="address-with-scheme",
        ),
        pytest.param(
            {"QueueAddress": "Acme.VQueue.net"},
            "such as acme.vqueue.net",
            id="address-in-capitals",
        ),
        pytest.param(
            {"VpcCidr": "10.0.0.6/16"},
            "must be an IPv4 /16 block with its host bits zero",
            id="cidr-with-host-bits",
        ),
        pytest.param(
            {"ValohaiEgressCidr": "34.248.245.191"},
            "must be one public IPv4 address or range of /16 or narrower",
            id="cidr-without-prefix",
        ),
        pytest.param(
            {"MaintenanceSshCidr": "3.251.38.215/33"},
            "must be empty (port 22 closed, the default) or one public IPv4 address",
            id="cidr-prefix-too-long",
        ),
        *(
            pytest.param({parameter: value}, fix, id=f"{parameter}-{value}")
            for parameter, fix in (
                ("ValohaiEgressCidr", "must be one public IPv4 address or range of /16"),
                ("MaintenanceSshCidr", "or one public IPv4 address"),
            )
            for value in (
                "0.0.0.0/0",
                "34.0.0.0/8",
                "34.248.0.0/15",
                "10.0.0.0/16",
                "192.168.1.10/32",
                "169.254.169.254/32",
                "100.64.0.1/32",
                "127.0.0.1/32",
                "203.0.113.9/32",
                "224.0.0.1/32",
            )
        ),
        # Service Catalog checks AllowedValues itself and lists them.
        pytest.param(
            {"NumberOfAZs": "7"},
            "must be one of AllowedValues ['2', '3', '4', '5', '6']",
            id="seven-azs",
        ),
        pytest.param({"NumberOfAZs": "1"}, "['2', '3', '4', '5', '6']", id="one-az"),
        pytest.param(
            {"KeyPair": "no-such-key"},
            "parameter value no-such-key for parameter name KeyPair does not exist",
            id="missing-key-pair",
        ),
        pytest.param(
            {"SubnetIds": "subnet-0123456789abcdef0"},
            "SubnetIds only applies to an existing VPC: give the VPC in VpcId too",
            id="subnets-without-vpc",
        ),
        pytest.param(
            {"VpcId": "vpc-0123456789abcdef0"},
            "With an existing VPC (VpcId) give its public subnets in SubnetIds",
            id="vpc-without-subnets",
        ),
        pytest.param(
            {"SetupToken": "too-short"},
            "must be the 32-256 character token",
            id="short-setup-token",
        ),
        pytest.param(
            {"ValohaiApiUrl": "http://app.valohai.com"},
            "must be an https URL",
            id="plain-http-api",
        ),
        *(
            pytest.param(
                {"ValohaiApiUrl": url},
                "must be an https URL of a public DNS name",
                id=f"unusable-api-{case}",
            )
            for case, url in (
                ("metadata-address", "https://169.254.169.254"),
                ("private-address", "https://10.0.0.5:8443"),
                ("port-99999", "https://app.valohai.com:99999"),
                ("empty-label", "https://a..b"),
                ("long-host", "https://" + "a" * 3000 + ".com"),
            )
        ),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_made(
    aws: Aws, products: Products, standin: StandIn, overrides: dict[str, str], message: str
) -> None:
    name = unique("valohai-refused")
    cloudformation, secrets = aws("cloudformation"), aws("secretsmanager")
    stacks_before = stack_ids(cloudformation)
    tokens_before = setup_tokens(secrets)
    events_before = len(standin.receiver.events())

    with pytest.raises(ClientError) as refused:
        products.provision(WORKERS, name, products.parameters(**overrides))

    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidParametersException"
    [parameter] = overrides
    assert parameter in error["Message"]
    assert message in error["Message"]
    servicecatalog = products.admin.client("servicecatalog")
    with pytest.raises(servicecatalog.exceptions.ResourceNotFoundException):
        servicecatalog.describe_provisioned_product(Name=name)
    assert stack_ids(cloudformation) == stacks_before
    assert setup_tokens(secrets) == tokens_before
    assert len(standin.receiver.events()) == events_before


def stack_ids(cloudformation: Any) -> set[str]:
    """Every stack of the region, deleted ones included."""
    pages = cloudformation.get_paginator("list_stacks").paginate()
    return {s["StackId"] for page in pages for s in page["StackSummaries"]}


def setup_tokens(secrets: Any) -> set[str]:
    """The setup-token secrets of the region (one per launched setup)."""
    pages = secrets.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [SETUP_TOKENS]}], IncludePlannedDeletion=True
    )
    return {s["ARN"] for page in pages for s in page["SecretList"]}
