"""E9003: every taggable resource of the product carries the tag valohai=1.

ValohaiMaster's permissions are scoped to resources tagged valohai=1 and Valohai finds its
resources by that tag, so a resource without it is invisible or unmanageable for Valohai.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError

TAG_KEY = "valohai"
TAG_VALUE = "1"


def _tag_pointer(region: str, resource_type: str) -> list[str] | None:
    """Where the resource type keeps its tags (below Properties), or None if it takes none.

    The provider schemas cfn-lint ships say which types are taggable and where the tags go,
    e.g. ``Tags`` or ``TagSpecifications/*/Tags``.
    """
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except ResourceNotFoundError:
        return None
    tagging = schema.get("tagging") or {}
    pointer = tagging.get("tagProperty") or "/properties/Tags"
    if not tagging.get("taggable") or not pointer.startswith("/properties/"):
        return None
    return list(pointer.removeprefix("/properties/").split("/"))


def _tag_sets(value: Any, pointer: list[str]) -> Iterator[Any]:
    """Every tag collection the pointer reaches; ``*`` walks the items of a list."""
    if not pointer:
        yield value
    elif pointer[0] == "*" and isinstance(value, list):
        for item in value:
            yield from _tag_sets(item, pointer[1:])
    elif isinstance(value, dict) and pointer[0] in value:
        yield from _tag_sets(value[pointer[0]], pointer[1:])


def _has_valohai_tag(tags: Any) -> bool:
    """Tags come as a list of Key/Value pairs or, for a few types, as a map."""
    if isinstance(tags, dict):
        return str(tags.get(TAG_KEY)) == TAG_VALUE
    if isinstance(tags, list):
        return any(
            isinstance(tag, dict)
            and tag.get("Key") == TAG_KEY
            and str(tag.get("Value")) == TAG_VALUE
            for tag in tags
        )
    return False


class ValohaiTag(CloudFormationLintRule):  # type: ignore[misc]
    """Looks only at literal tags: a tag behind a condition or parameter may be missing."""

    id = "E9003"
    shortdesc = "Taggable resources carry valohai=1"
    description = "Every resource whose type takes tags must have the literal tag valohai=1"
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_tags.html"
    tags: ClassVar[list[str]] = ["resources", "tags", "valohai"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        region = cfn.regions[0]
        for name, resource in cfn.get_resources().items():
            resource_type = resource.get("Type")
            if not isinstance(resource_type, str):
                continue
            pointer = _tag_pointer(region, resource_type)
            if pointer is None:
                continue
            tag_sets = list(_tag_sets(resource.get("Properties"), pointer))
            if tag_sets and all(_has_valohai_tag(tags) for tags in tag_sets):
                continue
            matches.append(
                RuleMatch(
                    ["Resources", name, "Properties"],
                    f"{resource_type} {name} lacks the tag valohai=1 that Valohai's "
                    f"permissions and discovery rely on: add {{Key: {TAG_KEY}, Value: "
                    f'"{TAG_VALUE}"}} to {"/".join(pointer)}',
                )
            )
        return matches
