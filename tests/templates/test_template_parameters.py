"""Parameters: labelled and grouped for the console, and bad values rejected before anything is
created (CloudFormation checks constraints and Rules first)."""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from typing import Any

import pytest

from tests.support.cfn import PRODUCT_TEMPLATES, failed_rule_assertions, load, parameter_error

HEX40 = "c1eed793c37d2d2f486c5233b03933b71f4ba491"
#: What the attack on a clone got accepted, and its neighbours: every network parameter that
#: names where traffic may come from refuses them.
NOT_PUBLIC_OR_TOO_WIDE = [
    "0.0.0.0/0",
    "34.0.0.0/8",
    "34.248.0.0/15",
    "10.0.0.0/16",
    "10.1.2.3/32",
    "172.16.0.1/32",
    "172.31.255.255/32",
    "192.168.1.1/32",
    "127.0.0.1/32",
    "169.254.169.254/32",
    "100.64.0.1/32",
    "0.1.2.3/32",
    "192.0.2.10/32",
    "198.51.100.7/32",
    "203.0.113.9/32",
    "198.18.0.1/32",
    "192.0.0.0/16",
    "224.0.0.1/32",
    "239.255.255.250/32",
    "240.0.0.1/32",
    "255.255.255.255/32",
    "034.248.245.191/32",
]

