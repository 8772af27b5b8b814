"""Wrong values are refused by CreateStack itself, naming the parameter and the fix, before
anything is made (no stack, no setup-token secret, no word to Valohai)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from localaws.harness import unique

from tests.support.products import Aws, Products, parameter_list, secret_exists
from valohai_hybrid.local.standin import StandIn


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"ValohaiMasterRoleARN": "arn:aws:iam::12345678901:role/ValohaiMaster"},
            "Parameter ValohaiMasterRoleARN failed to satisfy constraint: must be the output "
            "ValohaiMasterRoleARN of the IAM product",
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
            "Parameter QueueAddress failed to satisfy constraint: must be a lower-case DNS name",
            id="address-with-scheme",
        ),
        pytest.param(
            {"QueueAddress": "Acme.VQueue.net"},
            "such as acme.vqueue.net",
            id="address-in-capitals",
        ),
        pytest.param(
            {"VpcCidr": "10.0.0.6/16"},
            "Parameter VpcCidr failed to satisfy constraint: must be an IPv4 /16 block with its "
            "host bits zero",
            id="cidr-with-host-bits",
        ),
        pytest.param(
            {"ValohaiEgressCidr": "34.248.245.191"},
            "Parameter ValohaiEgressCidr failed to satisfy constraint: must be one public IPv4 "
            "address or range of /16 or narrower",
            id="cidr-without-prefix",
        ),
        pytest.param(
            {"MaintenanceSshCidr": "3.251.38.215/33"},
            "Parameter MaintenanceSshCidr failed to satisfy constraint: must be empty (port 22 "
            "closed, the default) or one public IPv4 address",
            id="cidr-prefix-too-long",
        ),
        *(
            pytest.param(
                {parameter: value},
                f"Parameter {parameter} failed to satisfy constraint: must be",
                id=f"{parameter}-{value}",
            )
            for parameter in ("ValohaiEgressCidr", "MaintenanceSshCidr")
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
        pytest.param(
            {"NumberOfAZs": "7"},
            "Parameter NumberOfAZs failed to satisfy constraint: must be a whole number from 2",
            id="seven-azs",
        ),
        pytest.param({"NumberOfAZs": "1"}, "from 2 to 6", id="one-az"),
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
            "Parameter SetupToken failed to satisfy constraint: must be the 32-256 character token",
            id="short-setup-token",
        ),
        pytest.param(
            {"ValohaiApiUrl": "http://app.valohai.com"},
            "Parameter ValohaiApiUrl failed to satisfy constraint: must be an https URL",
            id="plain-http-api",
        ),
        *(
            pytest.param(
                {"ValohaiApiUrl": url},
                "Parameter ValohaiApiUrl failed to satisfy constraint: must be an https URL of a "
                "public DNS name",
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
    cloudformation = aws("cloudformation")
    events_before = len(standin.receiver.events())

    with pytest.raises(ClientError) as refused:
        cloudformation.create_stack(
            StackName=name,
            TemplateURL=products.release.workers_template_url,
            Parameters=parameter_list(products.parameters(**overrides)),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )

    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert message in error["Message"]
    with pytest.raises(ClientError, match="does not exist"):
        cloudformation.describe_stacks(StackName=name)
    assert not secret_exists(aws, f"valohai-hybrid/setup-token/{name}")
    assert len(standin.receiver.events()) == events_before
