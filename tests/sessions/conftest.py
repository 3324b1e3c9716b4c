"""A Sailplane server with compute for session tests: real Sail processes, the real gateway, a fast
controller tick so lifecycle timeouts can be tested in seconds. It shares the test database with
the main server; its own data directory makes it a separate compute node (neither touches the
other's instances). At the end no Sail process may be left running."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from sailplane.compute.local import LocalSailBackend
from sailplane.config import Settings
from tests.conftest import Mailbox, make_settings
from tests.support.server import LiveServer

CONTROLLER_INTERVAL = 0.1


def compute_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"controller_interval_seconds": CONTROLLER_INTERVAL,
                                 "compute_start_timeout_seconds": 60.0}
    values.update(overrides)
    return make_settings(data_dir, database_url, None, **values)


def assert_no_sail_left(data_dir: Path) -> None:
    backend = LocalSailBackend(data_dir)
    leftovers = backend.scan()
    asyncio.run(backend.stop_orphans(()))  # clean up even when a test failed half-way
    assert leftovers == [], f"Sail processes left running: {leftovers}"


@pytest.fixture(scope="package")
def compute_server(tmp_path_factory: pytest.TempPathFactory, database_url: str,
                   smtp: tuple[Mailbox, int]) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("compute-node")
    live = LiveServer(compute_settings(data_dir, database_url))
    live.start()
    try:
        yield live
    finally:
        live.stop()
        assert_no_sail_left(data_dir)


@pytest.fixture(scope="package")
def compute_api(compute_server: LiveServer) -> str:
    return f"{compute_server.url}/api/v1"
