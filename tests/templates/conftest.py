"""The slow tools of the template tests, each run once per test run over every template it
judges (one cfn-lint in every region, one checkov), whatever worker asks first; the tests read
the findings of their own files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cfn import (
    CFN,
    PRODUCT_TEMPLATES,
    REPO,
    cfn_lint,
    checkov,
    checkov_of,
    linted_files,
)
from tests.support.shared import once_per_run, run_directory
from valohai_hybrid.local.sam_translation import translated

#: The platform template as CloudFormation deploys it (SAM-translated), where the roles and
#: event resources SAM generates exist: checkov judges both, as `make lint` does.
PLATFORM_ACCOUNT, PLATFORM_REGION = "123456789012", "eu-west-1"


@pytest.fixture(scope="session")
def shared_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_directory(tmp_path_factory)


@pytest.fixture(scope="session")
def lint_findings(shared_directory: Path) -> list[dict[str, Any]]:
    """cfn-lint's findings in the product templates and in our rules' fixtures."""
    findings: list[dict[str, Any]] = once_per_run(
        shared_directory, "cfn-lint", lambda: cfn_lint(*linted_files())
    )
    return findings


@pytest.fixture(scope="session")
def translated_platform(shared_directory: Path) -> Path:
    return shared_directory / "platform-translated.json"


@pytest.fixture(scope="session")
def checkov_results(shared_directory: Path, translated_platform: Path) -> dict[str, Any]:
    """checkov's results for the product templates, the platform template and its translation."""

    def run() -> dict[str, Any]:
        template = REPO / "template.yaml"
        translated_platform.write_text(
            json.dumps(translated(template, region=PLATFORM_REGION, account_id=PLATFORM_ACCOUNT))
        )
        return checkov(*(CFN / name for name in PRODUCT_TEMPLATES), template, translated_platform)

    results: dict[str, Any] = once_per_run(shared_directory, "checkov", run)
    return results


@pytest.fixture(scope="session")
def product_checkov(checkov_results: dict[str, Any]) -> dict[str, Any]:
    """checkov's results for the product templates (cfn/), as `checkov -d cfn` gives them."""
    each = [checkov_of(checkov_results, CFN / name) for name in PRODUCT_TEMPLATES]
    return {kind: [entry for results in each for entry in results[kind]] for kind in each[0]}


@pytest.fixture(scope="session")
def platform_checkov(
    checkov_results: dict[str, Any], translated_platform: Path
) -> dict[str, dict[str, Any]]:
    """checkov's results for the platform template: its source and its SAM translation."""
    return {
        "source": checkov_of(checkov_results, REPO / "template.yaml"),
        "translated": checkov_of(checkov_results, translated_platform),
    }
