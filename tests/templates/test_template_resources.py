"""The resources of the reference, with the names and ports Valohai relies on, and the hand-off
to Valohai: what the templates declare, checked without deploying them."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pytest
from valohai_cr import notification as notification_cr
from valohai_cr import queue_address, redis_secret
from valohai_cr.properties import FRAMEWORK_PROPERTIES

from tests.support.cfn import load, tags, walk

HANDOFF_KEYS = set(notification_cr.HANDOFF_FIELDS)


def resource(template: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = load(template)["Resources"][name]
    return found


def test_iam_names_are_the_ones_valohai_relies_on() -> None:
    names = {
        name: r["Properties"].get("RoleName") or r["Properties"].get("InstanceProfileName")
        for name, r in load("iam.yml")["Resources"].items()
    }
    assert names == {
        "ValohaiMasterRole": "ValohaiMaster",
        "ValohaiWorkerRole": "ValohaiWorkerRole",
        "ValohaiWorkerInstanceProfile": "ValohaiWorkerInstanceProfile",
        "ValohaiQueueRole": "ValohaiQueueRole",
        "ValohaiQueueInstanceProfile": "ValohaiQueueInstanceProfile",
    }
    assert load("iam.yml")["Outputs"]["ValohaiMasterRoleARN"]["Value"] == {
        "Fn::GetAtt": ["ValohaiMasterRole", "Arn"]
    }


def test_vpc_gateway_and_subnets_carry_valohais_names() -> None:
    network = load("network.yml")
    vpc = network["Resources"]["Vpc"]["Properties"]
    assert vpc["CidrBlock"] == {"Ref": "VpcCidr"}
    assert network["Parameters"]["VpcCidr"]["Default"] == "10.0.0.0/16"
    assert (vpc["EnableDnsSupport"], vpc["EnableDnsHostnames"]) == (True, True)
    assert tags(network["Resources"]["Vpc"])["Name"] == "valohai-vpc"
    assert tags(network["Resources"]["InternetGateway"])["Name"] == "valohai-igw"
    subnet = load("subnet.yml")["Resources"]
    assert tags(subnet["Subnet"])["Name"] == {"Fn::Sub": "valohai-subnet-${SubnetNumber}"}
    assert subnet["Subnet"]["Properties"]["CidrBlock"] == {"Ref": "CidrBlock"}
    assert load("subnet.yml")["Parameters"]["CidrBlock"]["AllowedPattern"].endswith("/20$")
    route = subnet["DefaultRoute"]["Properties"]
    assert route == {
        "RouteTableId": {"Ref": "RouteTable"},
        "DestinationCidrBlock": "0.0.0.0/0",
        "GatewayId": {"Ref": "InternetGatewayId"},
    }
    assert subnet["RouteTableAssociation"]["Properties"]["SubnetId"] == {"Ref": "Subnet"}


def test_vpc_flow_logs_go_to_a_log_group_with_retention() -> None:
    network = load("network.yml")["Resources"]
    flow_log = network["FlowLog"]["Properties"]
    assert flow_log["ResourceId"] == {"Ref": "Vpc"}
    assert flow_log["LogGroupName"] == {"Ref": "FlowLogGroup"}
    assert flow_log["DeliverLogsPermissionArn"] == {"Fn::GetAtt": ["FlowLogDeliveryRole", "Arn"]}
    assert network["FlowLogGroup"]["Properties"]["RetentionInDays"] == {
        "Ref": "FlowLogRetentionInDays"
    }


def test_queue_machine_settings() -> None:
    instance = resource("worker-queue.yml", "QueueInstance")["Properties"]
    assert load("main.yml")["Parameters"]["QueueInstanceType"]["Default"] == "t3.medium"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/sda1",
            "Ebs": {
                "VolumeType": "gp3",
                "VolumeSize": 16,
                "Encrypted": True,
                "DeleteOnTermination": True,
            },
        }
    ]
    assert instance["IamInstanceProfile"] == {"Ref": "QueueInstanceProfileName"}
    assert instance["KeyName"] == {"Ref": "KeyPairName"}
    assert tags(resource("worker-queue.yml", "QueueInstance"))["Name"] == "valohai-queue"
    main_queue = resource("main.yml", "WorkerQueue")["Properties"]["Parameters"]
    assert main_queue["QueueInstanceProfileName"] == "ValohaiQueueInstanceProfile"
    assert main_queue["KeyPairName"] == {"Ref": "KeyPair"}
    assert main_queue["QueueImageId"] == {"Ref": "QueueImageId"}


def test_the_public_ip_is_the_elastic_ip_attached_to_the_queue() -> None:
    template = load("worker-queue.yml")
    association = template["Resources"]["QueueElasticIpAssociation"]["Properties"]
    assert association == {
        "AllocationId": {"Fn::GetAtt": ["QueueElasticIp", "AllocationId"]},
        "InstanceId": {"Ref": "QueueInstance"},
    }
    assert template["Resources"]["QueueElasticIp"]["Properties"]["Domain"] == "vpc"
    assert template["Outputs"]["QueuePublicIp"]["Value"] == {"Ref": "QueueElasticIp"}
    assert template["Outputs"]["QueuePrivateIp"]["Value"] == {
        "Fn::GetAtt": ["QueueInstance", "PrivateIp"]
    }


def test_data_bucket_is_private_encrypted_tls_only_and_kept() -> None:
    bucket = resource("s3bucket.yml", "DataBucket")
    # Kept on deletion and replacement; only a failed launch that created it removes it.
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == (
        "RetainExceptOnCreate",
        "Retain",
    )
    properties = bucket["Properties"]
    assert properties["BucketName"] == {"Fn::Sub": "valohai-data-${Suffix}"}
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = resource("s3bucket.yml", "DataBucketPolicy")
    assert policy["DeletionPolicy"] == "Retain"
    deny_http = policy["Properties"]["PolicyDocument"]["Statement"][0]
    assert (deny_http["Effect"], deny_http["Principal"], deny_http["Action"]) == (
        "Deny",
        "*",
        "s3:*",
    )
    assert deny_http["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_cors_lets_valohai_download_from_anywhere_and_upload_from_its_web_app() -> None:
    rules = resource("s3bucket.yml", "DataBucket")["Properties"]["CorsConfiguration"]["CorsRules"]
    assert [
        (r["AllowedMethods"], r["AllowedOrigins"], r["AllowedHeaders"], r["MaxAge"]) for r in rules
    ] == [
        (["GET"], ["*"], ["Authorization"], 3000),
        (["POST"], [{"Ref": "ValohaiWebOrigin"}], ["Authorization"], 3000),
    ]
    s3 = resource("main.yml", "S3Bucket")["Properties"]["Parameters"]
    assert s3["ValohaiWebOrigin"] == {"Ref": "ValohaiApiUrl"}
    assert load("main.yml")["Parameters"]["ValohaiApiUrl"]["Default"] == "https://app.valohai.com"


def test_a_relaunch_can_adopt_the_retained_bucket() -> None:
    template = load("s3bucket.yml")
    assert template["Conditions"]["CreateBucket"] == {
        "Fn::Equals": [{"Ref": "ReuseRetainedDataBucket"}, "false"]
    }
    assert template["Resources"]["DataBucket"]["Condition"] == "CreateBucket"
    assert template["Resources"]["DataBucketPolicy"]["Properties"]["Bucket"] == {
        "Fn::If": ["CreateBucket", {"Ref": "DataBucket"}, {"Fn::Sub": "valohai-data-${Suffix}"}]
    }
    assert "Condition" not in template["Resources"]["MultipartRole"]


def test_custom_resources_answer_within_their_service_timeout() -> None:
    template = load("main.yml")
    assert resource("worker-queue.yml", "RedisSecret")["Properties"]["ServiceTimeout"] == 120
    assert resource("main.yml", "ValohaiNotification")["Properties"]["ServiceTimeout"] == 120
    queue_address = resource("main.yml", "QueueAddressRegistration")["Properties"]
    assert queue_address["ServiceTimeout"] == {
        "Fn::FindInMap": ["DnsWait", {"Ref": "QueueDnsWaitSeconds"}, "ServiceTimeout"]
    }
    allowed = template["Parameters"]["QueueDnsWaitSeconds"]["AllowedValues"]
    assert sorted(template["Mappings"]["DnsWait"]) == sorted(allowed)
    for wait, timeout in template["Mappings"]["DnsWait"].items():
        assert timeout["ServiceTimeout"] == int(wait) + 60 < 3600


def test_custom_resource_properties_follow_the_agreed_interfaces() -> None:
    secret = resource("worker-queue.yml", "RedisSecret")
    assert secret["Type"] == "Custom::ValohaiRedisSecret"
    assert set(secret["Properties"]) == {*FRAMEWORK_PROPERTIES, *redis_secret.PROPERTIES}
    # In the root stack: its events must name the setup's stack, as the setup.* events do.
    address = resource("main.yml", "QueueAddressRegistration")
    assert address["Type"] == "Custom::ValohaiQueueAddress"
    assert set(address["Properties"]) == {*FRAMEWORK_PROPERTIES, *queue_address.PROPERTIES}
    # The nested stack's output: complete only once the Elastic IP is associated.
    assert address["Properties"]["PublicIp"] == {
        "Fn::GetAtt": ["WorkerQueue", "Outputs.QueuePublicIp"]
    }
    notification = resource("main.yml", "ValohaiNotification")
    assert notification["Type"] == "Custom::ValohaiNotification"
    assert set(notification["Properties"]) == {*FRAMEWORK_PROPERTIES, *notification_cr.PROPERTIES}
    assert set(notification["Properties"]["Handoff"]) == HANDOFF_KEYS


def test_main_outputs_every_value_valohai_needs() -> None:
    outputs = load("main.yml")["Outputs"]
    assert {
        "Region",
        "ValohaiMasterRoleARN",
        "WorkerRoleArn",
        "WorkerInstanceProfileArn",
        "QueueRoleArn",
        "DataBucketName",
        "MultipartRoleArn",
        "QueuePublicIp",
        "QueuePrivateIp",
        "QueueAddress",
        "RedisSecretArn",
        "RedisSecretName",
        "WorkerSecurityGroupId",
        "WorkerSecurityGroupName",
        "VpcId",
        "SubnetIds",
        "KeyPairName",
    } <= set(outputs)
    assert all(output.get("Description") for output in outputs.values())


def test_setup_token_is_stored_in_its_own_untagged_retained_secret_and_nowhere_else() -> None:
    template = load("main.yml")
    secret = template["Resources"]["SetupTokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert (secret["DeletionPolicy"], secret["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert secret["Properties"]["Name"] == {
        "Fn::Sub": "valohai-hybrid/setup-token/${AWS::StackName}"
    }
    assert tags(secret) == {
        "valohai-hybrid:purpose": "setup-token",
        "valohai-hybrid:stack-id": {"Ref": "AWS::StackId"},
    }
    uses = [path for path, value in walk(template) if value == {"Ref": "SetupToken"}]
    assert uses == [("Resources", "SetupTokenSecret", "Properties", "SecretString")]
    for path, value in walk(template):
        if isinstance(value, str) and "${SetupToken}" in value:
            pytest.fail(f"the setup token is substituted into {path}")


@pytest.mark.parametrize(
    ("stack", "template_url"),
    [("Network", "network.yml"), ("S3Bucket", "s3bucket.yml"), ("WorkerQueue", "worker-queue.yml")],
)
def test_nested_stacks_are_local_files_tagged_valohai(stack: str, template_url: str) -> None:
    nested = resource("main.yml", stack)
    assert nested["Properties"]["TemplateURL"] == template_url
    assert tags(nested) == {"valohai": "1"}


def test_network_is_created_only_without_an_existing_vpc() -> None:
    template = load("main.yml")
    assert template["Conditions"]["CreateNetwork"] == {"Fn::Equals": [{"Ref": "VpcId"}, ""]}
    assert template["Resources"]["Network"]["Condition"] == "CreateNetwork"
    queue_subnet = resource("main.yml", "WorkerQueue")["Properties"]["Parameters"]["QueueSubnetId"]
    assert queue_subnet == {
        "Fn::If": [
            "CreateNetwork",
            {"Fn::GetAtt": ["Network", "Outputs.FirstSubnetId"]},
            {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "SubnetIds"}]}]},
        ]
    }


def test_product_version_matches_the_package() -> None:
    assert load("main.yml")["Mappings"]["Product"]["Release"]["Version"] == version(
        "valohai-hybrid-aws"
    )
