"""A customer admin's whole way through the published platform, as an end user of Service
Catalog: find the products, launch IAM then Workers, move to a new release, terminate, and
launch again in the same account. Valohai (the stand-in) hears about each step."""

from __future__ import annotations

import hashlib
from pathlib import Path

from localaws.harness import LocalAwsHandle

from tests.support.common import REDELIVERY_WAIT, events_of, eventually
from tests.support.platform import (
    EXTERNAL_ID,
    IAM_PRODUCT,
    REGION,
    RELEASE,
    SETUP_TOKEN,
    VALOHAI_PRINCIPAL,
    WORKERS_PRODUCT,
    EndUser,
    Record,
    project_with_changed_functions,
    publish_release,
    validate,
    workers_parameters,
)
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.products import IAM, WORKERS
from valohai_hybrid.publish import Published

SERVICE_TOKENS = (
    "/valohai-hybrid/service-token/redis-secret",
    "/valohai-hybrid/service-token/queue-address",
    "/valohai-hybrid/service-token/notification",
)
#: Outputs of the Workers product -> the hand-off field Valohai gets them in.
HANDED_OFF = {
    "DataBucketName": "data_bucket_name",
    "QueuePublicIp": "queue_public_ip",
    "QueuePrivateIp": "queue_private_ip",
    "QueueAddress": "queue_address",
    "RedisSecretArn": "redis_secret_arn",
    "MultipartRoleArn": "multipart_role_arn",
    "VpcId": "vpc_id",
    "WorkerSecurityGroupId": "worker_security_group_id",
    "ProductVersion": "product_version",
}


def _service_tokens(local_aws: LocalAwsHandle) -> dict[str, str]:
    ssm = local_aws.client("ssm", REGION)
    return {name: ssm.get_parameter(Name=name)["Parameter"]["Value"] for name in SERVICE_TOKENS}


def _redis_password(local_aws: LocalAwsHandle, record: Record) -> str:
    secrets = local_aws.client("secretsmanager", REGION)
    return str(secrets.get_secret_value(SecretId=record.outputs["RedisSecretArn"])["SecretString"])


def _handed_off(standin: StandIn, record: Record, event_type: str) -> dict[str, str]:
    (event,) = eventually(
        lambda: events_of(standin, record.stack_id, event_type), what=f"{event_type} event"
    )
    validate(event)
    assert event.key_id == hashlib.sha256(SETUP_TOKEN.encode()).hexdigest()[:16]
    handoff: dict[str, str] = event.body["data"]["handoff"]
    return handoff


def test_products_are_offered_to_the_associated_end_user_only(
    local_aws: LocalAwsHandle, platform: Published, end_user: EndUser
) -> None:
    for product, role in (
        (IAM_PRODUCT, IAM.launch_role_output),
        (WORKERS_PRODUCT, WORKERS.launch_role_output),
    ):
        product_id = end_user.product_id(product)
        (path,) = end_user.servicecatalog.list_launch_paths(ProductId=product_id)[
            "LaunchPathSummaries"
        ]
        assert path["Id"] == platform.outputs["PortfolioId"]
        assert [c["Type"] for c in path["ConstraintSummaries"]] == ["LAUNCH"]
        described = end_user.servicecatalog.describe_provisioning_parameters(
            ProductId=product_id,
            ProvisioningArtifactId=end_user.version_id(product_id, None),
            PathId=path["Id"],
        )
        instructions = {i["Type"]: i["Value"] for i in described["UsageInstructions"]}
        assert instructions["launchAsRole"] == platform.outputs[role]
        assert {"Key": "valohai-hybrid:launched-from", "Values": ["service-catalog"]} in (
            described["TagOptions"]
        )

    stranger = EndUser(local_aws)
    assert stranger.servicecatalog.search_products()["ProductViewSummaries"] == []


def _made_as_service_catalog_makes_it(
    local_aws: LocalAwsHandle, platform: Published, record: Record
) -> None:
    """The stack came from Service Catalog's tagged copy of the template (in a bucket of
    another account), its nested stacks from the release; the launch role read them all."""
    account = platform.account_id
    role = platform.outputs[WORKERS.launch_role_output].rsplit("/", 1)[1]
    stack = record.stack_id.split("/")[1]
    # Template reads only: with enforcement on, each resource operation is recorded too.
    reads = [
        a
        for a in local_aws.control("accesses")
        if stack in a["Purpose"] and a["Purpose"].startswith("template of")
    ]
    assert {a["PrincipalArn"] for a in reads} == {
        f"arn:aws:sts::{account}:assumed-role/{role}/AWSCloudFormation"
    }
    (copy,) = [a for a in reads if a["Purpose"] == f"template of stack {stack}"]
    assert copy["Context"] == {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}
    assert copy["ResourceAccount"] != account
    nested = [a for a in reads if a is not copy]
    assert len(nested) >= 3  # network (and its subnets), bucket, queue
    for read in nested:
        assert read["Resource"].startswith(f"arn:aws:s3:::{platform.bucket}/releases/"), read


