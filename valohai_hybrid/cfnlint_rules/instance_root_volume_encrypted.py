"""E9002: EC2 instances must declare an encrypted root volume (checkov only checks volumes)."""

from __future__ import annotations

from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# Root device names of the images in use: /dev/sda1 (Ubuntu, Debian, Windows) and /dev/xvda
# (Amazon Linux). An instance without such a mapping keeps the image's root volume settings.
ROOT_DEVICE_NAMES = ("/dev/sda1", "/dev/xvda")


def _is_true(value: Any) -> bool:
    return value is True or value == "true"


class InstanceRootVolumeEncrypted(CloudFormationLintRule):  # type: ignore[misc]
    """Without an explicit mapping the root disk follows the image and the account default."""

    id = "E9002"
    shortdesc = "EC2 instances have encrypted EBS volumes, root included"
    description = (
        "AWS::EC2::Instance must map its root device in BlockDeviceMappings, and every EBS "
        "mapping must set Ebs.Encrypted to true"
    )
    source_url = "https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html"
    tags: ClassVar[list[str]] = ["resources", "ec2", "security", "valohai"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, resource in cfn.get_resources(["AWS::EC2::Instance"]).items():
            properties = resource.get("Properties")
            if not isinstance(properties, dict):
                properties = {}
            mappings = properties.get("BlockDeviceMappings")
            if not isinstance(mappings, list):
                mappings = []
            path = ["Resources", name, "Properties", "BlockDeviceMappings"]
            devices = {m.get("DeviceName") for m in mappings if isinstance(m, dict)}
            if not devices.intersection(ROOT_DEVICE_NAMES):
                matches.append(
                    RuleMatch(
                        path if mappings else path[:-1],
                        f"EC2 instance {name} does not declare its root volume: add a "
                        f"BlockDeviceMappings entry for {' or '.join(ROOT_DEVICE_NAMES)} with "
                        "Ebs.Encrypted: true",
                    )
                )
            for index, mapping in enumerate(mappings):
                ebs = mapping.get("Ebs") if isinstance(mapping, dict) else None
                if isinstance(ebs, dict) and not _is_true(ebs.get("Encrypted")):
                    matches.append(
                        RuleMatch(
                            [*path, index, "Ebs"],
                            f"EC2 instance {name} has an unencrypted EBS volume "
                            f"{mapping.get('DeviceName')}: set Ebs.Encrypted to true",
                        )
                    )
        return matches
