"""Bad launch parameters, as a customer admin types them into Service Catalog: each is refused
with a message that names the parameter and the fix, and nothing is made.

Values the templates can judge are refused by ProvisionProduct itself (no provisioned product,
no stack, no word to Valohai). Values only the functions can judge (a secret name or a queue
address someone else holds) fail the launch with the reason in the record and roll it back,
leaving the other party's secret or setup as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

from tests.support.reliability import (
    QUEUE_ADDRESS_SERVICE_TIMEOUT,
    REGION,
    WORKERS_PRODUCT,
    Launcher,
    delivered_exactly_once,
    nothing_left,
    stack_status,
)
from valohai_hybrid.local.platform import Customer
from valohai_hybrid.local.standin import StandIn


def _provision(admin: Customer, name: str, parameters: dict[str, str]) -> Any:
    """ProvisionProduct as the console sends it: no checks of ours in between."""
    catalog = admin.catalog(QUEUE_ADDRESS_SERVICE_TIMEOUT)
    product = catalog.product(WORKERS_PRODUCT)
    return admin.client("servicecatalog").provision_product(
        ProductId=product.id,
        ProvisioningArtifactId=catalog.version_id(product, None),
        PathId=catalog.path_id(product),
        ProvisionedProductName=name,
        ProvisionToken=unique("token"),
        ProvisioningParameters=[{"Key": k, "Value": v} for k, v in parameters.items()],
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"QueueAddress": "https://acme.vqueue.net"},
            "Parameter 'QueueAddress' failed to satisfy constraint: must be a lower-case DNS "
            "name of two or more labels, such as acme.vqueue.net",
            id="address-with-scheme",
        ),
        pytest.param(
            {"SetupToken": "pasted with spaces " * 3},
            "Parameter 'SetupToken' failed to satisfy constraint: must be the 32-256 character "
            "token Valohai gave you",
            id="token-with-spaces",
        ),
        pytest.param(
            {"VpcCidr": "10.0.0.6/16"},
            "Parameter 'VpcCidr' failed to satisfy constraint: must be an IPv4 /16 block with "
            "its host bits zero",
            id="cidr-with-host-bits",
        ),
        pytest.param(
            {"ValohaiApiUrl": "http://app.valohai.com"},
            "Parameter 'ValohaiApiUrl' failed to satisfy constraint: must be an https URL",
            id="plain-http-api",
        ),
        pytest.param(
            {"KeyPair": "no-such-key"},
            "parameter value no-such-key for parameter name KeyPair does not exist",
            id="missing-key-pair",
        ),
        pytest.param(
            {"VpcId": "vpc-0123456789abcdef0"},
            "With an existing VPC (VpcId) give its public subnets in SubnetIds",
            id="vpc-without-subnets",
        ),
        pytest.param(
            {"NumberOfAZs": "7"},
            "Parameter 'NumberOfAZs' must be one of AllowedValues",
            id="seven-azs",
        ),
        pytest.param(
            {"QueueAdress": "acme.vqueue.net"},
            "Parameters: [QueueAdress] do not exist in the template",
            id="misspelt-name",
        ),
    ],
)
def test_a_value_the_template_refuses_is_refused_before_anything_is_made(
    local_aws: LocalAwsHandle,
    launcher: Launcher,
    standin: StandIn,
    overrides: dict[str, str],
    message: str,
) -> None:
    name = unique("refused")
    stacks_before = _stack_names(local_aws)

    with pytest.raises(ClientError) as refused:
        _provision(launcher.admin, name, launcher.parameters(standin, **overrides))

    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidParametersException"
    assert message in error["Message"]
    found = launcher.admin.client("servicecatalog").search_provisioned_products(
        Filters={"SearchQuery": [f"name:{name}"]}
    )
    assert found["ProvisionedProducts"] == []
    assert _stack_names(local_aws) == stacks_before
    assert standin.receiver.attempts() == []


def test_a_secret_name_someone_else_uses_fails_the_launch_and_their_secret_stays(
    local_aws: LocalAwsHandle, launcher: Launcher, standin: StandIn
) -> None:
    secrets = local_aws.client("secretsmanager", REGION)
    theirs = unique("TheirRedisPassword")
    secrets.create_secret(Name=theirs, SecretString="their-password")
    parameters = launcher.parameters(standin, RedisSecretName=theirs)

    failed = launcher.launch(parameters)

    assert failed.status == "FAILED"
    assert (
        f"A secret named {theirs} already exists and was not made by Valohai Hybrid: choose "
        "another SecretName" in " ".join(failed.errors)
    )
    assert stack_status(local_aws, failed) == "ROLLBACK_COMPLETE"
    nothing_left(local_aws, failed, parameters, secret_is_ours=False)
    assert secrets.get_secret_value(SecretId=theirs)["SecretString"] == "their-password"
    delivered_exactly_once(standin, failed.stack_id, ("stack.status_changed",))


def test_a_queue_address_another_setup_holds_fails_the_launch_and_that_setup_keeps_it(
    local_aws: LocalAwsHandle, launcher: Launcher, standin: StandIn
) -> None:
    first = launcher.launch(launcher.parameters(standin))
    assert first.succeeded, first.errors
    address = first.outputs["QueueAddress"]
    parameters = launcher.parameters(standin, QueueAddress=address)

    failed = launcher.launch(parameters)

    assert failed.status == "FAILED"
    first_stack = str(first.stack_id).split("/")[1]
    assert (
        f"QueueAddress {address} is already bound to {first.outputs['QueuePublicIp']} by stack "
        f"{first_stack} in this account: use the address Valohai gave this setup"
        in " ".join(failed.errors)
    )
    assert stack_status(local_aws, failed) == "ROLLBACK_COMPLETE"
    # The first setup keeps its address, in the account and at Valohai.
    record = local_aws.client("ssm", REGION).get_parameter(
        Name=f"/valohai-hybrid/queue-address/{address}"
    )
    assert first.stack_id in record["Parameter"]["Value"]
    assert standin.receiver.bindings()[address].stack_id == first.stack_id
    delivered_exactly_once(standin, failed.stack_id, ("stack.status_changed",))
    assert launcher.terminate(first).succeeded


def _stack_names(local_aws: LocalAwsHandle) -> set[str]:
    cloudformation = local_aws.client("cloudformation", REGION)
    return {
        s["StackName"]
        for page in cloudformation.get_paginator("list_stacks").paginate()
        for s in page["StackSummaries"]
    }
