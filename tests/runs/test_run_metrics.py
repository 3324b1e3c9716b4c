"""The scheduler's lag in /metrics: a job whose slot passed a few seconds ago gets its run, and the histogram
holds that run's lag (slot → created), at least as long as the slot is old."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.workloads.jobs.models import Job
from sailplane.workloads.runs.models import JobRun
from tests.runs.live import make_job, wait_until
from tests.support.actors import signup
from tests.support.metrics import scrape, value
from tests.support.server import LiveServer
from tests.support.world import create_team

LATE = 3.0


def test_a_late_slot_shows_in_the_scheduler_lag(runs_server: LiveServer, runs_database: str) -> None:
    owner = signup(f"{runs_server.url}/api/v1")
    team = create_team(owner, "Lag")
    job = make_job(owner, team, {"sql": {"source": "SELECT 1"}}, cronExpression="0 0 1 1 *", cronTimezone="UTC")
    before = scrape(runs_server.url)
    db = Database(runs_database)
    try:
        with db.session() as s:
            s.execute(update(Job).where(Job.id == job["id"]).values(next_run_at=utcnow() - timedelta(seconds=LATE)))
            s.commit()

        def created() -> bool:
            with db.session() as s:
                return s.scalar(select(JobRun.id).where(JobRun.job_id == job["id"])) is not None

        wait_until(created, timeout=30)
    finally:
        db.dispose()
    after = wait_until(lambda: (lambda got: got if value(got, "sailplane_scheduler_lag_seconds_count")
                                > value(before, "sailplane_scheduler_lag_seconds_count") else None)(
        scrape(runs_server.url)), timeout=10)
    assert value(after, "sailplane_scheduler_lag_seconds_count") - \
        value(before, "sailplane_scheduler_lag_seconds_count") == 1
    lag = value(after, "sailplane_scheduler_lag_seconds_sum") - value(before, "sailplane_scheduler_lag_seconds_sum")
    assert LATE <= lag < LATE + 30
