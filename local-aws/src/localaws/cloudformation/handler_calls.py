"""When CloudFormation's resource handlers call the permissions their schemas declare.

A type's resource provider schema lists every permission its handlers may use
(`handlers.<create|update|delete>.permissions`); many are used only for a property the resource
sets: the IAM role handler calls iam:AttachRolePolicy only for ManagedPolicyArns. AWS asks
only for what the handler calls, so the local AWS asks only that too (`stack_role`). This table
says, per type and declared action, when the handler calls it; an action not listed is always
called. It is data about AWS's handlers, public so that a template's own list of the
permissions it leaves out of a role can be checked against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CalledWhen:
    """When a handler calls an action: when any of `properties` is set; with `equals`, only
    when the first of them has that value; with `unless`, only when it has another value (an
    absent property has the `unless` value, its default). No properties: never (`reason`)."""

    properties: tuple[str, ...] = ()
    equals: str | None = None
    unless: str | None = None
    reason: str = ""

    def holds(self, props: Mapping[str, Any]) -> bool:
        if not self.properties:
            return False
        first = self.properties[0]
        if self.equals is not None:
            return str(props.get(first)) == self.equals
        if self.unless is not None:
            return str(props.get(first, self.unless)) != self.unless
        return any(props.get(name) for name in self.properties)


def _when(*properties: str) -> CalledWhen:
    return CalledWhen(properties)


def _all(actions: tuple[str, ...], condition: CalledWhen) -> dict[str, CalledWhen]:
    return dict.fromkeys(actions, condition)


#: A flow log's delivery permissions: only a flow log to S3 or Firehose uses them (one to
#: CloudWatch Logs delivers with its own DeliverLogsPermissionArn role).
_FLOW_LOG_DELIVERY = CalledWhen(("LogDestinationType",), unless="cloud-watch-logs")
#: A log group's delivery permissions: only a DELIVERY-class group hands its events on.
_LOG_GROUP_DELIVERY = CalledWhen(("LogGroupClass",), equals="DELIVERY")
_BUCKET_METADATA = _when("MetadataConfiguration", "MetadataTableConfiguration")
_SUBNET_IPV6 = _when("Ipv6CidrBlock", "Ipv6CidrBlocks", "Ipv6IpamPoolId", "Ipv6Native")

#: Per resource type: declared action -> when its handler calls it.
CALLED_ONLY: Mapping[str, Mapping[str, CalledWhen]] = {
    "AWS::CloudFormation::Stack": {
        "cloudformation:UpdateTerminationProtection": _when("EnableTerminationProtection"),
    },
    "AWS::EC2::EIP": {"ec2:AcceptAddressTransfer": _when("TransferAddress")},
    "AWS::EC2::FlowLog": _all(
        (
            "logs:CreateLogDelivery",
            "logs:DeleteLogDelivery",
            "s3:GetBucketPolicy",
            "s3:PutBucketPolicy",
            "iam:CreateServiceLinkedRole",
        ),
        _FLOW_LOG_DELIVERY,
    ),
    "AWS::EC2::Instance": {
        "ec2:AttachVolume": _when("Volumes"),
        "ec2:DetachVolume": _when("Volumes"),
        "ec2:ModifyInstanceCreditSpecification": _when("CreditSpecification"),
        "ec2:ModifyInstanceMaintenanceOptions": _when("MaintenanceOptions"),
        "ec2:ModifyInstancePlacement": _when("Affinity", "HostId", "Tenancy"),
        "ec2:ModifyPrivateDnsNameOptions": _when("PrivateDnsNameOptions"),
        **_all(
            (
                "ssm:CreateAssociation",
                "ssm:DeleteAssociation",
                "ssm:DescribeAssociation",
                "ssm:ListAssociations",
            ),
            _when("SsmAssociations"),
        ),
    },
    "AWS::EC2::Subnet": _all(
        ("ec2:AssociateSubnetCidrBlock", "ec2:DisassociateSubnetCidrBlock"), _SUBNET_IPV6
    ),
    "AWS::EC2::VPC": {
        "ec2:CreateVpcEncryptionControl": _when("VpcEncryptionControl"),
        "ec2:ModifyVpcTenancy": _when("InstanceTenancy"),
    },
    "AWS::EC2::VPCGatewayAttachment": _all(
        ("ec2:AttachVpnGateway", "ec2:DetachVpnGateway"), _when("VpnGatewayId")
    ),
    "AWS::IAM::Policy": {
        **_all(
            ("iam:DeleteGroupPolicy", "iam:GetGroupPolicy", "iam:PutGroupPolicy"),
            _when("Groups"),
        ),
        **_all(("iam:DeleteUserPolicy", "iam:GetUserPolicy", "iam:PutUserPolicy"), _when("Users")),
    },
    "AWS::IAM::Role": {
        **_all(("iam:AttachRolePolicy", "iam:DetachRolePolicy"), _when("ManagedPolicyArns")),
        **_all(
            ("iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary"),
            _when("PermissionsBoundary"),
        ),
    },
    "AWS::Logs::LogGroup": {
        **_all(("firehose:TagDeliveryStream", "logs:CreateLogDelivery"), _LOG_GROUP_DELIVERY),
        **_all(("logs:AssociateKmsKey", "logs:DisassociateKmsKey"), _when("KmsKeyId")),
        **_all(
            ("logs:PutDataProtectionPolicy", "logs:DeleteDataProtectionPolicy"),
            _when("DataProtectionPolicy"),
        ),
        **_all(("logs:PutIndexPolicy", "logs:DeleteIndexPolicy"), _when("FieldIndexPolicies")),
        **_all(
            ("logs:PutResourcePolicy", "logs:DeleteResourcePolicy"),
            _when("ResourcePolicyDocument"),
        ),
        "logs:PutBearerTokenAuthentication": _when("BearerTokenAuthenticationEnabled"),
        "logs:PutLogGroupDeletionProtection": _when("DeletionProtectionEnabled"),
    },
    "AWS::S3::Bucket": {
        "s3:PutReplicationConfiguration": _when("ReplicationConfiguration"),
        **_all(("s3:PutBucketWebsite", "s3:DeleteBucketWebsite"), _when("WebsiteConfiguration")),
        "s3:PutAnalyticsConfiguration": _when("AnalyticsConfigurations"),
        "s3:PutMetricsConfiguration": _when("MetricsConfigurations"),
        "s3:PutAccelerateConfiguration": _when("AccelerateConfiguration"),
        **_all(("s3:PutBucketAcl", "s3:PutObjectAcl"), _when("AccessControl")),
        "s3:PutBucketAbac": _when("AbacStatus"),
        "s3:PutBucketLogging": _when("LoggingConfiguration"),
        "s3:PutBucketNotification": _when("NotificationConfiguration"),
        "s3:PutBucketObjectLockConfiguration": _when(
            "ObjectLockConfiguration", "ObjectLockEnabled"
        ),
        "s3:PutBucketVersioning": _when("VersioningConfiguration"),
        "s3:PutIntelligentTieringConfiguration": _when("IntelligentTieringConfigurations"),
        "s3:PutInventoryConfiguration": _when("InventoryConfigurations"),
        **_all(
            (
                "s3:CreateBucketMetadataTableConfiguration",
                "s3:DeleteBucketMetadataTableConfiguration",
                "s3:UpdateBucketMetadataAnnotationTableConfiguration",
                "s3:UpdateBucketMetadataInventoryTableConfiguration",
                "s3:UpdateBucketMetadataJournalTableConfiguration",
                "s3tables:CreateNamespace",
                "s3tables:CreateTable",
                "s3tables:CreateTableBucket",
                "s3tables:GetTable",
                "s3tables:GetTableMetadataLocation",
                "s3tables:PutTableBucketPolicy",
                "s3tables:PutTableEncryption",
                "s3tables:PutTablePolicy",
                "s3tables:UpdateTableMetadataLocation",
            ),
            _BUCKET_METADATA,
        ),
        # Declared by the create handler only (delete declares s3:DeleteBucket and
        # s3:ListBucket: "You can only delete empty buckets", AWS::S3::Bucket in the
        # CloudFormation template reference). No documented property makes a bucket's creation
        # delete objects, and a bucket being created holds none.
        "s3:DeleteObject": CalledWhen(reason="no documented property deletes objects"),
    },
    "AWS::SecretsManager::Secret": {
        "secretsmanager:GetRandomPassword": _when("GenerateSecretString"),
        **_all(
            (
                "secretsmanager:ReplicateSecretToRegions",
                "secretsmanager:RemoveRegionsFromReplication",
            ),
            _when("ReplicaRegions"),
        ),
    },
}

#: Properties that name a role a resource hands to its service (iam:PassRole's resource).
PASSED_ROLE_PROPERTIES = (
    "Role",
    "RoleArn",
    "RoleARN",
    "DeliverLogsPermissionArn",
    "ExecutionRoleArn",
    "ServiceRoleArn",
    "ServiceRole",
)


def called(
    resource_type: str,
    action: str,
    props: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
) -> bool:
    """Whether the handler calls `action` for a resource with these properties (in an update,
    or with the `previous` ones: removing ManagedPolicyArns still detaches them)."""
    condition = CALLED_ONLY.get(resource_type, {}).get(action)
    if condition is None:
        return True
    return condition.holds(props) or (previous is not None and condition.holds(previous))