# (template, parameter): (values CloudFormation must accept, values it must reject)
SAMPLES: dict[tuple[str, str], tuple[list[str], list[str]]] = {
    ("iam.yml", "AssumeRoleARN"): (
        [
            "arn:aws:iam::905675611115:user/valohai-customer-acme",
            "arn:aws:iam::905675611115:role/path/valohai",
            "arn:aws-cn:iam::905675611115:user/valohai-customer-acme",
        ],
        [
            # A whole account would let every principal in it assume ValohaiMaster.
            "arn:aws:iam::905675611115:root",
            "arn:aws-cn:iam::905675611115:root",
            "905675611115",
            "arn:aws:iam::90567561111:user/acme",
            "arn:aws:iam::905675611115:group/acme",
            "arn:aws:sts::905675611115:assumed-role/x/y",
            "arn:aws:iam::905675611115:user/acme ",
            "",
        ],
    ),
    ("iam.yml", "ExternalId"): (
        ["valohai-3f6c2a", "ab", "a" * 1224, "Az09+=,.@:/_-"],
        ["", "x", "has space", "a" * 1225, "semi;colon", "tab\there", "ä-umlaut"],
    ),
    ("main.yml", "ValohaiMasterRoleARN"): (
        [
            "arn:aws:iam::123456789012:role/ValohaiMaster",
            "arn:aws-us-gov:iam::123456789012:role/ValohaiMaster",
        ],
        [
            "ValohaiMaster",
            "arn:aws:iam::123456789012:role/SomeOtherRole",
            "arn:aws:iam::123456789012:role/ValohaiMaster2",
            "arn:aws:iam::123456789012:role/path/ValohaiMaster",
            "arn:aws:iam::123456789012:user/ValohaiMaster",
            "arn:aws:iam::12345678901:role/ValohaiMaster",
            "arn:aws:iam:eu-west-1:123456789012:role/ValohaiMaster",
        ],
    ),
    ("main.yml", "QueueAddress"): (
        ["acme.vqueue.net", "q-1.customer.example.com", "a.io"],
        [
            "acme",
            "https://acme.vqueue.net",
            "acme.vqueue.net.",
            "Acme.vqueue.net",
            "-acme.vqueue.net",
            "acme-.vqueue.net",
            "acme_q.vqueue.net",
            "acme..vqueue.net",
            "acme.vqueue.net/queue",
            "acme.vqueue.net:63790",
            "34.248.245.191",
            "a" * 64 + ".vqueue.net",
            ("a" * 60 + ".") * 5 + "net",
        ],
    ),
    ("main.yml", "SetupToken"): (
        ["a" * 32, "Az09._~-" * 32],
        ["a" * 31, "a" * 257, "a" * 31 + " ", "a" * 31 + "+", "a" * 31 + "/", "a" * 31 + "\n"],
    ),
    ("main.yml", "ValohaiApiUrl"): (
        [
            "https://app.valohai.com",
            "https://valohai.internal.example.com:8443",
            "https://localhost:8443",
            "http://127.0.0.1:8080",
            "http://localhost",
            "https://127.0.0.1:65535",
            "https://xn--bcher-kva.example:1",
        ],
        [
            "http://app.valohai.com",
            "https://app.valohai.com/",
            "https://app.valohai.com/api/v0",
            "app.valohai.com",
            "ftp://app.valohai.com",
            "https://APP.valohai.com",
            # Unusable: address literals other than loopback, ports out of range, bad names.
            "https://10.0.0.5",
            "https://169.254.169.254",
            "https://192.168.1.1:8443",
            "https://[::1]",
            "https://app.valohai.com:99999",
            "https://app.valohai.com:0",
            "https://a..b",
            "https://.valohai.com",
            "https://intranet",
            "https://" + "a" * 3000 + ".com",
            "https://" + "a" * 64 + ".com",
        ],
    ),
    ("main.yml", "VpcId"): (
        ["", "vpc-0123abcd", "vpc-0123456789abcdef0"],
        ["vpc-123", "vpc-0123456789abcdef", "subnet-0123abcd", "vpc-0123ABCD", " vpc-0123abcd"],
    ),
    ("main.yml", "SubnetIds"): (
        ["", "subnet-0123abcd", "subnet-0123456789abcdef0,subnet-0fedcba9876543210"],
        [
            "subnet-0123abcd, subnet-0123abce",
            "subnet-0123abcd,",
            ",subnet-0123abcd",
            "sg-0123abcd",
            "subnet-0123abcd;subnet-0123abce",
        ],
    ),
    ("main.yml", "NumberOfAZs"): (["2", "3", "6"], ["0", "1", "7", "2.5", "two", ""]),
    ("main.yml", "VpcCidr"): (
        ["10.0.0.0/16", "172.31.0.0/16", "192.168.0.0/16"],
        ["10.0.0.6/16", "10.0.1.0/16", "10.0.0.0/24", "10.0.0.0/8", "10.0.0.0", "256.0.0.0/16"],
    ),
    ("main.yml", "ValohaiEgressCidr"): (
        ["34.248.245.191/32", "34.248.0.0/16", "8.8.8.0/24", "192.0.1.0/24"],
        [
            "34.248.245.191",
            "34.248.245.191/33",
            "34.248.245.256/32",
            "any",
            "",
            *NOT_PUBLIC_OR_TOO_WIDE,
        ],
    ),
    ("main.yml", "MaintenanceSshCidr"): (
        ["", "3.251.38.215/32", "52.16.0.0/16"],
        ["3.251.38.215", "3.251.38.215/40", "none", *NOT_PUBLIC_OR_TOO_WIDE],
    ),
    ("main.yml", "Suffix"): (
        ["", "acme", "acme-eu-west-1", "a" * 40, "1"],
        ["Acme", "-acme", "acme-", "a" * 41, "acme_1", "acme.eu"],
    ),
    ("main.yml", "WorkerQueueVersion"): (
        [HEX40, "sha256:" + "0" * 64],
        ["latest", "main", HEX40[:7], HEX40.upper(), "sha256:abc", "v1.0.0", ""],
    ),
    ("main.yml", "RedisSecretRecoveryWindowInDays"): (
        ["0", "7", "18", "30"],
        ["1", "6", "31", "-1", "7.5", ""],
    ),
    ("main.yml", "RedisSecretKmsKeyId"): (
        [
            "",
            "alias/valohai",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ],
        ["valohai", "arn:aws:s3:::bucket", "alias valohai"],
    ),
    ("main.yml", "QueueInstanceType"): (["t3.medium", "m7i.large"], ["t2.micro", "t4g.medium"]),
    ("main.yml", "NotificationPolicy"): (["BestEffort", "Required"], ["besteffort", "Always"]),
}


def parameters(template: str) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = load(template).get("Parameters", {})
    return params


def sample_cases(accept: bool) -> list[tuple[str, str, str]]:
    return [
        (template, name, value)
        for (template, name), (good, bad) in SAMPLES.items()
        for value in (good if accept else bad)
    ]


