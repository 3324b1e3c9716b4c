"""A server of the SDK tests' own (its own database, compute off): the client speaks to it over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sailplane.config import Settings
from tests.runs.live import fresh_database
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
