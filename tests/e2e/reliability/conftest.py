"""One published platform for the reliability suite, in a region of its own, launched through
Service Catalog by the customer's admin as `valohai-hybrid publish` and `launch` do.

The redelivery interval is 30 s (its smallest allowed value), so that an event queued while
Valohai was down is retried within a test's patience. The IAM product's names are per account:
it is launched once here and terminated when the package is done, as is the platform.

The launch that waits out a whole Valohai outage (more than a minute, mostly idle) starts with
the suite, in a second region with a platform of its own, and the other tests run meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from localaws.harness import LocalAwsHandle, unique

from tests.support.reliability import (
    EXTERNAL_ID,
    IAM_PRODUCT,
    OUTAGE_REGION,
    QUEUE_ADDRESS_SERVICE_TIMEOUT,
    REGION,
    SETUP_TOKEN,
    UNTIL_THE_LAUNCH_IS_OVER,
    VALOHAI_PRINCIPAL,
    Launcher,
    Scenario,
    publish_platform,
)
from valohai_hybrid.local.platform import Customer, delete_platform
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.publish import Published


@pytest.fixture(scope="package")
def admin(local_aws: LocalAwsHandle) -> Customer:
    return Customer.create(local_aws, "reliability-admin", REGION)


@pytest.fixture(scope="package")
def platform(local_aws: LocalAwsHandle, admin: Customer) -> Iterator[Published]:
    published = publish_platform(
        local_aws, principals=[admin.arn], parameters={"RedeliveryIntervalSeconds": "30"}
    )
    yield published
    delete_platform(local_aws, published)


@pytest.fixture(scope="package")
def launcher(platform: Published, admin: Customer) -> Iterator[Launcher]:
    """The IAM product launched once, a key pair, and the Workers launches made from them."""
    catalog = admin.catalog(QUEUE_ADDRESS_SERVICE_TIMEOUT)
    iam = catalog.wait(
        catalog.launch(
            IAM_PRODUCT,
            unique("iam"),
            {"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": EXTERNAL_ID},
        )
    )
    assert iam.succeeded, iam.errors
    key_pair = unique("reliability-key")
    admin.client("ec2").create_key_pair(KeyName=key_pair)
    yield Launcher(admin, iam, key_pair)
    ended = catalog.wait(catalog.terminate(iam.provisioned_product_id))
    assert ended.succeeded, f"terminating the IAM product: {ended.errors}"


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


@pytest.fixture(scope="package", autouse=True)
def valohai_down_for_a_whole_launch(
    request: pytest.FixtureRequest, local_aws: LocalAwsHandle, admin: Customer, launcher: Launcher
) -> Iterator[Future[Scenario] | None]:
    """A launch while Valohai refuses every connection until the launch is over, started in
    the background when test_valohai_faults.py is among the tests to run."""
    if not any("test_valohai_faults.py" in item.nodeid for item in request.session.items):
        yield None
        return
    elsewhere = admin.in_region(OUTAGE_REGION)
    published = publish_platform(
        local_aws,
        region=OUTAGE_REGION,
        principals=[admin.arn],
        parameters={"RedeliveryIntervalSeconds": "30"},
    )
    key_pair = unique("reliability-key")
    elsewhere.client("ec2").create_key_pair(KeyName=key_pair)
    scenario = Scenario("down for the whole launch", down_for=UNTIL_THE_LAUNCH_IS_OVER)
    with ThreadPoolExecutor(1) as background:
        running = background.submit(
            scenario.run, Launcher(elsewhere, launcher.iam, key_pair), local_aws.state_dir
        )
        yield running
        running.result()
    if scenario.standin is not None:
        scenario.standin.stop()
    delete_platform(local_aws, published)
