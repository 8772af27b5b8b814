"""E9001: EC2 instances must require IMDSv2 (no checkov check covers AWS::EC2::Instance)."""

from __future__ import annotations

from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch


class InstanceRequiresImdsV2(CloudFormationLintRule):  # type: ignore[misc]
    """IMDSv1 lets any SSRF on the machine read the instance role's credentials."""

    id = "E9001"
    shortdesc = "EC2 instances require IMDSv2"
    description = "AWS::EC2::Instance must set MetadataOptions.HttpTokens to the literal 'required'"
    source_url = (
        "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html"
    )
    tags: ClassVar[list[str]] = ["resources", "ec2", "security", "valohai"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, resource in cfn.get_resources(["AWS::EC2::Instance"]).items():
            properties = resource.get("Properties")
            options = properties.get("MetadataOptions") if isinstance(properties, dict) else None
            tokens = options.get("HttpTokens") if isinstance(options, dict) else None
            if tokens == "required":
                continue
            path = ["Resources", name, "Properties"]
            if isinstance(options, dict):
                path.append("MetadataOptions")
            matches.append(
                RuleMatch(
                    path,
                    f"EC2 instance {name} allows IMDSv1: set MetadataOptions.HttpTokens to "
                    "'required' (a literal, not a parameter or condition)",
                )
            )
        return matches
