"""Reading templates as CloudFormation does: YAML with short-form tags, or JSON."""

from __future__ import annotations

import functools
import json
from typing import Any

from cfnlint.decode import decode_str

from .errors import ValidationError

SECTIONS = {
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Transform",
    "Resources",
    "Outputs",
}
SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"
# Sections the SAM transform reads and removes.
SERVERLESS_SECTIONS = {"Globals"}


def parse(body: str) -> dict[str, Any]:
    """Parse a template body, rejecting what CloudFormation rejects before it creates anything.

    cfn-lint's decoder is used because it reads the short forms as CloudFormation does
    (`!GetAtt A.Outputs.B` is `["A", "Outputs.B"]`, not split on every dot). Every call gets a
    template of its own to change.
    """
    if not body or not body.strip():
        raise ValidationError("Template format error: the template body is empty")
    template = json.loads(_decoded(body))
    if not isinstance(template, dict):
        raise ValidationError("Template format error: the template must be a mapping")
    allowed = SECTIONS
    if SERVERLESS_TRANSFORM in transforms(template):
        allowed = allowed | SERVERLESS_SECTIONS
    unknown = sorted(set(template) - allowed)
    if unknown:
        raise ValidationError(
            f"Template format error: Invalid template property or properties {unknown}"
        )
    resources = template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise ValidationError(
            "Template format error: At least one Resources member must be defined."
        )
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise ValidationError(
                f"Template format error: [/Resources/{logical_id}] Every Resources object "
                "must contain a Type member."
            )
    return template


@functools.lru_cache(maxsize=64)
def _decoded(body: str) -> str:
    """The template as JSON, plain values only (cfn-lint's node classes carry positions).

    Decoding YAML is most of the CPU a stack operation costs the local AWS, and the same
    bodies come again and again (every launch creates the same nested stacks): each body is
    decoded once.
    """
    decoded, problems = decode_str(body)
    if decoded is None or problems:
        detail = "; ".join(str(p.message) for p in problems) or "not a mapping"
        raise ValidationError(f"Template format error: {detail}")
    return json.dumps(decoded, default=str)


def transforms(template: dict[str, Any]) -> list[str]:
    value = template.get("Transform")
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]
