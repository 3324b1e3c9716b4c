"""Servers of the SDK and CLI tests (each its own database): `sdk_server` with compute off, `compute_server` running
jobs and sessions. The client speaks to them over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sailplane.config import Settings
from tests.runs.live import assert_nothing_left, runner_settings
from tests.support.databases import fresh_database
from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def sdk_server(settings: Settings, database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[LiveServer]:
    tmp: Path = tmp_path_factory.mktemp("sdk")
    live = LiveServer(replace(settings, database_url=fresh_database(database_url, tmp), data_dir=tmp / "data",
                              compute_enabled=False, operations_enabled=False))
    live.start()
    try:
        yield live
    finally:
        live.stop()
@pytest.fixture(scope="module")
def compute_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("cli-node")
    live = LiveServer(runner_settings(data_dir, fresh_database(database_url, data_dir.parent)))
    live.start()
    try:
        yield live
    finally:
        live.stop()
        assert_nothing_left(data_dir)
