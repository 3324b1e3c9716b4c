"""A run created, released or cancelled through the API is acted on at once, not at the dispatcher's next poll.

The dispatcher here polls once a minute, so only the API's wake-up can make it look sooner. The wake-up must
come after the request commits: before, the dispatcher looked, found nothing committed yet and slept for the
poll interval (createJobRun → running took the whole interval, 0.5 s by default, instead of tens of ms)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runs.live import (
    assert_nothing_left,
    create_run,
    describe,
    python_job,
    runner_settings,
    sql_job,
    wait_for,
)
from tests.support.actors import signup
from tests.support.databases import fresh_database
from tests.support.server import LiveServer
from tests.support.world import create_team

SLOW_POLL = "60"


@pytest.fixture
def slow_poll_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    data_dir = tmp_path / "node"
    live = LiveServer(runner_settings(data_dir, fresh_database(database_url, tmp_path),
                                     runs_poll_interval=SLOW_POLL))
    live.start()
    try:
        yield live
    finally:
        live.stop()
        assert_nothing_left(data_dir)


def test_created_released_and_cancelled_runs_are_acted_on_at_once(slow_poll_server: LiveServer) -> None:
    owner = signup(f"{slow_poll_server.url}/api/v1")
    team = create_team(owner, "Wake")
    time.sleep(1)  # past the dispatcher's first look at start-up: from here on only a wake-up is sooner than 60 s

    job = sql_job(owner, team, "SELECT 1 AS one")
    run = create_run(owner, job["id"])
    wait_for(owner, job["id"], run["id"], "succeeded", timeout=30)

    held = create_run(owner, job["id"], hold=True)
    assert describe(owner, job["id"], held["id"])["status"] == "pending"
    assert owner.post(f"/workloads/jobs/{job['id']}/runs/{held['id']}/ready").status_code == 200
    wait_for(owner, job["id"], held["id"], "succeeded", timeout=30)

    sleeper = python_job(owner, team, "import time\ntime.sleep(120)\n")
    long_run = create_run(owner, sleeper["id"])
    wait_for(owner, sleeper["id"], long_run["id"], "running", timeout=30)
    assert owner.post(f"/workloads/jobs/{sleeper['id']}/runs/{long_run['id']}/cancel").status_code == 200
    started = time.monotonic()
    wait_for(owner, sleeper["id"], long_run["id"], "cancelled", timeout=30)
    assert time.monotonic() - started < 30
