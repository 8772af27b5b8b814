"""An update of a launched setup reaches its running queue machine.

The setup is launched and updated through Service Catalog on the local AWS as a customer does; the
queue machine runs as in tests/integration/queue_machine/ (its boot script for real, with
recording stand-ins for systemctl, docker and apt), with the user data EC2 holds for the
instance, the IAM product's ValohaiQueueRole and the setup's own Redis secret.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from localaws.harness import LocalAwsHandle

from tests.support.imds_standin import Instance, running_imds
from tests.support.products import REGION, Aws, Products, Setup
from tests.support.queue_machine import Machine

NEW_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def instance_user_data(aws: Aws, instance_id: str) -> bytes:
    attribute = aws("ec2").describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(attribute["UserData"]["Value"])


@pytest.fixture
def queue_role(aws: Aws, iam_setup: Setup) -> tuple[str, dict[str, str]]:
    """The IAM product's queue role, assumed as EC2 does for the instance profile."""
    arn = iam_setup.outputs["ValohaiQueueRoleArn"]
    session = aws("sts").assume_role(RoleArn=arn, RoleSessionName="i-0queue")["Credentials"]
    return arn.rsplit("/", 1)[1], {
        "AccessKeyId": session["AccessKeyId"],
        "SecretAccessKey": session["SecretAccessKey"],
        "Token": session["SessionToken"],
        "Expiration": session["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@pytest.fixture
def launched(products: Products) -> Iterator[Setup]:
    setup = products.deploy()
    yield setup
    products.delete(setup)


def test_new_version_and_address_reach_the_same_running_machine(
    aws: Aws,
    products: Products,
    launched: Setup,
    queue_role: tuple[str, dict[str, str]],
    local_aws: LocalAwsHandle,
    tmp_path: Path,
) -> None:
    instance_id = launched.outputs["QueueInstanceId"]
    password = aws("secretsmanager").get_secret_value(SecretId=launched.outputs["RedisSecretArn"])
    role_name, credentials = queue_role
    instance = Instance(
        user_data=instance_user_data(aws, instance_id),
        public_ipv4=launched.outputs["QueuePublicIp"],
        role_name=role_name,
        credentials=credentials,
    )
    aws_env = {
        "AWS_ENDPOINT_URL": local_aws.endpoint_url,
        "AWS_CA_BUNDLE": str(local_aws.ca_bundle),
    }
    with running_imds(instance) as imds:
        machine = Machine.create(tmp_path, imds, aws_env)
        machine.first_boot()
        password_file = machine.path("/run/valohai-worker-queue/redis-password")
        assert password_file.read_text() == password["SecretString"]

        address = f"moved-{launched.parameters['QueueAddress']}"
        updated = products.update(launched, WorkerQueueVersion=NEW_COMMIT, QueueAddress=address)
        # The same instance: CloudFormation stops it, sets the new user data, starts it.
        assert updated.outputs["QueueInstanceId"] == instance_id
        machine.reboot(instance_user_data(aws, instance_id))

    image = f"valohai-worker-queue:{NEW_COMMIT}"
    builds = [argv for argv in machine.argvs("docker", since_mark=True) if argv[0] == "build"]
    assert builds == [
        [
            "build",
            "--tag",
            image,
            f"https://github.com/valohai/worker-queue.git#{NEW_COMMIT}:docker",
        ]
    ]
    (run,) = [c for c in machine.calls("docker", since_mark=True) if c["argv"][0] == "run"]
    assert image in run["argv"]
    assert run["env"]["QUEUE_ADDRESS"] == address
    assert password_file.read_text() == password["SecretString"]
    assert run["env"]["AWS_REGION"] == REGION
