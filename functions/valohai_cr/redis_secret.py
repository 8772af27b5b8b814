"""Custom::ValohaiRedisSecret: the Redis password the queue and Valohai read from Secrets Manager.

Ownership is decided by tags: a secret is ours when it carries the managed-by tag, and this
stack's when its stack-id tag is this stack. Ours-but-deleted (scheduled for deletion by an
earlier launch) is re-adopted; anything else that already has the name is refused.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent

from valohai_cr.errors import ResourceFailure
from valohai_cr.events import stack_of
from valohai_cr.properties import Properties
from valohai_cr.resource import Result
from valohai_cr.tags import MANAGED_BY, STACK_ID, as_dict, owned_tags
from valohai_cr.work import Work

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import DescribeSecretResponseTypeDef

log = logging.getLogger(__name__)

DEFAULT_NAME = "ValohaiRedisSecret"
AWS_MANAGED_KEY = "alias/aws/secretsmanager"
PASSWORD_LENGTH = 32
_KMS_KEY = (
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
    r"|alias/[A-Za-z0-9/_-]{1,250}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,250})"
)
#: The resource type's properties (besides ServiceToken and ServiceTimeout), as the
#: templates set them.
PROPERTIES = ("SecretName", "KmsKeyId", "RecoveryWindowInDays", "RotationToken")


class SecretSettings(NamedTuple):
    name: str
    kms_key_id: str
    recovery_window_days: int
    rotation_token: str

    @classmethod
    def parse(cls, raw: Any) -> SecretSettings:
        props = Properties(raw, PROPERTIES)
        name = props.text(
            "SecretName",
            default=DEFAULT_NAME,
            pattern=r"[A-Za-z0-9/_+=.@-]{1,512}",
            expected=f"1-512 letters, digits or /_+=.@- (default {DEFAULT_NAME})",
        )
        kms_key_id = props.text(
            "KmsKeyId",
            default="",
            pattern=_KMS_KEY,
            expected="a KMS key id, key ARN, alias/NAME or alias ARN (empty: the AWS managed key)",
        )
        window = props.text(
            "RecoveryWindowInDays",
            default="7",
            pattern=r"0|[7-9]|[12][0-9]|30",
            expected='"0" (delete without recovery) or a number of days from 7 to 30',
        )
        rotation_token = props.text(
            "RotationToken",
            default="",
            pattern=r"[\x20-\x7e]{0,256}",
            expected="up to 256 printable characters (change it to get a new password)",
        )
        return cls(name, kms_key_id, int(window), rotation_token)

    @classmethod
    def previous(cls, raw: Mapping[str, Any]) -> tuple[str, str, str]:
        """Name, key and rotation token the resource had, without judging them again."""
        return (
            str(raw.get("SecretName", DEFAULT_NAME)),
            str(raw.get("KmsKeyId", "")),
            str(raw.get("RotationToken", "")),
        )


def _version_token(event: CloudFormationCustomResourceEvent, purpose: str) -> str:
    """A secret version id (UUID-shaped) derived from the request: a retried request writes
    the same version, which Secrets Manager then recognises."""
    seed = f"{event.stack_id}/{event.logical_resource_id}/{event.request_id}/{purpose}"
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _stack_name(stack_id: str) -> str:
    try:
        return stack_of(stack_id)["name"]
    except ValueError:
        return stack_id


class RedisSecretProvider:
    def __init__(self, secrets: SecretsManagerClient) -> None:
        self._secrets = secrets

    def create(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result:
        settings = SecretSettings.parse(event.resource_properties)
        return self._result(self._ensure(settings, event, work), settings)

    def update(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result:
        settings = SecretSettings.parse(event.resource_properties)
        old_name, old_key, old_rotation = SecretSettings.previous(event.old_resource_properties)
        if settings.name != old_name:
            # A new name is a new secret: CloudFormation deletes the old one after this succeeds.
            return self._result(self._ensure(settings, event, work), settings)
        current = self._describe(event.physical_resource_id, work)
        if current is None or "DeletedDate" in current or not self._is_stacks(current, event):
            return self._result(self._ensure(settings, event, work), settings)
        arn = current["ARN"]
        if settings.kms_key_id != old_key:
            with work.step(f"changing the KMS key of the secret {settings.name}"):
                self._secrets.update_secret(
                    SecretId=arn, KmsKeyId=settings.kms_key_id or AWS_MANAGED_KEY
                )
        if settings.rotation_token != old_rotation:
            self._rotate(arn, current, event, work)
        return self._result(arn, settings)

    def delete(self, event: CloudFormationCustomResourceEvent, work: Work) -> Result:
        arn = event.physical_resource_id
        result = Result(arn, {})
        if ":secretsmanager:" not in arn:
            # The Create ended without naming a secret: it failed, or its deadline came after
            # it made one. Such a secret has the name in the properties and this stack's tag.
            try:
                arn = SecretSettings.parse(event.resource_properties).name
            except ResourceFailure:
                log.info("Nothing to delete: the Create never made a secret")
                return result
        secret = self._describe(arn, work)
        if secret is None or "DeletedDate" in secret:
            log.info("Nothing to delete: the secret is gone or already scheduled for deletion")
            return result
        if not self._is_stacks(secret, event):
            log.warning("Not deleting %s: it is not tagged with this stack", arn)
            return result
        try:
            window = SecretSettings.parse(event.resource_properties).recovery_window_days
        except ResourceFailure:
            window = 7
        with work.step(f"deleting the secret {secret['Name']}"):
            if window == 0:
                self._secrets.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
            else:
                self._secrets.delete_secret(SecretId=secret["ARN"], RecoveryWindowInDays=window)
        return result

    def _ensure(
        self, settings: SecretSettings, event: CloudFormationCustomResourceEvent, work: Work
    ) -> str:
        """The ARN of this stack's secret named `settings.name`: existing, re-adopted or new."""
        secret = self._describe(settings.name, work)
        if secret is None:
            return self._create(settings, event, work)
        tags = as_dict(secret.get("Tags", []))
        owned = tags.get(MANAGED_BY[0]) == MANAGED_BY[1]
        if "DeletedDate" in secret:
            if owned:
                return self._readopt(secret["ARN"], settings, event, work)
            raise ResourceFailure(
                f"A secret named {settings.name} is scheduled for deletion and was not made by "
                "Valohai Hybrid: choose another SecretName, or restore it and delete it with "
                "ForceDeleteWithoutRecovery"
            )
        if owned and tags.get(STACK_ID) == event.stack_id:
            log.info("The secret exists already for this stack (a retried request)")
            return secret["ARN"]
        if owned:
            raise ResourceFailure(
                f"The secret {settings.name} belongs to stack "
                f"{_stack_name(tags.get(STACK_ID, '?'))}: "
                "choose another SecretName, or delete that stack first"
            )
        raise ResourceFailure(
            f"A secret named {settings.name} already exists and was not made by Valohai Hybrid: "
            "choose another SecretName, or delete that secret if nothing uses it"
        )

    def _create(
        self, settings: SecretSettings, event: CloudFormationCustomResourceEvent, work: Work
    ) -> str:
        password = self._new_password(work)
        with work.step(f"creating the secret {settings.name}"):
            try:
                created = self._secrets.create_secret(
                    Name=settings.name,
                    Description=self._description(event),
                    SecretString=password,
                    Tags=[{"Key": k, "Value": v} for k, v in owned_tags(event.stack_id)],
                    KmsKeyId=settings.kms_key_id or AWS_MANAGED_KEY,
                    ClientRequestToken=_version_token(event, "create"),
                )
            except self._secrets.exceptions.ResourceExistsException:
                created = None
        if created is None:
            # Someone created it between our look-up and our create: ours only if this stack's.
            raced = self._describe(settings.name, work)
            if raced is None or not self._is_stacks(raced, event):
                raise ResourceFailure(
                    f"A secret named {settings.name} appeared while this stack was creating it: "
                    "choose another SecretName, or delete that secret if nothing uses it"
                )
            return raced["ARN"]
        log.info("Created the secret %s", settings.name)
        return created["ARN"]

    def _readopt(
        self,
        arn: str,
        settings: SecretSettings,
        event: CloudFormationCustomResourceEvent,
        work: Work,
    ) -> str:
        with work.step(f"restoring the secret {settings.name} left by an earlier launch"):
            self._secrets.restore_secret(SecretId=arn)
        with work.step(f"tagging the secret {settings.name}"):
            self._secrets.tag_resource(
                SecretId=arn, Tags=[{"Key": k, "Value": v} for k, v in owned_tags(event.stack_id)]
            )
        password = self._new_password(work)
        with work.step(f"setting a new password in the secret {settings.name}"):
            self._secrets.update_secret(
                SecretId=arn,
                SecretString=password,
                Description=self._description(event),
                KmsKeyId=settings.kms_key_id or AWS_MANAGED_KEY,
                ClientRequestToken=_version_token(event, "readopt"),
            )
        log.info("Re-adopted the secret %s", settings.name)
        return arn

    def _rotate(
        self,
        arn: str,
        current: DescribeSecretResponseTypeDef,
        event: CloudFormationCustomResourceEvent,
        work: Work,
    ) -> None:
        version = _version_token(event, "rotate")
        if version in current.get("VersionIdsToStages", {}):
            log.info("The password was already rotated by this request")
            return
        password = self._new_password(work)
        with work.step(f"rotating the password in the secret {current['Name']}"):
            self._secrets.put_secret_value(
                SecretId=arn, SecretString=password, ClientRequestToken=version
            )
        log.info("Rotated the password (RotationToken changed)")

    def _new_password(self, work: Work) -> str:
        with work.step("generating the Redis password"):
            return self._secrets.get_random_password(
                PasswordLength=PASSWORD_LENGTH,
                ExcludePunctuation=True,
                IncludeSpace=False,
                RequireEachIncludedType=True,
            )["RandomPassword"]

    def _describe(self, secret_id: str, work: Work) -> DescribeSecretResponseTypeDef | None:
        with work.step(f"looking up the secret {secret_id}"):
            try:
                return self._secrets.describe_secret(SecretId=secret_id)
            except self._secrets.exceptions.ResourceNotFoundException:
                return None

    @staticmethod
    def _is_stacks(
        secret: DescribeSecretResponseTypeDef, event: CloudFormationCustomResourceEvent
    ) -> bool:
        tags = as_dict(secret.get("Tags", []))
        return tags.get(MANAGED_BY[0]) == MANAGED_BY[1] and tags.get(STACK_ID) == event.stack_id

    @staticmethod
    def _description(event: CloudFormationCustomResourceEvent) -> str:
        return f"Redis password of the Valohai queue (stack {_stack_name(event.stack_id)})"

    @staticmethod
    def _result(arn: str, settings: SecretSettings) -> Result:
        return Result(arn, {"Arn": arn, "Name": settings.name})
