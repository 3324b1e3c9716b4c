"""Console tests: the serving rules against the app itself, and the browser tests against compute nodes (the
sessions' one: real Sail servers and gateway, so the copied PySpark snippet really connects; the runs' one, on a
database of its own, so only it executes the jobs created in the page). The browser is Debian's Chromium driven by
Playwright; screenshots go to test-artifacts/console-<database>/ (gitignored) for people to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api

from sailplane.console import DEFAULT_DIR
from tests.runs.conftest import runs_api, runs_database, runs_server
from tests.sessions.conftest import compute_api, compute_server

__all__ = ["compute_api", "compute_server", "runs_api", "runs_database", "runs_server", "browser", "artifacts"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium (installed by `scripts/bootstrap.sh dev`): missing, the test fails rather than skips."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is not installed (scripts/bootstrap.sh dev)"
    assert (DEFAULT_DIR / "index.html").is_file(), "the console is not built (scripts/build_console.sh)"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def artifacts(database_url: str) -> Path:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    directory = Path(os.environ.get("SAILPLANE_TEST_ARTIFACTS", REPO / "test-artifacts")) / f"console-{backend}"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
