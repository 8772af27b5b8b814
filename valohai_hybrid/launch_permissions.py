"""What a product's launch role must be allowed to do, derived from the product's templates.

Service Catalog launches a product's stack as the launch role, so CloudFormation creates,
reads, updates and deletes every resource of the product with it, invokes the custom resources'
functions with it and resolves SSM- and EC2-typed parameters with it. What CloudFormation's
handler of each resource type calls is published in the type's schema (`handlers.*.permissions`,
shipped with cfn-lint); `UNUSED` takes out, per type, the permissions that only serve properties
or policies the products never use, each with the reason. The platform template's launch roles
must grant exactly what `required_actions` returns (tests/templates checks it both ways).

The local AWS keeps the same knowledge from its side (`localaws.cloudformation.handler_calls`:
when each handler calls a declared permission); this module may not import it (the product
does not depend on the emulator), so tests/templates checks that the two agree.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cfnlint.data.AdditionalSpecs
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from valohai_hybrid.templates import TemplateError, load_template

SCHEMA_REGION = "us-east-1"
HANDLER_OPERATIONS = ("create", "read", "update", "delete")

#: What Service Catalog does with the launch role for the product's own (root) stack (AWS's
#: launch-constraint guide lists these), and the templates CloudFormation reads with it: Service
#: Catalog's tagged copy of the product's template (in a bucket Service Catalog owns) and the
#: nested ones in the release's S3 location. The local Service Catalog makes its own stack calls
#: as the account, so the statements granting only these (the IAM role's LaunchedStacks, both
#: roles' ReadTemplates) are the ones the evidence test shows no recorded operation needs.
SERVICE_CATALOG_LAUNCH = frozenset(
    {
        "cloudformation:CreateStack",
        "cloudformation:DeleteStack",
        "cloudformation:DescribeStackEvents",
        "cloudformation:DescribeStacks",
        "cloudformation:GetTemplateSummary",
        "cloudformation:SetStackPolicy",
        "cloudformation:UpdateStack",
        "cloudformation:ValidateTemplate",
        "s3:GetObject",
    }
)
#: Actions IAM could scope to a resource that the launch calls without one.
CALLED_WITHOUT_RESOURCE: Mapping[str, str] = {
    "cloudformation:GetTemplateSummary": "Service Catalog asks about a template URL, not a stack",
}
#: CloudFormation invokes a custom resource's function as the stack's role.
CUSTOM_RESOURCE = frozenset({"lambda:InvokeFunction"})
#: Parameter types CloudFormation resolves or validates with the stack's role.
PARAMETER_TYPES: Mapping[str, frozenset[str]] = {
    "AWS::EC2::KeyPair::KeyName": frozenset({"ec2:DescribeKeyPairs"}),
    "AWS::EC2::Image::Id": frozenset({"ec2:DescribeImages"}),
    "AWS::SSM::Parameter::Value": frozenset({"ssm:GetParameters"}),
}

#: Where the customer pins a machine image of their own for an SSM-typed image parameter.
PINNED_IMAGE_PARAMETERS = "/valohai-hybrid/queue-image/*"
#: AWS's public parameters (Canonical's images among them); the path below may change.
PUBLIC_PARAMETERS = "/aws/service/*"

_RETAINED = "the resource is retained (DeletionPolicy Retain): CloudFormation never deletes it"
#: s3:DeleteObject is declared by the bucket's create handler only; its delete handler declares
#: s3:DeleteBucket and s3:ListBucket (S3 deletes only empty buckets). No documented property
#: makes a bucket's creation delete objects, so the launch role gets no way to remove data.
_NO_OBJECT_DELETES = (
    "declared by the create handler only, for no documented property; a bucket's delete "
    "deletes no objects (S3 deletes only empty buckets)"
)

#: Handler permissions the products do not need: (actions, why) per resource type.
UNUSED: Mapping[str, tuple[tuple[frozenset[str], str], ...]] = {
    "AWS::CloudFormation::Stack": (
        (frozenset({"iam:PassRole"}), "nested stacks get no RoleARN"),
        (
            frozenset({"cloudformation:UpdateTerminationProtection"}),
            "nested stacks never enable termination protection",
        ),
    ),
    "AWS::EC2::EIP": ((frozenset({"ec2:AcceptAddressTransfer"}), "no TransferAddress"),),
    "AWS::EC2::FlowLog": (
        (
            frozenset(
                {
                    "logs:CreateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "s3:GetBucketPolicy",
                    "s3:PutBucketPolicy",
                    "iam:CreateServiceLinkedRole",
                }
            ),
            "the flow log delivers to CloudWatch Logs with its own role, not to S3 or Firehose",
        ),
    ),
    "AWS::EC2::Instance": (
        (frozenset({"ec2:AttachVolume", "ec2:DetachVolume"}), "no Volumes"),
        (frozenset({"ec2:ModifyInstanceCreditSpecification"}), "no CreditSpecification"),
        (frozenset({"ec2:ModifyInstanceMaintenanceOptions"}), "no MaintenanceOptions"),
        (frozenset({"ec2:ModifyInstancePlacement"}), "no Affinity, HostId or Tenancy"),
        (frozenset({"ec2:ModifyPrivateDnsNameOptions"}), "no PrivateDnsNameOptions"),
        (
            frozenset(
                {
                    "ssm:CreateAssociation",
                    "ssm:DeleteAssociation",
                    "ssm:DescribeAssociation",
                    "ssm:ListAssociations",
                }
            ),
            "no SsmAssociations",
        ),
    ),
    "AWS::EC2::Subnet": (
        (
            frozenset({"ec2:AssociateSubnetCidrBlock", "ec2:DisassociateSubnetCidrBlock"}),
            "no IPv6 CIDR blocks",
        ),
    ),
    "AWS::EC2::VPC": (
        (frozenset({"ec2:CreateVpcEncryptionControl"}), "no VpcEncryptionControl"),
        (frozenset({"ec2:ModifyVpcTenancy"}), "no InstanceTenancy"),
    ),
    "AWS::EC2::VPCGatewayAttachment": (
        (frozenset({"ec2:AttachVpnGateway", "ec2:DetachVpnGateway"}), "no VpnGatewayId"),
    ),
    "AWS::IAM::Policy": (
        (
            frozenset(
                {
                    "iam:DeleteGroupPolicy",
                    "iam:DeleteUserPolicy",
                    "iam:GetGroupPolicy",
                    "iam:GetUserPolicy",
                    "iam:PutGroupPolicy",
                    "iam:PutUserPolicy",
                }
            ),
            "policies attach to roles only",
        ),
    ),
    "AWS::IAM::Role": (
        (frozenset({"iam:AttachRolePolicy", "iam:DetachRolePolicy"}), "no ManagedPolicyArns"),
        (
            frozenset({"iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary"}),
            "no PermissionsBoundary",
        ),
    ),
    "AWS::Logs::LogGroup": (
        (
            frozenset({"firehose:TagDeliveryStream", "logs:CreateLogDelivery"}),
            "no delivery of the group's events to Firehose or S3",
        ),
        (frozenset({"logs:AssociateKmsKey", "logs:DisassociateKmsKey"}), "no KmsKeyId"),
        (
            frozenset({"logs:PutDataProtectionPolicy", "logs:DeleteDataProtectionPolicy"}),
            "no DataProtectionPolicy",
        ),
        (frozenset({"logs:PutIndexPolicy", "logs:DeleteIndexPolicy"}), "no FieldIndexPolicies"),
        (
            frozenset({"logs:PutResourcePolicy", "logs:DeleteResourcePolicy"}),
            "no ResourcePolicyDocument",
        ),
        (frozenset({"logs:PutBearerTokenAuthentication"}), "no BearerTokenAuthenticationEnabled"),
        (frozenset({"logs:PutLogGroupDeletionProtection"}), "no DeletionProtectionEnabled"),
    ),
    "AWS::S3::Bucket": (
        (frozenset({"s3:DeleteObject"}), _NO_OBJECT_DELETES),
        (
            frozenset({"iam:PassRole", "s3:PutReplicationConfiguration"}),
            "no ReplicationConfiguration",
        ),
        (
            frozenset({"s3:PutBucketWebsite", "s3:DeleteBucketWebsite"}),
            "no WebsiteConfiguration",
        ),
        (frozenset({"s3:PutAnalyticsConfiguration"}), "no AnalyticsConfigurations"),
        (frozenset({"s3:PutMetricsConfiguration"}), "no MetricsConfigurations"),
        (frozenset({"s3:PutAccelerateConfiguration"}), "no AccelerateConfiguration"),
        (frozenset({"s3:PutBucketAcl", "s3:PutObjectAcl"}), "no AccessControl (ACLs disabled)"),
        (frozenset({"s3:PutBucketAbac"}), "no AbacStatus"),
        (frozenset({"s3:PutBucketLogging"}), "no LoggingConfiguration"),
        (frozenset({"s3:PutBucketNotification"}), "no NotificationConfiguration"),
        (frozenset({"s3:PutBucketObjectLockConfiguration"}), "no ObjectLockConfiguration"),
        (frozenset({"s3:PutBucketVersioning"}), "no VersioningConfiguration"),
        (
            frozenset({"s3:PutIntelligentTieringConfiguration"}),
            "no IntelligentTieringConfigurations",
        ),
        (frozenset({"s3:PutInventoryConfiguration"}), "no InventoryConfigurations"),
        (
            frozenset(
                {
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
                }
            ),
            "no MetadataConfiguration",
        ),
    ),
    "AWS::S3::BucketPolicy": ((frozenset({"s3:DeleteBucketPolicy"}), _RETAINED),),
    "AWS::SecretsManager::Secret": (
        (frozenset({"secretsmanager:DeleteSecret"}), _RETAINED),
        (frozenset({"secretsmanager:GetRandomPassword"}), "no GenerateSecretString"),
        (
            frozenset(
                {
                    "secretsmanager:ReplicateSecretToRegions",
                    "secretsmanager:RemoveRegionsFromReplication",
                }
            ),
            "no ReplicaRegions",
        ),
    ),
}


class TemplateWalkError(Exception):
    """A product template could not be read; the message names it."""


def handler_actions(resource_type: str) -> frozenset[str]:
    """Every permission CloudFormation's create, read, update and delete handlers declare."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, resource_type).schema
    handlers = schema.get("handlers") or {}
    return frozenset(
        action
        for operation in HANDLER_OPERATIONS
        for action in (handlers.get(operation) or {}).get("permissions", [])
    )


