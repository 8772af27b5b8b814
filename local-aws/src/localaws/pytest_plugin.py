"""The local AWS for pytest, loaded through the `pytest11` entry point of this distribution.

- every test runs with fake credentials and a fixed region (`harness.isolate_environment`);
- `local_aws`: one server for the whole session, started on first use;
- every test using it is marked `localaws`, so `pytest -m "not localaws"` selects the tests
  that need no server without anyone remembering to mark them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import LocalAwsHandle, isolate_environment, running_local_aws

MARKER = "localaws"


def pytest_configure(config: pytest.Config) -> None:
    isolate_environment()
    config.addinivalue_line(
        "markers", f"{MARKER}: needs the local AWS server (applied to every test using it)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test whose fixtures (directly or through others) include `local_aws`."""
    for item in items:
        if "local_aws" in getattr(item, "fixturenames", ()):
            item.add_marker(MARKER)


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAwsHandle]:
    """One local AWS for the whole test session; tests keep apart by unique names."""
    with running_local_aws(tmp_path_factory.mktemp("localaws")) as handle:
        yield handle
