"""Helpers for the static template tests: load the product templates, walk them, and apply
CloudFormation's parameter constraints and template Rules the way CloudFormation does before it
creates anything."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

from valohai_hybrid.checkout import CFN, ROOT

REPO = ROOT
RULES_DIR = REPO / "valohai_hybrid" / "cfnlint_rules"
RULE_FIXTURES = REPO / "tests" / "templates" / "fixtures" / "cfnlint_rules"
BIN = Path(sys.executable).parent
CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"
PRODUCT_TEMPLATES = (
    "iam.yml",
    "main.yml",
    "network.yml",
    "subnet.yml",
    "s3bucket.yml",
    "worker-queue.yml",
)


def cfn_lint(*paths: Path) -> list[dict[str, Any]]:
    """cfn-lint's findings (JSON) as `make lint` runs it: informational rules on, ours added."""
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


def checkov(*paths: Path) -> dict[str, Any]:
    """checkov's results (JSON) for the given templates, as `make lint` runs it."""
    if not CHECKOV.exists():
        raise AssertionError(f"{CHECKOV} is missing: run `make tools` (the checkov environment)")
    result = subprocess.run(
        [
            str(CHECKOV),
            *(argument for path in paths for argument in ("-f", str(path))),
            *("--framework", "cloudformation", "--skip-download", "--output", "json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.stdout, result.stderr
    results: dict[str, Any] = json.loads(result.stdout)["results"]
    return results


def checkov_of(results: dict[str, Any], path: Path) -> dict[str, Any]:
    """The results of one template of a checkov run over several (checkov names each file
    relative to the directory it ran in)."""

    def here(file_path: str) -> bool:
        return (REPO / file_path.lstrip("/")).resolve() == path.resolve()

    return {
        "parsing_errors": [p for p in results["parsing_errors"] if here(p)],
        **{
            kind: [c for c in results[kind] if here(c["file_path"])]
            for kind in ("passed_checks", "failed_checks", "skipped_checks")
        },
    }


def linted_files() -> list[Path]:
    """What the tests lint: the product templates, and each of our rules' good and bad fixture.
    One cfn-lint run covers them all (it judges each file on its own)."""
    return [
        *(CFN / name for name in PRODUCT_TEMPLATES),
        *sorted(RULE_FIXTURES.glob("*/good.yml")),
        *sorted(RULE_FIXTURES.glob("*/bad.yml")),
    ]


def findings_in(findings: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """The findings of one file of a cfn-lint run over several."""
    return [f for f in findings if (REPO / f["Filename"]).resolve() == path.resolve()]


def finding_resource(finding: dict[str, Any]) -> str:
    return str(finding["Location"]["Path"][1])


def rule_fixture_findings(
    findings: list[dict[str, Any]], rule: str
) -> dict[str, set[tuple[str, str]]]:
    """(rule id, resource) pairs cfn-lint found in a rule's good.yml and bad.yml."""
    return {
        name: {
            (f["Rule"]["Id"], finding_resource(f))
            for f in findings_in(findings, RULE_FIXTURES / rule / f"{name}.yml")
        }
        for name in ("good", "bad")
    }


@cache
def load(name: str) -> dict[str, Any]:
    """A product template as CloudFormation reads it (short-form tags become Fn:: maps)."""
    template, problems = decode(str(CFN / name))
    assert not problems, f"{name} does not parse: {problems}"
    assert isinstance(template, dict)
    return template


def walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) pair below node, node itself first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def resources(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def tags(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {tag["Key"]: tag["Value"] for tag in resource["Properties"].get("Tags", [])}


def sub_text(value: Any) -> str:
    """The text of an Fn::Sub (short or list form)."""
    sub = value["Fn::Sub"]
    return sub[0] if isinstance(sub, list) else sub


def render_sub(text: str, values: Mapping[str, str]) -> str:
    """What Fn::Sub makes of text: ${Name} gets its value, ${!Name} stays as ${Name}."""

    def substitute(match: re.Match[str]) -> str:
        escaped, name = match.groups()
        return "${" + name + "}" if escaped else values[name]

    return re.sub(r"\$\{(!?)([A-Za-z0-9_:.]+)\}", substitute, text)


def queue_user_data() -> str:
    """The queue machine's boot script as the template holds it (before Fn::Sub)."""
    instance = load("worker-queue.yml")["Resources"]["QueueInstance"]
    return sub_text(instance["Properties"]["UserData"]["Fn::Base64"])


def parameter_error(definition: Mapping[str, Any], value: str) -> str | None:
    """Why CloudFormation would reject value for a parameter so defined, or None.

    CloudFormation checks these constraints before it creates anything; its AllowedPattern is a
    Java regular expression that must match the whole value.
    """
    kind = definition["Type"]
    problem = None
    if kind == "Number":
        try:
            number = Decimal(value)
        except InvalidOperation:
            return "must be a number"
        allowed = definition.get("AllowedValues")
        if allowed is not None and number not in {Decimal(str(a)) for a in allowed}:
            problem = "not an allowed value"
        elif "MinValue" in definition and number < Decimal(str(definition["MinValue"])):
            problem = "below MinValue"
        elif "MaxValue" in definition and number > Decimal(str(definition["MaxValue"])):
            problem = "above MaxValue"
    elif kind == "String":
        allowed = definition.get("AllowedValues")
        pattern = definition.get("AllowedPattern")
        if allowed is not None and value not in [str(a) for a in allowed]:
            problem = "not an allowed value"
        elif len(value) < int(definition.get("MinLength", 0)):
            problem = "shorter than MinLength"
        elif len(value) > int(definition.get("MaxLength", sys.maxsize)):
            problem = "longer than MaxLength"
        elif pattern is not None and re.fullmatch(pattern, value) is None:
            problem = "does not match AllowedPattern"
    else:
        raise AssertionError(f"no constraint emulation for parameter type {kind}")
    if problem is None:
        return None
    return f"{problem}: {definition.get('ConstraintDescription', '(no ConstraintDescription)')}"


def failed_rule_assertions(template: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """AssertDescriptions of the template's Rules that the parameter values violate."""
    failures = []
    for rule in template.get("Rules", {}).values():
        condition = rule.get("RuleCondition")
        if condition is not None and not _evaluate(condition, template, values):
            continue
        failures.extend(
            assertion["AssertDescription"]
            for assertion in rule["Assertions"]
            if not _evaluate(assertion["Assert"], template, values)
        )
    return failures


def _evaluate(node: Any, template: Mapping[str, Any], values: Mapping[str, str]) -> Any:
    if not isinstance(node, dict):
        return node
    ((function, argument),) = node.items()
    if function == "Ref":
        return values.get(argument, template["Parameters"][argument].get("Default"))
    arguments = [_evaluate(a, template, values) for a in argument]
    if function == "Fn::Equals":
        return str(arguments[0]) == str(arguments[1])
    if function == "Fn::Not":
        return not arguments[0]
    if function == "Fn::And":
        return all(arguments)
    if function == "Fn::Or":
        return any(arguments)
    raise AssertionError(f"{function} in Rules is not emulated here")
