"""Secret hygiene over a whole cycle, and launching again where a setup was.

A setup is launched with a setup token known only to this test, its Redis password rotated by
an update to a newly published release, terminated (the password secret left pending deletion,
the data bucket retained with its data), launched again in the same account and region with
the same names (which takes both back, with a new password), and terminated again. Then every
place the cycle wrote to is searched for the token and each password, plain or base64-encoded:
stack parameters, outputs, events and resources of every stack of the region, Service Catalog
records and provisioned products, CloudWatch Logs, SSM parameters, function configurations,
EC2 user data and tags, what Valohai received, and every file written meanwhile under the local
AWS's state directory and the temporary directory. The only place they may be is Secrets
Manager, which is where they are kept.
"""

from __future__ import annotations

import base64
import json
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from localaws.harness import LocalAwsHandle

from tests.support.reliability import (
    LIFE_EVENTS,
    QUEUE_ADDRESS_SERVICE_TIMEOUT,
    REGION,
    Launcher,
    delivered_exactly_once,
    publish_platform,
)
from valohai_hybrid.catalog import Outcome
from valohai_hybrid.checkout import ROOT
from valohai_hybrid.local.demo import next_patch, prepare_release
from valohai_hybrid.local.platform import Customer
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.local.standin.server import JOURNAL_NAME
from valohai_hybrid.publish import Published

LARGEST_FILE = 50 << 20


