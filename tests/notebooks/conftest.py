"""Notebook tests use the main test server; the runtime tests (start/stop: real Sail sessions, real marimo
servers) also use a compute node: the sessions' one (default notebook timeouts) and one of their own with
short detach/idle thresholds. At the end no marimo server (nor Sail server) may be left running."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from sailplane.compute.local_notebooks import LocalNotebookBackend
from tests.conftest import Mailbox
from tests.sessions.conftest import assert_no_sail_left, compute_api, compute_server, compute_settings
from tests.support.server import LiveServer

__all__ = ["compute_api", "compute_server", "timeouts_server", "assert_no_marimo_left"]

DETACH_GRACE = 1.0
IDLE_AFTER = 1.0


def assert_no_marimo_left(data_dir: Path) -> None:
    backend = LocalNotebookBackend(data_dir)
    leftovers = backend.scan()
    asyncio.run(backend.stop_orphans(()))  # clean up even when a test failed half-way
    assert leftovers == [], f"marimo servers left running: {leftovers}"


@pytest.fixture(scope="package")
def timeouts_server(tmp_path_factory: pytest.TempPathFactory, database_url: str,
                    smtp: tuple[Mailbox, int]) -> Iterator[LiveServer]:
    """A compute node whose notebooks detach after 1 s without a browser and idle after 1 s without activity."""
    data_dir = tmp_path_factory.mktemp("notebook-timeouts-node")
    live = LiveServer(compute_settings(data_dir, database_url, notebook_controller_interval_seconds=0.2,
                                       notebook_detach_grace_seconds=DETACH_GRACE,
                                       notebook_idle_after_seconds=IDLE_AFTER))
    live.start()
    try:
        yield live
    finally:
        live.stop()
        assert_no_marimo_left(data_dir)
        assert_no_sail_left(data_dir)
