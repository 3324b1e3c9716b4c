"""A Sailplane server for run tests: compute enabled, fast dispatcher loops, a database of its own
(see tests/runs/live.py). At the end no Sail server and no run process of its node may be left."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runs.live import assert_nothing_left, runner_settings
from tests.support.databases import fresh_database
from tests.support.server import LiveServer


@pytest.fixture(scope="package")
def runs_database(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> str:
    return fresh_database(database_url, tmp_path_factory.mktemp("runs-db"))


@pytest.fixture(scope="package")
def runs_server(tmp_path_factory: pytest.TempPathFactory, runs_database: str) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("runs-node")
    live = LiveServer(runner_settings(data_dir, runs_database))
    live.start()
    try:
        yield live
    finally:
        live.stop()
        assert_nothing_left(data_dir)


@pytest.fixture(scope="package")
def runs_api(runs_server: LiveServer) -> str:
    return f"{runs_server.url}/api/v1"


@pytest.fixture(scope="package")
def runs_data_dir(runs_server: LiveServer) -> Path:
    return runs_server.settings.data_dir
