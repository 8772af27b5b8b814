"""E9001 (valohai_hybrid/cfnlint_rules/instance_imdsv2.py): instances require IMDSv2 tokens."""

from __future__ import annotations

from typing import Any

from tests.support.cfn import rule_fixture_findings


def test_good_fixture_passes_and_bad_fixture_fails_exactly_where_expected(
    lint_findings: list[dict[str, Any]],
) -> None:
    found = rule_fixture_findings(lint_findings, "instance_imdsv2")
    assert found["good"] == set()
    assert found["bad"] == {
        ("E9001", "OptionalTokens"),
        ("E9001", "NoMetadataOptions"),
        ("E9001", "TokensFromParameter"),
    }