@pytest.mark.parametrize("template", PRODUCT_TEMPLATES)
def test_every_parameter_is_grouped_once_and_labelled(template: str) -> None:
    interface = load(template)["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [name for group in interface["ParameterGroups"] for name in group["Parameters"]]
    assert all(group["Label"]["default"] for group in interface["ParameterGroups"])
    assert sorted(grouped) == sorted(parameters(template))
    assert set(interface["ParameterLabels"]) == set(parameters(template))
    assert all(label["default"] for label in interface["ParameterLabels"].values())


@pytest.mark.parametrize("template", PRODUCT_TEMPLATES)
def test_every_parameter_is_described_and_its_constraints_explained(template: str) -> None:
    constraints = {"AllowedPattern", "AllowedValues", "MinLength", "MaxLength"}
    constraints |= {"MinValue", "MaxValue"}
    for name, definition in parameters(template).items():
        assert definition.get("Description"), f"{template} {name} has no Description"
        if constraints & set(definition):
            assert definition.get("ConstraintDescription"), f"{template} {name}"


@pytest.mark.parametrize("template", PRODUCT_TEMPLATES)
def test_every_default_satisfies_its_own_constraints(template: str) -> None:
    for name, definition in parameters(template).items():
        if "Default" in definition and definition["Type"] in ("String", "Number"):
            assert parameter_error(definition, str(definition["Default"])) is None, name


@pytest.mark.parametrize(("template", "name", "value"), sample_cases(accept=True))
def test_valid_values_are_accepted(template: str, name: str, value: str) -> None:
    assert parameter_error(parameters(template)[name], value) is None


@pytest.mark.parametrize(("template", "name", "value"), sample_cases(accept=False))
def test_bad_values_are_rejected_with_the_constraint_description(
    template: str, name: str, value: str
) -> None:
    definition = parameters(template)[name]
    error = parameter_error(definition, value)
    assert error is not None
    assert error == "must be a number" or definition["ConstraintDescription"] in error


def test_setup_token_is_no_echo() -> None:
    assert parameters("main.yml")["SetupToken"]["NoEcho"] is True


def test_key_pair_is_checked_by_cloudformation_for_existence() -> None:
    assert parameters("main.yml")["KeyPair"]["Type"] == "AWS::EC2::KeyPair::KeyName"
    assert "Default" not in parameters("main.yml")["KeyPair"]


def test_machine_image_comes_from_canonicals_public_parameter() -> None:
    image = parameters("main.yml")["QueueImageId"]
    assert image["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert image["Default"] == (
        "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
    )


def test_service_tokens_are_found_in_ssm_without_typing_arns() -> None:
    params = parameters("main.yml")
    expected = {
        "RedisSecretServiceToken": "/valohai-hybrid/service-token/redis-secret",
        "QueueAddressServiceToken": "/valohai-hybrid/service-token/queue-address",
        "NotificationServiceToken": "/valohai-hybrid/service-token/notification",
    }
    for name, default in expected.items():
        assert params[name]["Type"] == "AWS::SSM::Parameter::Value<String>"
        assert params[name]["Default"] == default
    advanced = next(
        group
        for group in load("main.yml")["Metadata"]["AWS::CloudFormation::Interface"][
            "ParameterGroups"
        ]
        if group["Label"]["default"] == "Advanced"
    )
    assert set(expected) <= set(advanced["Parameters"])


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({}, None),
        ({"VpcId": "vpc-0123abcd", "SubnetIds": "subnet-0123abcd,subnet-0123abce"}, None),
        ({"VpcId": "vpc-0123abcd"}, "give its public subnets in SubnetIds"),
        ({"SubnetIds": "subnet-0123abcd"}, "give the VPC in VpcId too"),
    ],
)
def test_existing_vpc_and_subnets_come_together(
    values: dict[str, str], complaint: str | None
) -> None:
    failures = failed_rule_assertions(load("main.yml"), values)
    if complaint is None:
        assert failures == []
    else:
        assert len(failures) == 1
        assert complaint in failures[0]


