"""cfn-lint, informational rules on and our rules added, as `make lint` runs it, over the
product templates. Each of our rules has its own test file in cfnlint_rules/ (with good and bad
fixtures); one cfn-lint run judges them all (tests/templates/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.cfn import (
    PRODUCT_TEMPLATES,
    RULE_FIXTURES,
    RULES_DIR,
    finding_resource,
    findings_in,
)
from valohai_hybrid.checkout import CFN

RULE_MODULES = sorted(p.stem for p in RULES_DIR.glob("[a-z]*.py"))
RULE_TESTS = Path(__file__).parent / "cfnlint_rules"


def test_product_templates_have_no_findings_except_local_template_urls(
    lint_findings: list[dict[str, Any]],
) -> None:
    findings = [f for name in PRODUCT_TEMPLATES for f in findings_in(lint_findings, CFN / name)]
    unexpected = [
        f"{f['Rule']['Id']} {f['Filename']}:{f['Location']['Start']['LineNumber']} {f['Message']}"
        for f in findings
        if not (f["Rule"]["Id"] == "W3002" and f["Location"]["Path"][-1] == "TemplateURL")
    ]
    assert unexpected == []
    nested = {(Path(f["Filename"]).name, finding_resource(f)) for f in findings}
    assert nested == {
        ("main.yml", "Network"),
        ("main.yml", "S3Bucket"),
        ("main.yml", "WorkerQueue"),
        *{("network.yml", f"Subnet{n}") for n in range(1, 7)},
    }


@pytest.mark.parametrize("rule", RULE_MODULES)
def test_every_rule_has_fixtures_and_a_test_file_of_its_own(rule: str) -> None:
    assert (RULE_FIXTURES / rule / "good.yml").is_file()
    assert (RULE_FIXTURES / rule / "bad.yml").is_file()
    assert (RULE_TESTS / f"test_{rule}.py").is_file()