def unused_actions(resource_type: str) -> frozenset[str]:
    return frozenset().union(*(actions for actions, _ in UNUSED.get(resource_type, ())))


def resource_type_actions(resource_type: str) -> frozenset[str]:
    """What the launch role needs for one resource type of the products.

    Some schemas list API operation names that are not IAM actions (s3:DeleteBucketCors is
    authorised by s3:PutBucketCORS, which the same list has): IAM ignores them, so do we.
    """
    return frozenset(
        action
        for action in handler_actions(resource_type) - unused_actions(resource_type)
        if is_iam_action(action)
    )


def required_actions(cfn_dir: Path, root: str) -> dict[str, set[str]]:
    """Action -> what needs it, for the product whose root template is `cfn_dir/root`.

    Nested stacks with a local TemplateURL are followed, as packaging follows them.
    """
    needs: dict[str, set[str]] = {}

    def add(actions: frozenset[str], why: str) -> None:
        for action in actions:
            needs.setdefault(action, set()).add(why)

    add(SERVICE_CATALOG_LAUNCH, "Service Catalog launch")
    for name in product_templates(cfn_dir, root):
        template = _load(cfn_dir / name)
        for parameter in (template.get("Parameters") or {}).values():
            kind = str(parameter.get("Type", ""))
            for prefix, actions in PARAMETER_TYPES.items():
                if kind == prefix or kind.startswith(f"{prefix}<"):
                    add(actions, f"{name}: parameter type {kind}")
        for resource in (template.get("Resources") or {}).values():
            kind = str(resource.get("Type", ""))
            if kind.startswith("Custom::"):
                add(CUSTOM_RESOURCE, f"{name}: {kind}")
            else:
                add(resource_type_actions(kind), f"{name}: {kind}")
    return needs


