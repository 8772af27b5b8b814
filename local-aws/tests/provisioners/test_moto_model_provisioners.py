"""The registry of provisioners and the adapter over moto's own CloudFormation models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from localaws.cloudformation.provisioners.base import (
    NeedsReplacement,
    ResourceContext,
    registered_types,
)
from localaws.cloudformation.provisioners.custom import CustomResourceProvisioner
from localaws.cloudformation.provisioners.moto_model import MotoModelProvisioner
from localaws.cloudformation.provisioners.registry import provisioner_for

Ctx = Callable[..., ResourceContext]

# Every type the product's templates use that moto models badly or not at all.
OURS = {
    "AWS::EC2::VPC", "AWS::EC2::InternetGateway", "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::Subnet", "AWS::EC2::RouteTable", "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation", "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress", "AWS::EC2::EIP",
    "AWS::EC2::EIPAssociation", "AWS::EC2::Instance", "AWS::EC2::FlowLog", "AWS::EC2::KeyPair",
    "AWS::IAM::Role", "AWS::IAM::InstanceProfile", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy",
    "AWS::S3::Bucket", "AWS::S3::BucketPolicy", "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup", "AWS::Lambda::Function", "AWS::Lambda::Permission",
    "AWS::Lambda::EventInvokeConfig", "AWS::SQS::Queue", "AWS::SQS::QueuePolicy",
    "AWS::SSM::Parameter", "AWS::Events::Rule", "AWS::KMS::Key",
}  # fmt: skip


def test_custom_and_service_catalog_types_come_from_the_same_registry() -> None:
    for resource_type in ("Custom::Anything", "AWS::CloudFormation::CustomResource"):
        assert isinstance(provisioner_for(resource_type), CustomResourceProvisioner)
    for resource_type in ("AWS::ServiceCatalog::Portfolio", "AWS::ServiceCatalog::TagOption"):
        found = provisioner_for(resource_type)
        assert found is not None
        assert found.resource_type == resource_type


def test_our_types_are_registered_and_found_first() -> None:
    assert set(registered_types()) >= OURS
    for resource_type in OURS:
        found = provisioner_for(resource_type)
        assert found is not None
        assert not isinstance(found, MotoModelProvisioner), resource_type
        assert found.resource_type == resource_type


def test_other_moto_types_get_the_adapter_and_unknown_types_none() -> None:
    assert isinstance(provisioner_for("AWS::SNS::Topic"), MotoModelProvisioner)
    assert isinstance(provisioner_for("AWS::KMS::Alias"), MotoModelProvisioner)
    assert provisioner_for("AWS::Nothing::Here") is None


def test_adapter_creates_updates_and_deletes_through_moto(make_ctx: Ctx) -> None:
    sns = boto3.client("sns")
    topic = provisioner_for("AWS::SNS::Topic")
    assert topic is not None
    ctx = make_ctx("AWS::SNS::Topic", "Alerts")
    props = {"TopicName": "alerts"}
    made = topic.create(ctx, props)

    assert made.physical_id == "arn:aws:sns:eu-west-1:123456789012:alerts"
    assert made.get_att("TopicName") == "alerts"
    with pytest.raises(KeyError):
        made.get_att("NoSuchAttribute")
    updated = {**props, "DisplayName": "Alerts"}
    made = topic.update(ctx, made, props, updated)
    attributes = sns.get_topic_attributes(TopicArn=made.physical_id)["Attributes"]
    assert attributes["DisplayName"] == "Alerts"

    for _ in range(2):
        topic.delete(ctx, made, updated)
    assert sns.list_topics()["Topics"] == []


def test_adapter_replaces_what_moto_cannot_update_and_deletes_once(make_ctx: Ctx) -> None:
    dynamodb = boto3.client("dynamodb")
    table = provisioner_for("AWS::DynamoDB::Table")
    assert table is not None
    ctx = make_ctx("AWS::DynamoDB::Table", "State")
    props: dict[str, Any] = {
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "Tags": [{"Key": "Name", "Value": "state"}],
    }
    made = table.create(ctx, props)

    assert made.physical_id.startswith("unit-stack-State-")
    described = dynamodb.describe_table(TableName=made.physical_id)["Table"]
    assert described["TableStatus"] == "ACTIVE"
    tags = dynamodb.list_tags_of_resource(ResourceArn=described["TableArn"])["Tags"]
    # The stack's tags are added; DynamoDB tables do not get CloudFormation's aws:* ones.
    assert {t["Key"]: t["Value"] for t in tags} == {"Name": "state", "example": "1"}
    with pytest.raises(NeedsReplacement):
        table.update(ctx, made, props, {**props, "BillingMode": "PROVISIONED"})

    for _ in range(2):
        table.delete(ctx, made, props)
    assert dynamodb.list_tables()["TableNames"] == []
