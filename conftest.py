"""How `make test` spreads the suite over CPUs (pytest-xdist, `--dist loadgroup`).

Tests that share a package-scoped fixture (a published platform, a launched product) run on one
worker, or each worker would set it up again; tests sharing a module- or class-scoped fixture
stay together by module; every other test goes wherever a worker is free.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest


@pytest.hookimpl(tryfirst=True)  # the groups must be there before xdist's own hook reads them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return  # `-p no:xdist`: nothing to spread, and no `xdist_group` marker to add
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        scopes = {
            definition.scope
            for definitions in (fixtures.name2fixturedefs.values() if fixtures else ())
            for definition in definitions
        }
        if "package" in scopes:
            item.add_marker(pytest.mark.xdist_group(str(item.path.parent)))
        elif scopes & {"module", "class"}:
            item.add_marker(pytest.mark.xdist_group(str(item.path)))


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to spread tests when xdist would silently ignore the groups (every worker would
    set up each shared platform again): pytest-xdist 3.8 marks a test's group in its id, which
    pytest 9.2 no longer lets it change (pytest-xdist issue 1386)."""
    if config.getoption("dist", "no") != "loadgroup":
        return
    if _version("pytest") >= (9, 2) and _version("pytest-xdist") <= (3, 8):
        raise pytest.UsageError(
            "pytest-xdist's --dist loadgroup does not group tests under pytest 9.2 or later: "
            "run `make install` (pyproject.toml pins pytest below 9.2)"
        )


def _version(distribution: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version(distribution).split(".")[:2] if part.isdigit())
