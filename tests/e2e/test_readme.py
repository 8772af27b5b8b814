"""The README tried as a new user would: every command in its code blocks runs as written.

Blocks are run in order, in one shell, in a copy of the repository (its files as they are now)
that has been installed (`.venv`, `.tools` and the sam build are the checkout's). A block that
needs real AWS credentials, or that another test runs (`make demo`, `make test`), carries a
`<!-- readme-test: skip, REASON -->` line before it: its `valohai-hybrid` commands are still
parsed by the command's own argument parser, and its `make` targets must exist.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.cost import model, render_readme
from tests.support.cli import COMMAND
from valohai_hybrid.checkout import ROOT
from valohai_hybrid.cli import build_parser

_BLOCK = re.compile(
    r"(?:<!-- readme-test: skip, (?P<reason>[^>]+?) -->\n)?"
    r"```(?P<language>[a-z]*)\n(?P<body>.*?)```",
    re.DOTALL,
)
#: What an installed checkout has that git does not track.
INSTALLED = (".venv", ".tools", ".aws-sam")


@dataclass(frozen=True)
class Block:
    language: str
    commands: list[str]
    skip: str | None


def blocks() -> list[Block]:
    found = []
    for match in _BLOCK.finditer((ROOT / "README.md").read_text()):
        joined = match["body"].replace("\\\n", " ")
        commands = [
            line.split(" #", 1)[0].strip()
            for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        found.append(Block(match["language"], commands, match["reason"]))
    return found


def test_every_code_block_is_a_shell_block_or_the_generated_picture() -> None:
    assert {b.language for b in blocks()} == {"bash", "mermaid"}


def test_skipped_commands_are_still_what_the_tools_accept() -> None:
    skipped = [c for b in blocks() if b.language == "bash" and b.skip for c in b.commands]
    assert skipped
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    parser = build_parser()
    for command in skipped:
        words = shlex.split(command)
        if words[0] == "make":
            assert set(w for w in words[1:] if "=" not in w) <= targets, command
        else:
            assert words[0] == ".venv/bin/valohai-hybrid", command
            parser.parse_args(words[1:])  # SystemExit (usage error) fails the test


@pytest.fixture
def installed_copy(tmp_path: Path) -> Path:
    """The repository's files as a fresh clone has them, after `make install tools`."""
    copy = tmp_path / "valohai-hybrid-aws"
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    for name in INSTALLED:
        (copy / name).symlink_to(ROOT / name)
    return copy


@pytest.mark.localaws  # the commands start the local AWS
def test_the_commands_run_as_written(installed_copy: Path) -> None:
    runnable = [c for b in blocks() if b.language == "bash" and not b.skip for c in b.commands]
    assert runnable
    # A new user's shell: no AWS settings of the test session.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    script = "\n".join(["set -euo pipefail", *runnable])
    try:
        completed = subprocess.run(
            ["bash", "-c", script],
            cwd=installed_copy,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        subprocess.run(
            [COMMAND, "local-aws", "stop", "--state-dir", str(installed_copy / ".localaws")],
            capture_output=True,
            check=False,
        )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Launching Valohai Hybrid IAM as valohai-iam: succeeded" in completed.stdout
    assert "local AWS stopped" in completed.stdout


def test_the_cost_table_is_what_the_cost_model_says() -> None:
    readme = (ROOT / "README.md").read_text()
    assert render_readme(readme, model()) == readme, "run `python -m bench.cost --readme`"


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize(
    "document", ["README.md", "docs/cli.md", "docs/security.md"], ids=lambda d: d
)
def test_links_lead_somewhere(document: str) -> None:
    path = ROOT / document
    text = path.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{document}: {target} does not exist"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.MULTILINE)
            assert anchor in {_slug(h) for h in headings}, f"{document}: no heading #{anchor}"
