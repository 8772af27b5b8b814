"""The console command installed without the `local` extra: everything but demo, local-aws and
standin works, and those three say what to install.

Each case runs in a fresh interpreter where the test bench cannot be imported (as after
`pip install .`): moto, the local AWS, werkzeug, trustme and pytest are blocked.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import valohai_hybrid

BLOCKED = ("localaws", "moto", "werkzeug", "trustme", "pytest", "_pytest")
PRELUDE = f"import sys\nfor name in {BLOCKED!r}:\n    sys.modules[name] = None\n"


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console(*args: str) -> subprocess.CompletedProcess[str]:
    return _run("from valohai_hybrid.cli import main\nsys.exit(main(sys.argv[1:]))", *args)


@pytest.mark.parametrize("command", [["demo"], ["local-aws", "status"], ["standin", "--help"]])
def test_local_subcommands_name_what_to_install(command: list[str]) -> None:
    done = _console(*command)
    assert done.returncode == 2, done.stderr
    assert "needs the local AWS" in done.stderr
    assert "pip install ./local-aws '.[local]'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["launch", "doctor", "publish", "describe", "docs"])
def test_every_other_subcommand_runs(command: str) -> None:
    done = _console(command, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: valohai-hybrid" in done.stdout


def test_no_module_outside_the_local_subpackage_needs_the_test_bench() -> None:
    modules = [
        info.name
        for info in pkgutil.walk_packages(valohai_hybrid.__path__, "valohai_hybrid.")
        if not info.name.startswith("valohai_hybrid.local") and not info.name.endswith("__main__")
    ]
    done = _run(
        "import importlib\nfor name in sys.argv[1:]:\n    importlib.import_module(name)", *modules
    )
    assert done.returncode == 0, done.stderr