def passed_through() -> list[tuple[str, str, str, str]]:
    """(template, parameter, nested template, nested parameter) for plain values passed by Ref.

    Parameters of AWS-specific types are left out: CloudFormation resolves and checks those.
    """
    plain = ("String", "Number")
    found = []
    for template in ("main.yml", "network.yml"):
        for resource in load(template)["Resources"].values():
            if resource["Type"] != "AWS::CloudFormation::Stack":
                continue
            nested = resource["Properties"]["TemplateURL"]
            for nested_name, value in resource["Properties"]["Parameters"].items():
                if not (isinstance(value, dict) and set(value) == {"Ref"}):
                    continue
                parent = parameters(template).get(value["Ref"])
                nested_type = parameters(nested)[nested_name]["Type"]
                if parent and parent["Type"] in plain and nested_type in plain:
                    found.append((template, value["Ref"], nested, nested_name))
    return found


@pytest.mark.parametrize(("template", "name", "nested", "nested_name"), passed_through())
def test_nested_stacks_accept_every_value_their_parent_accepts(
    template: str, name: str, nested: str, nested_name: str
) -> None:
    """A value the parent accepts but a nested stack rejects fails after resources exist."""
    definition = parameters(template)[name]
    accepted = [str(definition["Default"])] if "Default" in definition else []
    accepted += [str(v) for v in definition.get("AllowedValues", [])]
    accepted += SAMPLES.get((template, name), ([], []))[0]
    nested_definition = parameters(nested)[nested_name]
    for value in accepted:
        assert parameter_error(nested_definition, value) is None, (name, value)


#: Address blocks that are not public unicast (IANA's special-purpose registry: not globally
#: reachable, or not unicast), as (first, last) addresses.
NOT_PUBLIC_UNICAST = [
    (int(block.network_address), int(block.broadcast_address))
    for block in map(
        ipaddress.IPv4Network,
        [
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.88.99.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/4",
            "240.0.0.0/4",
        ],
    )
]
#: The /16s that hold a special /24: the templates accept only /24 or narrower ranges there.
SHARED_16S = [
    (int(block.network_address), int(block.broadcast_address))
    for block in map(
        ipaddress.IPv4Network, ("192.0.0.0/16", "192.88.0.0/16", "198.51.0.0/16", "203.0.0.0/16")
    )
]


def acceptable_source(value: str) -> bool:
    """The rule the network patterns write as a regular expression, written with addresses."""
    address, prefix = value.split("/")
    size = 1 << (32 - int(prefix))
    first = int.from_bytes(bytes(map(int, address.split(".")))) & -size  # host bits cleared
    last = first + size - 1

    def overlaps(blocks: list[tuple[int, int]]) -> bool:
        return any(
            first <= block_last and block_first <= last for block_first, block_last in blocks
        )

    if int(prefix) < 16 or overlaps(NOT_PUBLIC_UNICAST):
        return False
    return int(prefix) >= 24 or not overlaps(SHARED_16S)


OCTETS = (0, 1, 2, 9, 10, 11, 15, 16, 18, 19, 31, 32, 51, 63, 64, 88, 99, 100, 101, 112, 113)
OCTETS += (114, 126, 127, 128, 167, 168, 169, 171, 172, 173, 191, 192, 198, 203, 223, 224)
OCTETS += (239, 240, 253, 254, 255)


@cache
def judged_sources() -> list[tuple[str, bool]]:
    """Every first octet, with the second and third octets and prefix lengths where the special
    blocks begin and end, and whether it is acceptable (judged once for both parameters)."""
    return [
        (value, acceptable_source(value))
        for first in range(256)
        for second in OCTETS
        for third in (0, 2, 99, 113)
        for prefix in (8, 15, 16, 23, 24, 32)
        for value in [f"{first}.{second}.{third}.7/{prefix}"]
    ]


@pytest.mark.parametrize("name", ["ValohaiEgressCidr", "MaintenanceSshCidr"])
def test_source_ranges_are_public_unicast_and_no_wider_than_16(name: str) -> None:
    """Every first octet, with the second and third octets and prefix lengths where the
    special blocks begin and end, judged by the pattern as by ipaddress."""
    definition = parameters("main.yml")[name]
    assert parameters("worker-queue.yml")[name]["AllowedPattern"] == definition["AllowedPattern"]
    pattern = re.compile(definition["AllowedPattern"])
    disagreements = [
        value
        for value, acceptable in judged_sources()
        if (pattern.fullmatch(value) is not None) != acceptable
    ]
    assert disagreements == []
