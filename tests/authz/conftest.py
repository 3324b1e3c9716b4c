"""Fixtures of the authorization matrices: the populated organization on the shared test server, and a
compute node for the workload routes (sessions start real Sail servers; job runs get dispatched)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from sailplane.compute.local import LocalSailBackend
from tests.conftest import make_settings
from tests.support.databases import fresh_database
from tests.support.server import LiveServer
from tests.support.world import World, build_world


@pytest.fixture(scope="package")
def core_world(api_url: str) -> World:
    """Shared by the matrices whose routes need no compute; they create their targets in it."""
    return build_world(api_url)


@pytest.fixture(scope="module")
def compute_node(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[LiveServer]:
    """A server with compute on a database of its own: only this node dispatches the matrix's job runs,
    no Sail server is kept warm for runs, and a fast controller releases closed sessions' instances at
    once. At the end no Sail process of this node may be left."""
    data_dir = tmp_path_factory.mktemp("authz-node")
    settings = make_settings(data_dir, fresh_database(database_url, tmp_path_factory.mktemp("authz-db")), None,
                             controller_interval_seconds=0.1, compute_start_timeout_seconds=60.0,
                             extra={"runs_pool_size": "0", "runs_poll_interval": "0.2", "runs_stop_grace": "2"})
    live = LiveServer(settings)
    live.start()
    try:
        yield live
    finally:
        live.stop()
        backend = LocalSailBackend(data_dir)
        leftovers = backend.scan()
        asyncio.run(backend.stop_orphans(()))
        assert leftovers == [], f"Sail processes left running: {leftovers}"
