"""E9002 (valohai_hybrid/cfnlint_rules/instance_root_volume_encrypted.py): every volume of an
instance is encrypted, the root volume included."""

from __future__ import annotations

from typing import Any

from tests.support.cfn import rule_fixture_findings


def test_good_fixture_passes_and_bad_fixture_fails_exactly_where_expected(
    lint_findings: list[dict[str, Any]],
) -> None:
    found = rule_fixture_findings(lint_findings, "instance_root_volume_encrypted")
    assert found["good"] == set()
    assert found["bad"] == {
        ("E9002", "NoMappings"),
        ("E9002", "UnencryptedRoot"),
        ("E9002", "UnencryptedDataVolume"),
        ("E9002", "OnlyADataVolume"),
    }