def _needles(secret: str) -> list[bytes]:
    """The secret, and what it looks like base64-encoded at each offset of a longer text."""
    raw = secret.encode()
    found = [raw]
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        found.append(encoded[(offset * 4 + 2) // 3 + 1 : -4])
    return found


def _pages(call: Any, key: str, **request: Any) -> Iterator[Any]:
    """Every item of a paginated listing (NextToken or nextToken)."""
    while True:
        page = call(**request)
        yield from page.get(key, [])
        token = page.get("NextToken") or page.get("nextToken")
        if not token:
            return
        request["nextToken" if "nextToken" in page else "NextToken"] = token


def _aws_texts(
    local_aws: LocalAwsHandle, admin: Customer, records: list[str]
) -> Iterator[tuple[str, str]]:
    """(where, text) of everything the local AWS shows about the region's setups."""

    def text(value: Any) -> str:
        return json.dumps(value, default=str)

    cloudformation = local_aws.client("cloudformation", REGION)
    for summary in _pages(cloudformation.list_stacks, "StackSummaries"):
        stack = summary["StackId"]
        yield f"stack {stack}", text(cloudformation.describe_stacks(StackName=stack))
        yield (
            f"events of {stack}",
            text(
                list(_pages(cloudformation.describe_stack_events, "StackEvents", StackName=stack))
            ),
        )
        yield (
            f"resources of {stack}",
            text(cloudformation.describe_stack_resources(StackName=stack)),
        )
        yield f"template of {stack}", text(cloudformation.get_template(StackName=stack))
    servicecatalog = admin.client("servicecatalog")
    for record in records:
        page = servicecatalog.describe_record(Id=record)
        yield f"record {record}", text(page)
        while page.get("NextPageToken"):
            page = servicecatalog.describe_record(Id=record, PageToken=page["NextPageToken"])
            yield f"record {record}", text(page)
    yield "provisioned products", text(servicecatalog.search_provisioned_products())
    yield "record history", text(servicecatalog.list_record_history())
    logs = local_aws.client("logs", REGION)
    for group in _pages(logs.describe_log_groups, "logGroups"):
        name = group["logGroupName"]
        for event in _pages(logs.filter_log_events, "events", logGroupName=name):
            yield f"log {name}", event["message"]
    ssm = local_aws.client("ssm", REGION)
    for parameter in _pages(ssm.describe_parameters, "Parameters"):
        yield f"SSM {parameter['Name']}", text(ssm.get_parameter(Name=parameter["Name"]))
    yield "functions", text(local_aws.client("lambda", REGION).list_functions())
    ec2 = local_aws.client("ec2", REGION)
    for reservation in _pages(ec2.describe_instances, "Reservations"):
        for instance in reservation["Instances"]:
            data = ec2.describe_instance_attribute(
                InstanceId=instance["InstanceId"], Attribute="userData"
            )["UserData"].get("Value", "")
            yield f"user data of {instance['InstanceId']}", base64.b64decode(data).decode()
    yield "EC2 tags", text(list(_pages(ec2.describe_tags, "Tags")))
    yield (
        "secrets' descriptions and tags",
        text(local_aws.client("secretsmanager", REGION).list_secrets()),
    )


def _files(roots: list[Path], since: float) -> Iterator[tuple[Path, bytes]]:
    """Every file under `roots` written since `since`, with its content (its start)."""
    for root in roots:
        for path in root.rglob("*"):
            try:
                if path.is_file() and path.stat().st_mtime >= since:
                    with path.open("rb") as handle:
                        yield path, handle.read(LARGEST_FILE)
            except OSError:
                continue  # gone meanwhile (another process's temporary file)


@pytest.fixture
def next_release(tmp_path: Path, platform: Published) -> tuple[str, Path]:
    version = next_patch(platform.releases[0])
    return version, prepare_release(ROOT / "cfn", version, tmp_path / "cfn")


def _password(local_aws: LocalAwsHandle, outcome: Outcome) -> str:
    secrets_manager = local_aws.client("secretsmanager", REGION)
    return str(
        secrets_manager.get_secret_value(SecretId=outcome.outputs["RedisSecretArn"])["SecretString"]
    )


def test_a_whole_cycle_leaves_the_token_and_passwords_nowhere_and_launching_again_works(
    local_aws: LocalAwsHandle,
    launcher: Launcher,
    next_release: tuple[str, Path],
) -> None:
    began = time.time() - 1  # file times have a coarse resolution on some file systems
    token = f"hygiene-{secrets.token_urlsafe(32)}"
    catalog = launcher.admin.catalog(QUEUE_ADDRESS_SERVICE_TIMEOUT)
    s3 = local_aws.client("s3", REGION)
    with StandIn([token], local_aws.state_dir) as standin:
        parameters = launcher.parameters(standin, SetupToken=token)
        first = launcher.launch(parameters)
        assert first.succeeded, first.errors
        passwords = [_password(local_aws, first)]
        bucket = first.outputs["DataBucketName"]
        s3.put_object(Bucket=bucket, Key="models/keep.bin", Body=b"customer data")

        version, templates = next_release
        publish_platform(
            local_aws,
            version=version,
            cfn_dir=templates,
            parameters={"RedeliveryIntervalSeconds": "30"},
        )
        updated = catalog.wait(
            catalog.update(
                first.provisioned_product_id,
                {"RedisPasswordRotationToken": "rotation-1"},
                version=version,
            )
        )
        assert updated.succeeded, updated.errors
        assert updated.outputs["ProductVersion"] == version
        passwords.append(_password(local_aws, updated))
        assert passwords[1] != passwords[0]
        ended = launcher.terminate(first)
        assert ended.succeeded, ended.errors

        # What the terminated setup left: its password pending deletion, its data.
        secret = local_aws.client("secretsmanager", REGION).describe_secret(
            SecretId=parameters["RedisSecretName"]
        )
        assert "DeletedDate" in secret
        assert s3.get_object(Bucket=bucket, Key="models/keep.bin")["Body"].read() == (
            b"customer data"
        )

        # Launching again with the same names takes both back.
        again = launcher.launch({**parameters, "ReuseRetainedDataBucket": "true"})
        assert again.succeeded, again.errors
        assert again.outputs["RedisSecretArn"] == first.outputs["RedisSecretArn"]
        assert again.outputs["DataBucketName"] == bucket
        assert s3.get_object(Bucket=bucket, Key="models/keep.bin")["Body"].read() == (
            b"customer data"
        )
        passwords.append(_password(local_aws, again))
        assert passwords[2] not in passwords[:2]
        ended_again = launcher.terminate(again)
        assert ended_again.succeeded, ended_again.errors

        delivered_exactly_once(standin, first.stack_id, (*LIFE_EVENTS, "setup.updated"))
        delivered_exactly_once(standin, again.stack_id, LIFE_EVENTS)
        received = [json.dumps(asdict(e)) for e in standin.receiver.events()]
        received += [json.dumps(asdict(a)) for a in standin.receiver.attempts()]

    records = [o.record_id for o in (first, updated, ended, again, ended_again)]
    places = list(_aws_texts(local_aws, launcher.admin, records))
    places += [("what Valohai received", text) for text in received]
    needles = {
        name: _needles(value)
        for name, value in [("setup token", token)]
        + [(f"password {n}", p) for n, p in enumerate(passwords, 1)]
    }
    leaks = [
        f"{name} in {where}"
        for where, text in places
        for name, forms in needles.items()
        if any(form.decode() in text for form in forms)
    ]
    roots = [local_aws.state_dir, Path(tempfile.gettempdir())]
    searched = set()
    for path, content in _files(roots, began):
        searched.add(path)
        leaks += [
            f"{name} in {path}"
            for name, forms in needles.items()
            if any(form in content for form in forms)
        ]
    assert leaks == []
    # The search saw the cycle: the stand-in's journal and the functions' logs are among it.
    assert local_aws.state_dir / JOURNAL_NAME in searched
    assert any(where.startswith("log /aws/lambda/") for where, _ in places)
