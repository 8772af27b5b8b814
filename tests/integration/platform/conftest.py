"""One published platform for the package: the release of this checkout, published with
`valohai_hybrid.publish` against the local AWS exactly as `valohai-hybrid publish` publishes it,
with an end user associated through the principals parameter.

The redelivery interval is 30 s (its smallest allowed value) so that a queued notification is
retried within a test's patience. The platform is deleted when the package is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from localaws.harness import LocalAwsHandle, unique

from tests.support.common import eventually
from tests.support.platform import (
    EXTERNAL_ID,
    IAM_PRODUCT,
    REGION,
    RELEASE,
    SETUP_TOKEN,
    VALOHAI_PRINCIPAL,
    EndUser,
    Record,
    next_patch,
    publish_release,
    release_copy,
)
from valohai_hybrid.local.platform import delete_platform
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.publish import Published

REDELIVERY_INTERVAL = "30"


@pytest.fixture(scope="package")
def end_user(local_aws: LocalAwsHandle) -> EndUser:
    return EndUser(local_aws)


@pytest.fixture(scope="package")
def platform(local_aws: LocalAwsHandle, end_user: EndUser) -> Iterator[Published]:
    published = publish_release(
        local_aws,
        principals=[end_user.arn],
        parameters={"RedeliveryIntervalSeconds": REDELIVERY_INTERVAL},
    )
    yield published
    delete_platform(local_aws, published)


@pytest.fixture(scope="package")
def next_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The next patch release of the same templates (version bumped as a maintainer does)."""
    following = next_patch(RELEASE)
    return following, release_copy(following, tmp_path_factory.mktemp("release") / "cfn")


@pytest.fixture(scope="package")
def standin(local_aws: LocalAwsHandle) -> Iterator[StandIn]:
    """Valohai's side, with the local AWS's CA, so the functions trust its certificate."""
    with StandIn([SETUP_TOKEN], local_aws.state_dir) as server:
        yield server


@pytest.fixture
def own_standin(local_aws: LocalAwsHandle) -> Iterator[StandIn]:
    """A stand-in for one test, to make it misbehave without disturbing the others."""
    with StandIn([SETUP_TOKEN], local_aws.state_dir) as server:
        yield server


@pytest.fixture
def key_pair(end_user: EndUser) -> str:
    name = unique("queue-key")
    end_user.ec2.create_key_pair(KeyName=name)
    return name


@pytest.fixture
def launches(local_aws: LocalAwsHandle, end_user: EndUser) -> Iterator[list[Record]]:
    """The launches a test makes: whatever is still there afterwards is terminated, newest
    first, so that the next test finds the account clean.

    Each setup's token is deleted behind its last event, so waiting for that means none of its
    events is left to be redelivered once the test's own stand-in is gone (its final event is
    forwarded asynchronously, after the termination: one that found the stand-in stopped was
    redelivered for a day, and the next test found the redelivery queue never empty)."""
    made: list[Record] = []
    yield made
    secrets = local_aws.client("secretsmanager", REGION)

    def token_of(stack_id: str) -> bool:
        return any(
            {"Key": "valohai-hybrid:stack-id", "Value": stack_id} in s.get("Tags", [])
            for s in secrets.list_secrets()["SecretList"]
        )

    for record in reversed(made):
        try:
            end_user.servicecatalog.describe_provisioned_product(Id=record.provisioned_product_id)
        except ClientError:
            pass  # terminated already
        else:
            ended = end_user.terminate(record)
            assert ended.status == "SUCCEEDED", (
                f"terminating {record.provisioned_product_id}: {ended.errors}"
            )
        stack_id = record.outputs.get("CloudformationStackARN")
        if stack_id:
            eventually(
                lambda stack_id=stack_id: not token_of(stack_id),
                timeout=90,
                what=f"the setup token of {stack_id} deleted behind its last event",
            )


@pytest.fixture
def iam_launch(platform: Published, end_user: EndUser) -> Iterator[Record]:
    """The IAM product launched by the end user (its role names are per account: one at a
    time), terminated after the test."""
    record = end_user.provision(
        IAM_PRODUCT, None, {"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": EXTERNAL_ID}
    )
    assert record.status == "SUCCEEDED", record.errors
    yield record
    ended = end_user.terminate(record)
    assert ended.status == "SUCCEEDED", f"terminating the IAM product: {ended.errors}"