def readable_parameters(cfn_dir: Path, root: str) -> set[str]:
    """The SSM parameter names (or `/path/*` patterns) a launch may resolve, and no others.

    A launch role that may read any parameter lets an end user name one (say
    NotificationServiceToken=/corp/db-password) and read its value in the stack's events,
    resolved parameters and Service Catalog record. So: each SSM-typed parameter's default (the
    platform's service tokens), and for image parameters AWS's public ones and pinned images.
    """
    names: set[str] = set()
    for name in product_templates(cfn_dir, root):
        for parameter in (_load(cfn_dir / name).get("Parameters") or {}).values():
            kind = str(parameter.get("Type", ""))
            if not kind.startswith("AWS::SSM::Parameter::Value<"):
                continue
            default = str(parameter.get("Default", ""))
            if kind.endswith("<AWS::EC2::Image::Id>"):
                names |= {PUBLIC_PARAMETERS, PINNED_IMAGE_PARAMETERS}
                if not default.startswith(PUBLIC_PARAMETERS.rstrip("*")):
                    names.add(default)
            elif default:
                names.add(default)
    return names


def nests_templates(cfn_dir: Path, root: str) -> bool:
    """Whether the product nests templates, which CloudFormation reads with the launch role
    from the release's location (else the role needs only Service Catalog's copy)."""
    return len(product_templates(cfn_dir, root)) > 1


def product_templates(cfn_dir: Path, root: str) -> list[str]:
    """`root` and every template nested in it, each once."""
    seen: list[str] = []
    pending = [root]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.append(name)
        for resource in (_load(cfn_dir / name).get("Resources") or {}).values():
            url = (resource.get("Properties") or {}).get("TemplateURL")
            nested = resource.get("Type") == "AWS::CloudFormation::Stack"
            if nested and isinstance(url, str) and "://" not in url:
                pending.append(url)
    return seen


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    try:
        return load_template(path)
    except TemplateError as error:
        raise TemplateWalkError(str(error)) from error


@functools.cache
def _policy_actions() -> dict[str, Any]:
    path = Path(cfnlint.data.AdditionalSpecs.__file__).with_name("Policies.json")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _policy_entry(action: str) -> dict[str, Any] | None:
    service, _, name = action.partition(":")
    entry: dict[str, Any] | None = (
        _policy_actions().get(service, {}).get("Actions", {}).get(name.lower())
    )
    return entry


def is_iam_action(action: str) -> bool:
    """Whether IAM knows `action` (from the IAM reference data cfn-lint ships)."""
    return _policy_entry(action) is not None


def has_resource_level_permissions(action: str) -> bool:
    """Whether IAM lets `action` be scoped to resources (else it needs Resource "*")."""
    entry = _policy_entry(action)
    if entry is None:
        raise KeyError(f"{action} is not an IAM action")
    return bool(entry.get("Resources"))
