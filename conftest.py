"""How `make test` spreads the suite over CPUs (pytest-xdist, `--dist loadgroup`).

Tests that share a package-scoped fixture (a published platform, a launched product) run on one
worker, or each worker would set it up again; all others are kept together by module, so that
module-scoped fixtures are set up once.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        shares_package = fixtures is not None and any(
            definition.scope == "package"
            for definitions in fixtures.name2fixturedefs.values()
            for definition in definitions
        )
        group = item.path.parent if shares_package else item.path
        item.add_marker(pytest.mark.xdist_group(str(group)))
