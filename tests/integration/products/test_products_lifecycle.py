"""A Workers setup through its life: updates that must keep the queue's address, password and
data, then deletion (what stays is the customer's data) and a launch again in the same region."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws.harness import unique

from tests.support.common import events_of, eventually
from tests.support.launch_roles import (
    Operations,
    actions_of,
    denied,
    inline_policy,
    operations,
    stack_accesses,
    statement_needs,
    table,
    without,
)
from tests.support.products import (
    MAINTENANCE_SSH,
    REGION,
    Aws,
    Products,
    Setup,
    resource_tags,
    secret_exists,
    stack_resources,
)
from valohai_hybrid.launch_permissions import SERVICE_CATALOG_LAUNCH
from valohai_hybrid.local.standin import StandIn
from valohai_hybrid.products import IAM, WORKERS
from valohai_hybrid.publish import Published

UBUNTU_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
)


@dataclass
class Running:
    """The setup the update tests share; each test updates it and leaves the new state here."""

    setup: Setup


def queue_state(aws: Aws, setup: Setup) -> dict[str, Any]:
    """What Valohai and the workers depend on, read from the services."""
    ec2, secrets = aws("ec2"), aws("secretsmanager")
    [address] = ec2.describe_addresses(PublicIps=[setup.outputs["QueuePublicIp"]])["Addresses"]
    instance = ec2.describe_instances(InstanceIds=[address["InstanceId"]])["Reservations"][0][
        "Instances"
    ][0]
    secret = secrets.describe_secret(SecretId=setup.outputs["RedisSecretArn"])
    return {
        "instance_id": instance["InstanceId"],
        "instance_type": instance["InstanceType"],
        "image_id": instance["ImageId"],
        "private_ip": instance["PrivateIpAddress"],
        "allocation_id": address["AllocationId"],
        "public_ip": address["PublicIp"],
        "secret_arn": secret["ARN"],
        "password": secrets.get_secret_value(SecretId=secret["ARN"])["SecretString"],
        "bucket": setup.outputs["DataBucketName"],
        "vpc_id": setup.outputs["VpcId"],
        "subnet_ids": setup.outputs["SubnetIds"],
        "groups": (setup.outputs["WorkerSecurityGroupId"], setup.outputs["QueueSecurityGroupId"]),
    }


def user_data(aws: Aws, instance_id: str) -> str:
    encoded = aws("ec2").describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(encoded["UserData"]["Value"]).decode()


@pytest.fixture(scope="module")
def running(aws: Aws, products: Products, recorded: dict[str, list[dict[str, Any]]]) -> Running:
    setup = products.deploy()
    recorded[setup.name] = stack_accesses(aws.local, setup.name)
    return Running(setup)


def test_a_bigger_queue_machine_is_the_same_machine(
    aws: Aws, products: Products, standin: StandIn, running: Running
) -> None:
    before = queue_state(aws, running.setup)
    events = running.setup.events(standin)

    running.setup = products.update(running.setup, QueueInstanceType="t3.large")

    after = queue_state(aws, running.setup)
    assert after == {**before, "instance_type": "t3.large"}
    # Nothing Valohai holds changed, so it is not bothered with an update.
    assert running.setup.events(standin) == events


def test_a_new_recovery_window_keeps_the_secret_and_its_password(
    aws: Aws, products: Products, running: Running
) -> None:
    before = queue_state(aws, running.setup)
    window = (
        "30" if running.setup.parameters.get("RedisSecretRecoveryWindowInDays") != "30" else "7"
    )

    running.setup = products.update(running.setup, RedisSecretRecoveryWindowInDays=window)

    assert queue_state(aws, running.setup) == before


def test_a_new_machine_image_replaces_the_machine_behind_the_same_elastic_ip(
    aws: Aws, products: Products, standin: StandIn, running: Running
) -> None:
    """Canonical publishes a newer image, or the customer pins one in an SSM parameter of their
    own (under /valohai-hybrid/queue-image/, the only ones the launch role may read): the
    machine is replaced, and everything Valohai uses to reach it stays."""
    ec2, ssm = aws("ec2"), aws("ssm")
    before = queue_state(aws, running.setup)
    ubuntu = ssm.get_parameter(Name=UBUNTU_PARAMETER)["Parameter"]["Value"]
    newer = ec2.copy_image(SourceImageId=ubuntu, SourceRegion=REGION, Name=unique("ubuntu-noble"))
    pinned = f"/valohai-hybrid/queue-image/{unique('noble')}"
    ssm.put_parameter(Name=pinned, Value=newer["ImageId"], Type="String")

    running.setup = products.update(running.setup, QueueImageId=pinned)

    after = queue_state(aws, running.setup)
    old = ec2.describe_instances(InstanceIds=[before["instance_id"]])["Reservations"][0]
    assert after["instance_id"] != before["instance_id"]
    assert after["image_id"] == newer["ImageId"]
    assert old["Instances"][0]["State"]["Name"] == "terminated"
    keep = ("allocation_id", "public_ip", "secret_arn", "password", "bucket", "vpc_id", "groups")
    assert {k: after[k] for k in keep} == {k: before[k] for k in keep}
    assert running.setup.outputs["QueueInstanceId"] == after["instance_id"]
    assert running.setup.outputs["QueuePrivateIp"] == after["private_ip"]
    # Valohai hears of the new machine's private address (the public one is the same).
    updates = running.setup.events(standin, "setup.updated")
    assert updates, "no setup.updated after the queue machine was replaced"
    assert updates[-1].body["data"]["handoff"]["queue_private_ip"] == after["private_ip"]
    assert updates[-1].body["data"]["handoff"]["queue_public_ip"] == before["public_ip"]


def test_a_new_rotation_token_changes_only_the_password(
    aws: Aws, products: Products, running: Running
) -> None:
    before = queue_state(aws, running.setup)
    token = unique("rotate")

    running.setup = products.update(running.setup, RedisPasswordRotationToken=token)

    after = queue_state(aws, running.setup)
    assert after == {**before, "password": after["password"]}
    assert after["password"] != before["password"]
    assert re.fullmatch("[A-Za-z0-9]{32}", after["password"])
    # The boot configuration names the token, so the machine restarts and reads the new one.
    assert f"REDIS_PASSWORD_ROTATION='{token}'" in user_data(aws, after["instance_id"])


@dataclass
class Deleted:
    """A setup as it was just before its deletion, and what it had made."""

    setup: Setup
    resources: list[dict[str, Any]]
    redis_secret_arn: str
    data_key: str


def still_there(aws: Aws, setup: Setup, resource: dict[str, Any]) -> bool | None:
    """Whether a resource a stack made still exists; None for attachments, routes and rules,
    which go with what they attach to, and for the notification, which is only a message."""
    ec2, physical = aws("ec2"), resource["PhysicalResourceId"]

    def ec2_found(describe: str, key: str, filter_name: str) -> bool:
        found = getattr(ec2, describe)(Filters=[{"Name": filter_name, "Values": [physical]}])
        return bool(found[key])

    def iam_role() -> bool:
        iam = aws("iam")
        try:
            iam.get_role(RoleName=physical)
        except iam.exceptions.NoSuchEntityException:
            return False
        return True

    def bucket() -> bool:
        return physical in {b["Name"] for b in aws("s3").list_buckets()["Buckets"]}

    def bucket_policy() -> bool:
        try:
            aws("s3").get_bucket_policy(Bucket=setup.outputs["DataBucketName"])
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("NoSuchBucket", "NoSuchBucketPolicy"):
                raise
            return False
        return True

    def redis_secret() -> bool:
        return secret_exists(aws, physical) and "DeletedDate" not in aws(
            "secretsmanager"
        ).describe_secret(SecretId=physical)

    checks: dict[str, Callable[[], bool]] = {
        "AWS::EC2::VPC": lambda: ec2_found("describe_vpcs", "Vpcs", "vpc-id"),
        "AWS::EC2::Subnet": lambda: ec2_found("describe_subnets", "Subnets", "subnet-id"),
        "AWS::EC2::RouteTable": lambda: ec2_found(
            "describe_route_tables", "RouteTables", "route-table-id"
        ),
        "AWS::EC2::InternetGateway": lambda: ec2_found(
            "describe_internet_gateways", "InternetGateways", "internet-gateway-id"
        ),
        "AWS::EC2::SecurityGroup": lambda: ec2_found(
            "describe_security_groups", "SecurityGroups", "group-id"
        ),
        "AWS::EC2::Instance": lambda: any(
            i["State"]["Name"] != "terminated"
            for r in ec2.describe_instances(InstanceIds=[physical])["Reservations"]
            for i in r["Instances"]
        ),
        "AWS::EC2::EIP": lambda: ec2_found("describe_addresses", "Addresses", "public-ip"),
        "AWS::EC2::FlowLog": lambda: ec2_found("describe_flow_logs", "FlowLogs", "flow-log-id"),
        "AWS::Logs::LogGroup": lambda: (
            physical
            in {
                g["logGroupName"]
                for g in aws("logs").describe_log_groups(logGroupNamePrefix=physical)["logGroups"]
            }
        ),
        "AWS::IAM::Role": iam_role,
        "AWS::IAM::Policy": lambda: (
            f"valohai-data-{setup.parameters['Suffix']}"
            in aws("iam").list_role_policies(RoleName="ValohaiMaster")["PolicyNames"]
        ),
        "AWS::S3::Bucket": bucket,
        "AWS::S3::BucketPolicy": bucket_policy,
        "AWS::CloudFormation::Stack": lambda: (
            aws("cloudformation").describe_stacks(StackName=physical)["Stacks"][0]["StackStatus"]
            != "DELETE_COMPLETE"
        ),
        "AWS::SecretsManager::Secret": lambda: secret_exists(aws, physical),
        "Custom::ValohaiRedisSecret": redis_secret,
        "Custom::ValohaiQueueAddress": lambda: bool(
            aws("ssm").get_parameters(Names=[f"/valohai-hybrid/queue-address/{physical}"])[
                "Parameters"
            ]
        ),
    }
    check = checks.get(resource["ResourceType"])
    return None if check is None else check()


#: What goes with the resource it belongs to (checked through that one) or exists only as a
#: message to Valohai.
GONE_WITH_THEIR_OWNER = {
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::EIPAssociation",
    "Custom::ValohaiNotification",
}


@pytest.fixture(scope="module")
def deleted(aws: Aws, products: Products, standin: StandIn) -> Deleted:
    """A setup with data in its bucket, deleted; returned once the forwarder has reported the
    deletion to Valohai and removed the setup token."""
    # Maintenance SSH open, so its standalone ingress rule is among what goes.
    setup = products.deploy(unique("valohai-setup"), MaintenanceSshCidr=MAINTENANCE_SSH)
    resources = stack_resources(aws("cloudformation"), setup.stack_id)
    key = "executions/0123/outputs/model.pkl"
    aws("s3").put_object(Bucket=setup.outputs["DataBucketName"], Key=key, Body=b"weights")

    products.delete(setup)

    eventually(
        lambda: not secret_exists(aws, f"valohai-hybrid/setup-token/{setup.name}"),
        what="the forwarder deleting the setup token",
    )
    return Deleted(setup, resources, setup.outputs["RedisSecretArn"], key)


def test_deleting_a_setup_keeps_only_the_customers_data(aws: Aws, deleted: Deleted) -> None:
    setup = deleted.setup
    found = {r["LogicalResourceId"]: still_there(aws, setup, r) for r in deleted.resources}
    unchecked = {
        r["ResourceType"] for r in deleted.resources if found[r["LogicalResourceId"]] is None
    }
    bucket = setup.outputs["DataBucketName"]
    s3 = aws("s3")

    assert sorted(k for k, there in found.items() if there) == ["DataBucket", "DataBucketPolicy"]
    assert unchecked == GONE_WITH_THEIR_OWNER
    assert s3.get_object(Bucket=bucket, Key=deleted.data_key)["Body"].read() == b"weights"
    # The retained bucket stays private and TLS-only.
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {"DenyPlainHttp", "DenyTlsBelow12"}


def test_the_redis_password_waits_out_its_recovery_window(aws: Aws, deleted: Deleted) -> None:
    secrets = aws("secretsmanager")
    described = secrets.describe_secret(SecretId=deleted.redis_secret_arn)

    assert "DeletedDate" in described
    with pytest.raises(secrets.exceptions.InvalidRequestException, match="deleted"):
        secrets.get_secret_value(SecretId=deleted.redis_secret_arn)


def test_valohai_is_told_of_the_deletion(deleted: Deleted, standin: StandIn) -> None:
    setup = deleted.setup
    [created] = setup.events(standin, "setup.created")
    [gone] = setup.events(standin, "setup.deleted")
    [deregistered] = setup.events(standin, "queue_address.deregistered")
    statuses = [e.body["data"] for e in setup.events(standin, "stack.status_changed")]

    assert gone.body["data"] == created.body["data"]
    assert deregistered.body["data"] == {
        "queue_address": setup.outputs["QueueAddress"],
        "public_ip": setup.outputs["QueuePublicIp"],
    }
    assert [(s["status"], s["final"]) for s in statuses] == [("DELETE_COMPLETE", True)]
    assert setup.outputs["QueueAddress"] not in standin.receiver.bindings()


def test_a_launch_that_does_not_adopt_the_kept_bucket_rolls_back(
    aws: Aws, products: Products, standin: StandIn, deleted: Deleted
) -> None:
    """Same Suffix, ReuseRetainedDataBucket left false: the bucket name is taken (by the
    customer's own data), so the launch fails there, rolls back, and Valohai is told why."""
    parameters = products.parameters(Suffix=deleted.setup.parameters["Suffix"])
    outcome = products.wait(products.launch(parameters))
    assert outcome.stack_id, outcome
    described = aws.wait(outcome.stack_id)
    cloudformation = aws("cloudformation")
    data_stack = cloudformation.describe_stack_resource(
        StackName=outcome.stack_id, LogicalResourceId="S3Bucket"
    )["StackResourceDetail"]["PhysicalResourceId"]
    [failed] = [
        e
        for e in cloudformation.describe_stack_events(StackName=data_stack)["StackEvents"]
        if e["ResourceStatus"] == "CREATE_FAILED"
    ]
    [status] = eventually(
        lambda: events_of(standin, outcome.stack_id, "stack.status_changed"),
        what="the forwarder reporting the rollback",
    )
    bucket = deleted.setup.outputs["DataBucketName"]

    assert outcome.status == "FAILED"
    assert described["StackStatus"] == "ROLLBACK_COMPLETE"
    assert failed["LogicalResourceId"] == "DataBucket"
    assert "bucket name is not available" in failed["ResourceStatusReason"]
    assert status.body["data"]["status"] == "ROLLBACK_COMPLETE"
    assert status.body["data"]["final"] is True
    assert any(
        "bucket name is not available" in r["status_reason"]
        for r in status.body["data"]["failed_resources"]
    )
    # The data is untouched.
    assert aws("s3").get_object(Bucket=bucket, Key=deleted.data_key)["Body"].read() == b"weights"


def test_launching_again_adopts_the_kept_bucket_and_the_redis_secret(
    aws: Aws, products: Products, standin: StandIn, deleted: Deleted
) -> None:
    """The same setup launched again in the same region, under the same name and with the same
    names, as the ReuseRetainedDataBucket description tells."""
    old = deleted.setup
    parameters = {**old.parameters, "ReuseRetainedDataBucket": "true"}

    setup = products.created(products.launch(parameters, old.launch_name), parameters)

    secrets, s3 = aws("secretsmanager"), aws("s3")
    secret = secrets.describe_secret(SecretId=setup.outputs["RedisSecretArn"])
    worker_queue = aws("cloudformation").describe_stack_resource(
        StackName=setup.stack_id, LogicalResourceId="WorkerQueue"
    )["StackResourceDetail"]["PhysicalResourceId"]
    bucket = setup.outputs["DataBucketName"]

    assert setup.stack_id != old.stack_id
    # The Redis secret left pending deletion is restored and owned by the new setup.
    assert secret["ARN"] == deleted.redis_secret_arn
    assert "DeletedDate" not in secret
    assert resource_tags(secret["Tags"])["valohai-hybrid:stack-id"] == worker_queue
    password = secrets.get_secret_value(SecretId=secret["ARN"])["SecretString"]
    assert re.fullmatch("[A-Za-z0-9]{32}", password)
    # The kept bucket, with its data, serves the new setup.
    assert bucket == old.outputs["DataBucketName"]
    assert s3.get_object(Bucket=bucket, Key=deleted.data_key)["Body"].read() == b"weights"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {"DenyPlainHttp", "DenyTlsBelow12"}
    assert (
        f"valohai-data-{parameters['Suffix']}"
        in aws("iam").list_role_policies(RoleName="ValohaiMaster")["PolicyNames"]
    )
    # Valohai gets the new setup, bound to the same queue address.
    [created] = setup.events(standin, "setup.created")
    assert created.body["data"]["handoff"]["data_bucket_name"] == bucket
    assert standin.receiver.bindings()[setup.outputs["QueueAddress"]].stack_id == setup.stack_id


# ---- evidence: each statement of each launch role is needed, and for what -----------------------

#: Per launch role and statement, operations that must fail without that statement (the
#: table the test prints has them all); a statement Service Catalog itself needs is in
#: `SERVICE_CATALOG_ONLY` instead.
NEEDED_FOR: dict[str, dict[str, set[str]]] = {
    "launch-workers-product": {
        "LaunchedStacksAndTheirNestedStacks": {
            "launch: create of Network (AWS::CloudFormation::Stack)",
            "update: update of WorkerQueue (AWS::CloudFormation::Stack)",
            "terminate: delete of Network (AWS::CloudFormation::Stack)",
        },
        "ServiceCatalogTemplateCopies": {"launch: read the template", "update: read the template"},
        "ReleasedTemplates": {
            "launch: read the template of nested stack Network",
            "launch: read the template of nested stack WorkerQueue",
            "update: read the template of nested stack WorkerQueue",
        },
        "ParameterValues": {
            "launch: resolve the SSM parameter /valohai-hybrid/service-token/notification",
            "launch: resolve the SSM parameter /valohai-hybrid/service-token/redis-secret",
            "launch: resolve the SSM parameter /valohai-hybrid/service-token/queue-address",
        },
        "CustomResources": {
            "launch: create of RedisSecret (Custom::ValohaiRedisSecret)",
            "update: update of RedisSecret (Custom::ValohaiRedisSecret)",
            "terminate: delete of ValohaiNotification (Custom::ValohaiNotification)",
        },
        "DescribeNetworkAndMachines": {
            "launch: create of Vpc (AWS::EC2::VPC)",
            "update: update of QueueInstance (AWS::EC2::Instance)",
            "terminate: delete of QueueInstance (AWS::EC2::Instance)",
        },
        "ReadAttributesOfTheNetworkAndMachine": {
            "launch: create of Vpc (AWS::EC2::VPC)",
            "launch: create of QueueInstance (AWS::EC2::Instance)",
        },
        "DescribeTagsForFlowLogs": {"launch: create of FlowLog (AWS::EC2::FlowLog)"},
        "CreateAndConfigureNetworkAndQueueMachine": {
            "launch: create of Vpc (AWS::EC2::VPC)",
            "launch: create of QueueInstance (AWS::EC2::Instance)",
            "update: create of MaintenanceSshIngress (AWS::EC2::SecurityGroupIngress)",
            "terminate: delete of DefaultRoute (AWS::EC2::Route)",
        },
        "ChangeOrRemoveOnlyValohaiTaggedResources": {
            "update: update of QueueInstance (AWS::EC2::Instance)",
            "terminate: delete of Vpc (AWS::EC2::VPC)",
            "terminate: delete of QueueInstance (AWS::EC2::Instance)",
        },
        "FlowLogAndMultipartRoles": {
            "launch: create of MultipartRole (AWS::IAM::Role)",
            "launch: create of FlowLogDeliveryRole (AWS::IAM::Role)",
            "terminate: delete of MultipartRole (AWS::IAM::Role)",
        },
        "GiveValohaiMasterTheDataBucket": {
            "launch: create of ValohaiMasterBucketAccess (AWS::IAM::Policy)",
            "terminate: delete of ValohaiMasterBucketAccess (AWS::IAM::Policy)",
        },
        "PassTheQueueRoleToItsMachine": {"launch: create of QueueInstance (AWS::EC2::Instance)"},
        "PassTheFlowLogRoleToFlowLogs": {"launch: create of FlowLog (AWS::EC2::FlowLog)"},
        "FlowLogGroups": {
            "launch: create of FlowLogGroup (AWS::Logs::LogGroup)",
            "terminate: delete of FlowLogGroup (AWS::Logs::LogGroup)",
        },
        "DescribeLogGroups": {"launch: create of FlowLogGroup (AWS::Logs::LogGroup)"},
        "DataBucket": {
            "launch: create of DataBucket (AWS::S3::Bucket)",
            "launch: create of DataBucketPolicy (AWS::S3::BucketPolicy)",
        },
        "SetupTokenSecrets": {"launch: create of SetupTokenSecret (AWS::SecretsManager::Secret)"},
    },
    "launch-iam-product": {
        "ServiceCatalogTemplateCopies": {"launch: read the template"},
        "ValohaiRoles": {
            "launch: create of ValohaiMasterRole (AWS::IAM::Role)",
            "launch: create of ValohaiWorkerRole (AWS::IAM::Role)",
            "launch: create of ValohaiQueueRole (AWS::IAM::Role)",
        },
        "ValohaiInstanceProfiles": {
            "launch: create of ValohaiWorkerInstanceProfile (AWS::IAM::InstanceProfile)",
            "launch: create of ValohaiQueueInstanceProfile (AWS::IAM::InstanceProfile)",
        },
        "PutMachineRolesIntoTheirProfiles": {
            "launch: create of ValohaiWorkerInstanceProfile (AWS::IAM::InstanceProfile)",
            "launch: create of ValohaiQueueInstanceProfile (AWS::IAM::InstanceProfile)",
        },
    },
}
#: Statements only Service Catalog's own calls with the launch role need (CreateStack,
#: DescribeStacks, GetTemplateSummary... of the product's root stack, `SERVICE_CATALOG_LAUNCH`
#: in launch_permissions.py, from AWS's launch-constraint guide): the local Service Catalog
#: makes those calls as the account, so no recorded operation needs them.
SERVICE_CATALOG_ONLY = {
    "launch-workers-product": {"ReadTemplates"},
    "launch-iam-product": {"LaunchedStacks", "ReadTemplates"},
}
_ACTION = re.compile(r"is not authorized to perform: (\S+)")


def _recorded_workers_life(
    aws: Aws, products: Products, running: Running, recorded: dict[str, list[dict[str, Any]]]
) -> Operations:
    """The Workers setup's launch (recorded when it was made), an update that creates, updates
    and invokes (maintenance SSH opened, a new machine size, a new recovery window), and its
    termination."""
    local = aws.local
    workers = operations(recorded[running.setup.name], "launch")
    parameters = running.setup.parameters
    # Cleared so that only this update's are there after it (launches keep theirs in
    # `recorded` as they complete; no test reads another's accesses later).
    local.control_delete("accesses")
    running.setup = products.update(
        running.setup,
        MaintenanceSshCidr=MAINTENANCE_SSH,
        QueueInstanceType="t3.xlarge"
        if parameters.get("QueueInstanceType") != "t3.xlarge"
        else "t3.large",
        RedisSecretRecoveryWindowInDays="30"
        if parameters.get("RedisSecretRecoveryWindowInDays") != "30"
        else "7",
    )
    workers |= operations(stack_accesses(local, running.setup.name), "update")
    local.control_delete("accesses")
    products.delete(running.setup)
    workers |= operations(stack_accesses(local, running.setup.name), "terminate")
    return workers


def test_each_statement_of_each_launch_role_is_needed_for_what_it_says(
    aws: Aws,
    products: Products,
    running: Running,
    iam_setup: Setup,
    platform: Published,
    recorded: dict[str, list[dict[str, Any]]],
) -> None:
    """Each statement removed in turn, the recorded launch, update and termination judged
    again: every statement is needed by the operations it names (and fails them with an
    action of its own), or only by Service Catalog's own calls."""
    lives = {
        "launch-workers-product": (
            WORKERS,
            _recorded_workers_life(aws, products, running, recorded),
        ),
        # The package's IAM launch (terminated when the package ends).
        "launch-iam-product": (IAM, operations(recorded[iam_setup.name], "launch")),
    }
    iam = aws("iam")
    for policy, (product, recorded_ops) in lives.items():
        role = platform.outputs[product.launch_role_output].rsplit("/", 1)[1]
        statements = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"][
            "Statement"
        ]
        assert denied(aws.local, recorded_ops) == {}, "the role as published allows it all"

        needs = statement_needs(aws.local, role, policy, recorded_ops)

        evidence = f"{policy}:\n{table(needs)}"
        print(evidence)  # the table, for a run with -s
        expected = NEEDED_FOR[policy]
        assert set(needs) == set(expected) | SERVICE_CATALOG_ONLY[policy], evidence
        for sid, failing in needs.items():
            if sid in SERVICE_CATALOG_ONLY[policy]:
                assert failing == {}, evidence
                assert actions_of(statements, sid) <= SERVICE_CATALOG_LAUNCH, sid
                continue
            assert expected[sid] <= set(failing), f"{sid}\n{evidence}"
            refused = {_ACTION.search(message)[1] for message in failing.values()}  # type: ignore[index]
            assert refused <= actions_of(statements, sid), f"{sid}: {refused}"


