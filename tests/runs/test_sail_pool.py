"""The warm pool of Sail servers for runs: the first run of new settings takes the server the pool is
starting for them instead of starting a second one of its own beside it.

The dispatcher runs here on a real local backend (real Sail servers) that also notes when each start
begins and ends; the job and its run are created through the API of a server without compute on the
same database, so this dispatcher is the only one that executes it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sailplane.compute.backend import InstanceHandle, InstanceSpec
from sailplane.compute.local import LocalSailBackend
from sailplane.compute.registry import LOCAL_CLUSTER_ID, NodeBackends
from sailplane.kit.db import Database
from sailplane.workloads.runs.dispatcher import RunDispatcher, RunnerConfig
from sailplane.workloads.runs.models import JobRun
from tests.conftest import make_settings
from tests.data.helpers import build_org
from tests.runs.live import create_run, describe, sql_job
from tests.support.databases import fresh_database
from tests.support.server import LiveServer


class NotingBackend(LocalSailBackend):
    """The local backend, noting (instance id, started at, ready at) for every start."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.starts: list[tuple[str, float, float | None]] = []

    async def start(self, spec: InstanceSpec, *, timeout: float = 60.0) -> InstanceHandle:
        begun = time.monotonic()
        index = len(self.starts)
        self.starts.append((spec.instance_id, begun, None))
        handle = await super().start(spec, timeout=timeout)
        self.starts[index] = (spec.instance_id, begun, time.monotonic())
        return handle


@pytest.fixture
def api_without_compute(tmp_path: Path, database_url: str) -> Iterator[tuple[str, str]]:
    database = fresh_database(database_url, tmp_path)
    live = LiveServer(make_settings(tmp_path / "api", database, None, compute_enabled=False))
    live.start()
    try:
        yield f"{live.url}/api/v1", database
    finally:
        live.stop()


def test_the_first_run_of_new_settings_starts_one_sail_server(tmp_path: Path,
                                                               api_without_compute: tuple[str, str]) -> None:
    api, database = api_without_compute
    org = build_org(api)
    job = sql_job(org.dev1, org.team1, "SELECT 42 AS answer")
    run = create_run(org.dev1, job["id"])
    backend = NotingBackend(tmp_path / "node")
    db = Database(database)
    config = RunnerConfig(poll_interval=0.1, pool_size=1, lease_seconds=5, renew_interval=0.5, stop_grace=2)
    dispatcher = RunDispatcher(db, NodeBackends(None, {LOCAL_CLUSTER_ID: backend}), data_dir=tmp_path / "node",
                               node="pool-test", secret_key="k" * 32, config=config)

    async def execute() -> dict[str, Any]:
        await dispatcher.start()
        try:
            deadline = time.monotonic() + 90
            while True:
                done = await asyncio.to_thread(describe, org.dev1, job["id"], run["id"])
                if done["status"] in ("succeeded", "failed", "timeout", "cancelled") and done["cleanedAt"]:
                    return done
                assert time.monotonic() < deadline, done
                await asyncio.sleep(0.1)
        finally:
            await dispatcher.stop()

    try:
        done = asyncio.run(execute())
        with db.session() as session:
            used = session.scalar(select(JobRun.instance_id).where(JobRun.id == run["id"]))
    finally:
        db.dispose()
        leftovers = backend.scan()
        asyncio.run(backend.stop_orphans(()))
    assert done["status"] == "succeeded", done
    assert leftovers == []
    # The run ran on the first Sail server started, and no other one started before that one was ready:
    # the pool's refill for the next run comes after.
    first_id, _, first_ready = backend.starts[0]
    assert used == first_id and first_ready is not None
    assert all(begun >= first_ready for _, begun, _ in backend.starts[1:]), backend.starts
    assert len(backend.starts) == 2, backend.starts  # the one used, and the one the pool keeps warm
