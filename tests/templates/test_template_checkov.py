"""checkov over cfn/ as `make lint` runs it, and the discipline of its suppressions (checkov runs
once for every template: tests/templates/conftest.py)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import pytest

from tests.support.cfn import PRODUCT_TEMPLATES, load
from valohai_hybrid.checkout import CFN

MINIMUM_REASON_WORDS = 8


def checkov_skips() -> list[tuple[str, str, str, str]]:
    """(template, resource, check id, comment) for every suppression in resource Metadata."""
    return [
        (name, resource_name, skip["id"], skip.get("comment", ""))
        for name in PRODUCT_TEMPLATES
        for resource_name, resource in load(name)["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]


def test_checkov_reports_no_failures(product_checkov: dict[str, Any]) -> None:
    failures = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in product_checkov["failed_checks"]
    ]
    assert failures == []
    assert product_checkov["parsing_errors"] == []
    assert len(product_checkov["passed_checks"]) > 50


def test_every_suppression_is_in_resource_metadata_and_used(
    product_checkov: dict[str, Any],
) -> None:
    skipped = {
        (PurePosixPath(c["file_path"]).name, c["resource"].split(".")[-1], c["check_id"])
        for c in product_checkov["skipped_checks"]
    }
    declared = {(name, resource, check) for name, resource, check, _ in checkov_skips()}
    assert declared == skipped


@pytest.mark.parametrize(
    ("template", "resource", "check", "comment"),
    checkov_skips(),
    ids=[f"{resource}-{check}" for _, resource, check, _ in checkov_skips()],
)
def test_every_checkov_suppression_gives_its_reason(
    template: str, resource: str, check: str, comment: str
) -> None:
    assert re.fullmatch(r"CKV2?_AWS_\d+", check)
    assert len(comment.split()) >= MINIMUM_REASON_WORDS, f"{template} {resource}: {comment!r}"


def cfn_lint_suppressions() -> list[tuple[str, int, str]]:
    """(template, line, reason) for every ignore_checks in the templates.

    cfn-lint's Metadata config has no comment field, so the reason is the YAML comment that
    directly precedes ignore_checks.
    """
    found = []
    for template in PRODUCT_TEMPLATES:
        lines = (CFN / template).read_text().splitlines()
        for number, line in enumerate(lines):
            if line.strip() != "ignore_checks:":
                continue
            reason: list[str] = []
            for above in reversed(lines[:number]):
                if not above.strip().startswith("#"):
                    break
                reason.insert(0, above.strip().lstrip("# "))
            found.append((template, number + 1, " ".join(reason)))
    return found


@pytest.mark.parametrize(
    ("template", "line", "reason"),
    cfn_lint_suppressions(),
    ids=[f"{template}:{line}" for template, line, _ in cfn_lint_suppressions()],
)
def test_every_cfn_lint_suppression_gives_its_reason(template: str, line: int, reason: str) -> None:
    assert len(reason.split()) >= MINIMUM_REASON_WORDS, f"{template}:{line} has no reason"
