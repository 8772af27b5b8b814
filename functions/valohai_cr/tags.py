"""Tags that say who owns what: they are the proof the functions check before touching anything."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: ValohaiMaster and the queue role may read every secret and parameter tagged valohai=1.
VALOHAI = ("valohai", "1")
MANAGED_BY = ("valohai-hybrid:managed-by", "valohai-hybrid-aws")
STACK_ID = "valohai-hybrid:stack-id"
PURPOSE = "valohai-hybrid:purpose"
SETUP_TOKEN_PURPOSE = "setup-token"  # noqa: S105 (a tag value, not a secret)


def owned_tags(stack_id: str) -> list[tuple[str, str]]:
    """The tags (key, value) of something a stack created through these functions."""
    return [VALOHAI, MANAGED_BY, (STACK_ID, stack_id)]


def as_dict(tags: Iterable[Mapping[str, object]]) -> dict[str, str]:
    """AWS's [{"Key": k, "Value": v}] as {k: v}."""
    return {str(tag.get("Key")): str(tag.get("Value")) for tag in tags}
