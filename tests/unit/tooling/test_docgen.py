"""README's generated blocks: current with the templates, and complete."""

from __future__ import annotations

import subprocess
import sys

import pytest

from valohai_hybrid import docgen
from valohai_hybrid.checkout import CFN
from valohai_hybrid.templates import load_template


def test_readme_blocks_are_what_the_templates_say() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "valohai_hybrid.cli", "docs"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("root", ["iam.yml", "main.yml"])
def test_every_parameter_has_a_row(root: str) -> None:
    table = docgen.parameters_table(CFN / root)
    for name in load_template(CFN / root)["Parameters"]:
        assert f"(`{name}`)" in table


def test_the_picture_shows_every_resource_of_every_template() -> None:
    picture = docgen.architecture()
    for path in CFN.glob("*.yml"):
        for logical_id, resource in load_template(path)["Resources"].items():
            if resource["Type"] != "AWS::CloudFormation::Stack":
                assert f'["{logical_id}<br/>' in picture, (path.name, logical_id)


def test_a_readme_without_the_blocks_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks the generated blocks"):
        docgen.render("# A README\n")
