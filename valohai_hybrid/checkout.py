"""The repository checkout the maintainer tools work on (README, cfn/, the benchmarks, the tests):
its root, named once. Installed from a checkout (`make install`), this is that checkout."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CFN = ROOT / "cfn"
DOCS = ROOT / "docs"
README = ROOT / "README.md"