def test_a_launch_without_a_statement_fails_where_the_replay_said(
    aws: Aws,
    products: Products,
    running: Running,
    platform: Published,
    recorded: dict[str, list[dict[str, Any]]],
) -> None:
    """The replay predicts a real launch: without SetupTokenSecrets, a launch fails at the
    operation and action the replay of the recorded launch names, and rolls back."""
    iam = aws("iam")
    role = platform.outputs[WORKERS.launch_role_output].rsplit("/", 1)[1]
    policy = "launch-workers-product"
    launch = operations(recorded[running.setup.name], "launch")
    with inline_policy(iam, role, policy) as document:
        iam.put_role_policy(
            RoleName=role,
            PolicyName=policy,
            PolicyDocument=json.dumps(without(document, "SetupTokenSecrets")),
        )
        predicted = denied(aws.local, launch)
        outcome = products.wait(products.launch(products.parameters()))
    assert outcome.stack_id, outcome
    events = aws("cloudformation").describe_stack_events(StackName=outcome.stack_id)["StackEvents"]
    refused = [
        e
        for e in events
        if e["ResourceStatus"] == "CREATE_FAILED"
        and "AccessDenied" in e.get("ResourceStatusReason", "")
    ]

    assert predicted.keys() == {"launch: create of SetupTokenSecret (AWS::SecretsManager::Secret)"}
    assert outcome.status == "FAILED"
    assert aws.wait(outcome.stack_id)["StackStatus"] == "ROLLBACK_COMPLETE"
    [first] = refused
    assert first["LogicalResourceId"] == "SetupTokenSecret"
    [message] = predicted.values()
    assert _ACTION.search(first["ResourceStatusReason"])[1] == _ACTION.search(message)[1]  # type: ignore[index]
