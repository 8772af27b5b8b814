"""template.yaml as CloudFormation deploys it: the SAM transform applied offline.

The roles, permissions, rules and event source mappings SAM generates exist only after the
transform, so scanners that read resources (checkov) must see the translated template too.
`python -m valohai_hybrid.local.sam_translation OUTPUT` writes it for `make lint`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from localaws.sam_transform import transform
from samtranslator.yaml_helper import yaml_parse

#: Stands in for the functions' code, which sam deploy uploads and the transform only names.
UPLOADED_CODE = "s3://artifacts/sam/functions.zip"
SAMPLE_PARAMETERS = {"ArtifactsBucket": "artifacts", "Releases": "1.0.0"}


def translated(
    template: Path,
    parameters: dict[str, str] | None = None,
    *,
    region: str = "us-east-1",
    account_id: str = "123456789012",
) -> dict[str, Any]:
    """The template with the SAM transform applied, for the given parameter values."""
    source: dict[str, Any] = copy.deepcopy(yaml_parse(template.read_text()))
    source.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = UPLOADED_CODE
    for resource in source["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.get("Properties", {}).pop("CodeUri", None)
    values = {**SAMPLE_PARAMETERS, **(parameters or {})}
    return transform(source, values, account_id=account_id, region=region)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m valohai_hybrid.local.sam_translation",
        description="Write template.yaml with the SAM transform applied (for scanners).",
    )
    parser.add_argument("output", type=Path, help="where to write the translated template")
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    args = parser.parse_args(argv)
    try:
        document = translated(args.template)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