def test_launch_update_to_a_new_release_terminate_and_launch_again(
    local_aws: LocalAwsHandle,
    platform: Published,
    end_user: EndUser,
    standin: StandIn,
    key_pair: str,
    next_release: tuple[str, Path],
    launches: list[Record],
    tmp_path: Path,
) -> None:
    # The IAM product, then the Workers product, each run as its launch role.
    iam = end_user.provision(
        IAM_PRODUCT, RELEASE, {"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": EXTERNAL_ID}
    )
    launches.append(iam)
    assert iam.status == "SUCCEEDED", iam.errors
    assert iam.detail["LaunchRoleArn"] == platform.outputs[IAM.launch_role_output]
    parameters = workers_parameters(iam, standin, key_pair)
    workers = end_user.provision(WORKERS_PRODUCT, RELEASE, parameters)
    launches.append(workers)
    assert workers.status == "SUCCEEDED", workers.errors
    assert workers.detail["LaunchRoleArn"] == platform.outputs[WORKERS.launch_role_output]
    assert workers.outputs["ProductVersion"] == RELEASE
    assert workers.outputs["QueueAddress"] == parameters["QueueAddress"]
    assert workers.outputs["DataBucketName"] == f"valohai-data-{parameters['Suffix']}"
    assert workers.outputs["ValohaiNotificationDelivery"] == "delivered"
    _made_as_service_catalog_makes_it(local_aws, platform, workers)

    # Valohai got the signed hand-off, and it says what the outputs say.
    handoff = _handed_off(standin, workers, "setup.created")
    assert {k: handoff[v] for k, v in HANDED_OFF.items()} == {
        k: workers.outputs[k] for k in HANDED_OFF
    }
    (registered,) = events_of(standin, workers.stack_id, "queue_address.registered")
    validate(registered)
    password = _redis_password(local_aws, workers)
    tokens = _service_tokens(local_aws)

    # A new release, with new function code: the release before it stays (deprecated for new
    # launches) with its id, and the service tokens do not change.
    version, templates = next_release
    workers_product = end_user.product_id(WORKERS_PRODUCT)
    first_id = end_user.version_id(workers_product, RELEASE)
    lambda_ = local_aws.client("lambda", REGION)
    code_before = lambda_.get_function(FunctionName=tokens[SERVICE_TOKENS[2]])
    published = publish_release(
        local_aws,
        project_dir=project_with_changed_functions(tmp_path / "project", f"release {version}"),
        version=version,
        cfn_dir=templates,
    )
    assert published.releases == [version, RELEASE]
    offered = end_user.versions(workers_product)
    assert {name: v["Guidance"] for name, v in offered.items()} == {
        version: "DEFAULT",
        RELEASE: "DEPRECATED",
    }
    assert offered[RELEASE]["Id"] == first_id
    code_after = lambda_.get_function(FunctionName=tokens[SERVICE_TOKENS[2]])
    assert code_after["Configuration"]["CodeSha256"] != code_before["Configuration"]["CodeSha256"]
    assert _service_tokens(local_aws) == tokens

    # The launched product moves to it; the Redis password and the data bucket stay.
    updated = end_user.update(workers, WORKERS_PRODUCT, version, keep=list(parameters))
    assert updated.status == "SUCCEEDED", updated.errors
    assert updated.outputs["ProductVersion"] == version
    assert _redis_password(local_aws, updated) == password
    assert updated.outputs["DataBucketName"] == workers.outputs["DataBucketName"]
    local_aws.client("s3", REGION).head_bucket(Bucket=updated.outputs["DataBucketName"])
    assert _handed_off(standin, workers, "setup.updated")["product_version"] == version
    # Each event names the release that sent it: the functions of the new release say so.
    producers = {e.type: e.body["producer"] for e in events_of(standin, workers.stack_id)}
    assert producers["setup.created"] == f"valohai-hybrid-aws/{RELEASE}"
    assert producers["setup.updated"] == f"valohai-hybrid-aws/{version}"

    # Not the IAM product first: the Workers product's bucket access policy is on ValohaiMaster,
    # and IAM refuses to delete a role that has a policy (DeleteConflict), as in AWS.
    refused = end_user.terminate(iam)
    assert refused.status == "FAILED"
    assert "Cannot delete entity, must delete policies first." in refused.errors

    # Terminated: Valohai hears of it, and the spent setup token is removed.
    assert end_user.terminate(workers).status == "SUCCEEDED"
    assert end_user.terminate(iam).status == "SUCCEEDED"
    _handed_off(standin, workers, "setup.deleted")
    (deregistered,) = events_of(standin, workers.stack_id, "queue_address.deregistered")
    validate(deregistered)
    (deleted,) = eventually(
        lambda: events_of(standin, workers.stack_id, "stack.status_changed"),
        what="the DELETE_COMPLETE forwarded",
    )
    validate(deleted)
    assert deleted.body["data"]["status"] == "DELETE_COMPLETE"
    secrets = local_aws.client("secretsmanager", REGION)
    token_secrets = {"Key": "tag-value", "Values": [workers.stack_id]}
    eventually(
        lambda: not secrets.list_secrets(Filters=[token_secrets])["SecretList"],
        timeout=REDELIVERY_WAIT,
        what="the setup token's removal",
    )

    # Launching again in the same account: the same names, the retained data bucket adopted,
    # the Redis password secret left pending deletion taken back.
    again_iam = end_user.provision(
        IAM_PRODUCT, None, {"AssumeRoleARN": VALOHAI_PRINCIPAL, "ExternalId": EXTERNAL_ID}
    )
    launches.append(again_iam)
    assert again_iam.status == "SUCCEEDED", again_iam.errors
    again = end_user.provision(
        WORKERS_PRODUCT, None, {**parameters, "ReuseRetainedDataBucket": "true"}
    )
    launches.append(again)
    assert again.status == "SUCCEEDED", again.errors
    assert again.outputs["ProductVersion"] == version
    assert again.outputs["DataBucketName"] == workers.outputs["DataBucketName"]
    assert again.outputs["RedisSecretArn"] == workers.outputs["RedisSecretArn"]
    assert (
        _handed_off(standin, again, "setup.created")["queue_address"]
        == (parameters["QueueAddress"])
    )
