"""The job-run transitions table is enforced by the one compare-and-set every writer uses
(sailplane.workloads.runs.states.transition), on the real database: a change along an edge the table lacks
does not happen, whatever state the run is in.

A server without compute (no dispatcher, no scheduler acting on these runs) on a database of this
module's own; jobs are created through the API, runs with runs.service.create_run, and a run is
put into the state a case starts from by a plain UPDATE (test setup, as the scheduler tests do).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.workloads.jobs.models import Job, JobVersion
from sailplane.workloads.runs import states
from sailplane.workloads.runs.models import JobRun
from sailplane.workloads.runs.service import cancel_run, create_run
from sailplane.workloads.runs.states import (
    CANCELLED,
    DISPATCHED,
    FAILED,
    LEASED_STATES,
    PENDING,
    READY,
    RUN_STATES,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
)
from tests.conftest import make_settings
from tests.jobs.helpers import unique_key
from tests.support.actors import signup
from tests.support.databases import fresh_database
from tests.support.server import LiveServer
from tests.support.world import create_team


@pytest.fixture(scope="module")
def states_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = fresh_database(database_url, tmp_path_factory.mktemp("run-states-db"))
    data_dir: Path = tmp_path_factory.mktemp("run-states-data")
    live = LiveServer(make_settings(data_dir, url, None, compute_enabled=False))
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def db(states_server: LiveServer) -> Iterator[Database]:
    database = Database(states_server.settings.database_url)  # after the server: its start migrated it
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def job_id(states_server: LiveServer) -> str:
    owner = signup(f"{states_server.url}/api/v1")
    team = create_team(owner, f"run-states-{unique_key('t')}")
    r = owner.post("/workloads/jobs", json={"jobKey": unique_key("states"), "clusterId": "LOCAL",
                                            "config": {"sql": {"source": "SELECT 1"}}, "teamIds": [team]})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def run_id(db: Database, job_id: str) -> str:
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        version = s.scalar(select(JobVersion).where(JobVersion.job_id == job_id,
                                                    JobVersion.version == job.current_version))
        assert version is not None
        run = create_run(s, job, version, trigger="manual", hold=True)
        s.commit()
        return run.id


def put(db: Database, run_id: str, status: str) -> None:
    """Test setup: the run is in `status`, whoever put it there."""
    with db.session() as s:
        s.execute(update(JobRun).where(JobRun.id == run_id).values(status=status))
        s.commit()


def row(db: Database, run_id: str) -> JobRun:
    with db.session() as s:
        found = s.get(JobRun, run_id)
        assert found is not None
        return found


def move(db: Database, run_id: str, target: str, **kwargs: Any) -> int:
    with db.session() as s:
        done = states.transition(s, run_id, target, **kwargs)
        s.commit()
        return done


def test_every_pair_of_states_follows_the_table(db: Database, run_id: str) -> None:
    for source in RUN_STATES:
        for target in RUN_STATES:
            put(db, run_id, source)
            done = move(db, run_id, target)
            expected = states.allowed(source, target)
            assert done == (1 if expected else 0), f"{source} → {target}"
            assert row(db, run_id).status == (target if expected else source), f"{source} → {target}"


def test_a_succeeded_run_never_runs_again(db: Database, run_id: str) -> None:
    put(db, run_id, SUCCEEDED)
    for target in (READY, PENDING, DISPATCHED, RUNNING, FAILED, CANCELLED):
        assert move(db, run_id, target) == 0, target
    assert row(db, run_id).status == SUCCEEDED
    with db.session() as s:
        run = s.get(JobRun, run_id)
        assert run is not None
        assert cancel_run(s, run, "too late") is False
        s.commit()
    assert row(db, run_id).status == SUCCEEDED


def test_a_cancelled_run_is_not_requeued_or_finished_by_a_dispatcher(db: Database, run_id: str) -> None:
    """A dispatcher's requeue, retry and end only move runs it holds (leased states); a run a user
    cancelled meanwhile stays cancelled (only a user's retry takes it back)."""
    put(db, run_id, CANCELLED)
    values = states.attempt_reset(message="requeued")
    assert move(db, run_id, READY, source=LEASED_STATES, values=values) == 0
    assert move(db, run_id, FAILED, source=LEASED_STATES) == 0
    assert move(db, run_id, RUNNING) == 0
    assert row(db, run_id).status == CANCELLED
    assert move(db, run_id, READY, values=states.attempt_reset(message=None, next_attempt=JobRun.attempt + 1)) == 1
    assert row(db, run_id).status == READY


def test_a_source_outside_the_table_is_refused(db: Database, run_id: str) -> None:
    put(db, run_id, SUCCEEDED)
    with db.session() as s, pytest.raises(ValueError):
        states.transition(s, run_id, RUNNING, source=(SUCCEEDED,))
    assert row(db, run_id).status == SUCCEEDED


def test_extra_conditions_and_stamps(db: Database, run_id: str) -> None:
    put(db, run_id, READY)
    assert move(db, run_id, DISPATCHED, where=(JobRun.lease_owner == "someone else",)) == 0
    now = utcnow()
    assert move(db, run_id, DISPATCHED, values={"lease_owner": "me"}, now=now) == 1
    claimed = row(db, run_id)
    assert (claimed.status, claimed.lease_owner, claimed.finished_at) == (DISPATCHED, "me", None)
    assert claimed.dispatched_at is not None
    assert move(db, run_id, FAILED, source=LEASED_STATES, where=(JobRun.lease_owner == "me",)) == 1
    ended = row(db, run_id)
    assert ended.status in TERMINAL_STATES and ended.finished_at is not None
    retried = states.attempt_reset(message=None, next_attempt=JobRun.attempt + 1)
    assert move(db, run_id, PENDING, values=retried) == 1
    again = row(db, run_id)
    assert (again.status, again.attempt, again.trigger) == (PENDING, 1, states.RETRY_TRIGGER)
    assert (again.dispatched_at, again.finished_at, again.lease_owner) == (None, None, None)
