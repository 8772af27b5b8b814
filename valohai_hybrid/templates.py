"""CloudFormation templates read one way: as cfn-lint (and so CloudFormation) reads them, with
short-form tags as `Fn::` mappings and plain JSON types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str


class TemplateError(ValueError):
    """The file is missing or is not a template; the message names it and why."""


def load_template(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TemplateError(f"{path} does not exist")
    decoded, problems = decode_str(path.read_text())
    if decoded is None or problems:
        detail = "; ".join(str(problem.message) for problem in problems)
        raise TemplateError(
            f"{path} is not a readable template" + (f": {detail}" if detail else "")
        )
    template: dict[str, Any] = json.loads(json.dumps(decoded))
    return template
