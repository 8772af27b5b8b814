"""How `make test` spreads the suite over CPUs (pytest-xdist, `--dist loadgroup`).

Tests that share a package-scoped fixture (a published platform, a launched product) run on one
worker, or each worker would set it up again; tests sharing a module- or class-scoped fixture
stay together by module; every other test goes wherever a worker is free.
"""

from __future__ import annotations

import pytest


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
