"""One published platform for the reliability suite, in a region of its own, launched through
Service Catalog by the customer's admin as `valohai-hybrid publish` and `launch` do.

The redelivery interval is 30 s (its smallest allowed value), so that an event queued while
Valohai was down is retried within a test's patience. The IAM product's names are per account:
it is launched once here and terminated when the package is done, as is the platform.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from reliability_support import (
    IAM_PRODUCT,
    REGION,
    SETUP_TOKEN,
    VALOHAI_PRINCIPAL,
    Admin,
    Launcher,
    publish_platform,
    unique,
)

from valohai_hybrid.localaws.testing import LocalAwsHandle
from valohai_hybrid.publish import Published
from valohai_hybrid.standin import StandIn


@pytest.fixture(scope="package")
def admin(local_aws: LocalAwsHandle) -> Admin:
    return Admin.create(local_aws)


@pytest.fixture(scope="package")
def platform(local_aws: LocalAwsHandle, admin: Admin) -> Iterator[Published]:
    published = publish_platform(
        local_aws, principals=[admin.arn], parameters={"RedeliveryIntervalSeconds": "30"}
    )
    yield published
    cloudformation = local_aws.client("cloudformation", REGION)
    (stack,) = cloudformation.describe_stacks(StackName=published.stack_name)["Stacks"]
    cloudformation.delete_stack(StackName=stack["StackId"])
    deleted = local_aws.wait_for_stack(stack["StackId"], region=REGION)
    assert deleted["StackStatus"] == "DELETE_COMPLETE", deleted.get("StackStatusReason")


@pytest.fixture(scope="package")
def launcher(platform: Published, admin: Admin) -> Iterator[Launcher]:
    """The IAM product launched once, a key pair, and the Workers launches made from them."""
    catalog = admin.catalog()
    iam = catalog.wait(
        catalog.launch(IAM_PRODUCT, unique("iam"), {"AssumeRoleARN": VALOHAI_PRINCIPAL})
    )
    assert iam.succeeded, iam.errors
    key_pair = unique("reliability-key")
    admin.client("ec2").create_key_pair(KeyName=key_pair)
    yield Launcher(admin, iam, key_pair)
    catalog.wait(catalog.terminate(iam.provisioned_product_id))


@pytest.fixture
def standin(local_aws: LocalAwsHandle) -> Iterator[StandIn]:
    """Valohai for one test, trusting the local AWS's CA, so that it can misbehave alone."""
    with StandIn([SETUP_TOKEN], local_aws.state_dir) as server:
        yield server


@pytest.fixture
def no_faults(local_aws: LocalAwsHandle) -> Iterator[None]:
    """Whatever a test armed at the local AWS is disarmed when it ends."""
    yield
    local_aws.control_delete("faults")
