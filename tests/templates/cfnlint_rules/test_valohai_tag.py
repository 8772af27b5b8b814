"""E9003 (valohai_hybrid/cfnlint_rules/valohai_tag.py): taggable resources carry the valohai tag."""

from __future__ import annotations

from typing import Any

from tests.support.cfn import rule_fixture_findings


def test_good_fixture_passes_and_bad_fixture_fails_exactly_where_expected(
    lint_findings: list[dict[str, Any]],
) -> None:
    found = rule_fixture_findings(lint_findings, "valohai_tag")
    assert found["good"] == set()
    assert found["bad"] == {
        ("E9003", "NoTags"),
        ("E9003", "CapitalisedKey"),
        ("E9003", "WrongValue"),
        ("E9003", "MapWithoutTag"),
    }
