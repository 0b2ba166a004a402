"""The real-PBX suite: one Asterisk, one ``hotline serve`` and one batch of calls per session.

Where the shared Asterisk bundle or its runtime libraries are missing, every test here is
skipped with one line saying why, except in CI (``HOTLINE_PBX_REQUIRED=1``, set by
``.ci/run``), where that is a failure: the suite must run there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pbx.site import Site, running_site, unavailable
from tests.pbx.traffic import Traffic, capture_folder

REQUIRED_ENV = "HOTLINE_PBX_REQUIRED"


SKIPPED = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if "pbx" in item.keywords]
    reason = unavailable() if ours else None
    if reason is None:
        return
    if os.environ.get(REQUIRED_ENV) == "1":
        raise pytest.UsageError(f"{REQUIRED_ENV}=1 but the real-PBX suite cannot run: {reason}")
    # Deselected and said once, not one skip line per test.
    items[:] = [item for item in items if "pbx" not in item.keywords]
    config.hook.pytest_deselected(items=ours)
    config.stash[SKIPPED] = f"real-PBX suite skipped ({len(ours)} tests): {reason}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    said = terminalreporter.config.stash.get(SKIPPED, None)
    if said is not None:
        terminalreporter.write_line(said, yellow=True)


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    with running_site() as started:
        yield started


@pytest.fixture(scope="session")
def traffic(site: Site) -> Iterator[Traffic]:
    driver = site.driver()
    placed = Traffic(site, driver)
    placed.start()
    try:
        yield placed
        folder = capture_folder()
        if folder is not None:
            assert placed.all_over(), "calls still up: nothing captured"
            placed.write_captures(folder)
    finally:
        driver.close()
        placed.db.dispose()
