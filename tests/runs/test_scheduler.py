"""The job scheduler with an injected clock: tick(db, now) on a real database.

Jobs are created through the HTTP API (so their validation runs) on a server of this module's own,
started without compute (no dispatcher: runs stay where the scheduler puts them) on a database of
its own (a tick acts on every due job of its database, so the session's shared one would be
disturbed). The injected times lie in 2099, far from the real clock, and the job tables are
emptied before each test. Completion of upstream runs is simulated by setting their status.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import make_url

from sailplane.kit.clock import as_utc
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from sailplane.workloads.jobs.models import Job, JobTeam, JobVersion
from sailplane.workloads.jobs.schedule import next_fire
from sailplane.workloads.runs import scheduler
from sailplane.workloads.runs.models import JobRun
from sailplane.workloads.runs.scheduler import MAX_CATCH_UP, RunningScheduler, TickReport, start_scheduler_loop
from sailplane.workloads.runs.service import create_run
from tests.conftest import make_settings
from tests.jobs.helpers import unique_key
from tests.support.actors import Actor, signup
from tests.support.server import LiveServer
from tests.support.world import create_team

T0 = datetime(2099, 1, 1, tzinfo=UTC)  # a Thursday; hourly slots from T0 + 1 h on
HOUR = timedelta(hours=1)


# --- fixtures: a server without compute on a database of this module's own -----------------------

@pytest.fixture(scope="module")
def sched_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path_factory.mktemp('scheduler-db') / 'scheduler.db'}"
        return
    import psycopg

    url = make_url(database_url)
    name = f"scheduler_{new_id().lower()}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def sched_server(sched_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("scheduler-data")
    live = LiveServer(make_settings(data_dir, sched_url, None, compute_enabled=False))
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def db(sched_url: str, sched_server: LiveServer) -> Iterator[Database]:
    database = Database(sched_url)  # after the server: its start applied the migrations
    try:
        yield database
    finally:
        database.dispose()


@dataclass
class Org:
    owner: Actor
    team: str


@pytest.fixture(scope="module")
def org(sched_server: LiveServer) -> Org:
    owner = signup(f"{sched_server.url}/api/v1")
    return Org(owner, create_team(owner, f"schedulers-{new_id()}"))


@pytest.fixture(autouse=True)
def _no_jobs_left(db: Database) -> None:
    """Every test starts without jobs, so a tick only sees the jobs of the test."""
    with db.session() as s:
        for table in (JobRun, JobTeam, JobVersion, Job):
            s.execute(delete(table))
        s.commit()


# --- helpers ---------------------------------------------------------------------------------------

def make_job(db: Database, org: Org, cron: str | None = "0 * * * *", tz: str | None = "UTC", *,
             first: datetime | None = T0 + HOUR, **fields: Any) -> dict[str, Any]:
    """A SQL job through the API; `first` (when given) becomes its next_run_at: the oldest slot not
    handled yet, as if the scheduler had run until just before it."""
    body = {"jobKey": unique_key("sched"), "clusterId": "LOCAL", "config": {"sql": {"source": "SELECT 1"}},
            "teamIds": [org.team], "cronExpression": cron, "cronTimezone": tz, **fields}
    r = org.owner.post("/workloads/jobs", json=body)
    assert r.status_code == 201, r.text
    job: dict[str, Any] = r.json()
    if first is not None:
        set_next(db, job["id"], first)
    return job


def set_next(db: Database, job_id: str, when: datetime | None) -> None:
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(next_run_at=when))
        s.commit()


def job_row(db: Database, job_id: str) -> Job:
    with db.session() as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found


def runs_of(db: Database, job_id: str) -> list[JobRun]:
    with db.session() as s:
        return list(s.scalars(select(JobRun).where(JobRun.job_id == job_id).order_by(JobRun.id)))


def slot(run: JobRun) -> datetime | None:
    return as_utc(run.scheduled_for) if run.scheduled_for is not None else None


def slots_of(db: Database, job_id: str) -> list[datetime]:
    return [as_utc(r.scheduled_for) for r in runs_of(db, job_id) if r.scheduled_for is not None]


def set_status(db: Database, run_id: str, status: str) -> None:
    with db.session() as s:
        s.execute(update(JobRun).where(JobRun.id == run_id).values(status=status))
        s.commit()


def finish_all(db: Database) -> None:
    """Every run still waiting in ready has run and succeeded (no dispatcher here)."""
    with db.session() as s:
        s.execute(update(JobRun).where(JobRun.status == "ready").values(status="succeeded"))
        s.commit()


def add_manual_run(db: Database, job_id: str, *, hold: bool) -> str:
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        version = s.scalar(select(JobVersion).where(JobVersion.job_id == job_id,
                                                    JobVersion.version == job.current_version))
        assert version is not None
        run = create_run(s, job, version, trigger="manual", hold=hold)
        s.commit()
        return run.id


def tick(db: Database, now: datetime) -> TickReport:
    report = scheduler.tick(db, now)
    assert report.errors == 0, report
    return report


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- DST ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("season", ["spring", "fall"])
def test_daily_new_york_across_dst(db: Database, org: Org, season: str) -> None:
    """02:30 and 01:30 America/New_York, ticked every 10 minutes over five days around a DST change:
    exactly one run a day each, at the right UTC instants (02:30 does not exist on 8 March and runs
    at 03:30 EDT; 01:30 happens twice on 1 November and runs at its first occurrence)."""
    start = utc("2099-03-06T00:00") if season == "spring" else utc("2099-10-30T00:00")
    jobs = {cron: make_job(db, org, cron, "America/New_York", first=next_fire(cron, "America/New_York", start))
            for cron in ("30 2 * * *", "30 1 * * *")}
    now = start
    while now <= start + timedelta(days=5):
        tick(db, now)
        finish_all(db)
        now += timedelta(minutes=10)
    got = {cron: slots_of(db, job["id"]) for cron, job in jobs.items()}
    if season == "spring":  # EST (UTC-5) until 8 March 02:00, then EDT (UTC-4)
        assert got["30 2 * * *"] == [utc("2099-03-06T07:30"), utc("2099-03-07T07:30"), utc("2099-03-08T07:30"),
                                     utc("2099-03-09T06:30"), utc("2099-03-10T06:30")]
        assert got["30 1 * * *"] == [utc("2099-03-06T06:30"), utc("2099-03-07T06:30"), utc("2099-03-08T06:30"),
                                     utc("2099-03-09T05:30"), utc("2099-03-10T05:30")]
    else:  # EDT until 1 November 02:00, then EST
        assert got["30 2 * * *"] == [utc("2099-10-30T06:30"), utc("2099-10-31T06:30"), utc("2099-11-01T07:30"),
                                     utc("2099-11-02T07:30"), utc("2099-11-03T07:30")]
        assert got["30 1 * * *"] == [utc("2099-10-30T05:30"), utc("2099-10-31T05:30"), utc("2099-11-01T05:30"),
                                     utc("2099-11-02T06:30"), utc("2099-11-03T06:30")]
    for cron, job in jobs.items():
        runs = runs_of(db, job["id"])
        assert {(r.trigger, r.job_version) for r in runs} == {("schedule", 1)}
        row = job_row(db, job["id"])
        assert row.last_scheduled_at == got[cron][-1]
        assert row.next_run_at == next_fire(cron, "America/New_York", now - timedelta(minutes=10))
        assert row.latest_run_id == runs[-1].id
    # The API shows the scheduler's bookkeeping.
    shown = org.owner.get(f"/workloads/jobs/{jobs['30 2 * * *']['id']}").json()
    assert shown["included"]["jobs"][0]["lastScheduledAt"] == got["30 2 * * *"][-1].strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert shown["item"]["latestJobRunId"] == runs_of(db, jobs["30 2 * * *"]["id"])[-1].id


# --- missed schedules --------------------------------------------------------------------------------

def test_missed_schedule_policies_after_downtime(db: Database, org: Org) -> None:
    """An hourly job whose scheduler was down from 00:30 to 05:30: slots 01:00 … 05:00 were missed."""
    latest = make_job(db, org, missedSchedulePolicy="latest")
    skip = make_job(db, org, missedSchedulePolicy="skip")
    every = make_job(db, org, missedSchedulePolicy="all")
    now = T0 + timedelta(hours=5, minutes=30)
    report = tick(db, now)
    assert slots_of(db, latest["id"]) == [T0 + 5 * HOUR]
    assert slots_of(db, skip["id"]) == []
    assert slots_of(db, every["id"]) == [T0 + h * HOUR for h in range(1, 6)]
    assert {r.status for r in runs_of(db, every["id"])} == {"ready"}
    assert (report.jobs_due, report.jobs_scheduled, len(report.runs_created)) == (3, 3, 6)
    assert 0 < report.slots_dropped <= 4 + 5  # counted exactly only when cheap (a lower bound otherwise)
    for job in (latest, skip, every):
        assert job_row(db, job["id"]).next_run_at == T0 + 6 * HOUR
    assert job_row(db, latest["id"]).last_scheduled_at == T0 + 5 * HOUR
    assert job_row(db, skip["id"]).last_scheduled_at is None  # nothing was scheduled
    assert job_row(db, every["id"]).last_scheduled_at == T0 + 5 * HOUR

    # Back to normal: the next slot runs under every policy, once, even when the tick is a little late.
    finish_all(db)
    tick(db, T0 + 6 * HOUR + timedelta(seconds=20))
    tick(db, T0 + 6 * HOUR + timedelta(seconds=21))
    assert slots_of(db, latest["id"])[-1] == slots_of(db, skip["id"])[-1] == slots_of(db, every["id"])[-1]
    assert slots_of(db, skip["id"]) == [T0 + 6 * HOUR]
    assert len(slots_of(db, every["id"])) == 6


def test_skip_runs_a_slot_that_is_due_now(db: Database, org: Org) -> None:
    """skip drops the missed slots but keeps one that is on time (within the grace)."""
    skip = make_job(db, org, missedSchedulePolicy="skip", concurrencyPolicy="queue")
    tick(db, T0 + 5 * HOUR + timedelta(seconds=30))
    assert slots_of(db, skip["id"]) == [T0 + 5 * HOUR]
    single_late = make_job(db, org, missedSchedulePolicy="skip", first=T0 + 7 * HOUR)
    tick(db, T0 + 7 * HOUR + timedelta(minutes=10))  # one slot, but missed (10 minutes late)
    assert slots_of(db, single_late["id"]) == []
    assert job_row(db, single_late["id"]).next_run_at == T0 + 8 * HOUR


def test_all_is_capped(db: Database, org: Org) -> None:
    """Every minute, down for five hours: `all` creates the newest MAX_CATCH_UP slots only."""
    job = make_job(db, org, "* * * * *", missedSchedulePolicy="all", first=T0 + timedelta(minutes=1))
    now = T0 + 5 * HOUR
    report = tick(db, now)
    slots = slots_of(db, job["id"])
    assert len(slots) == MAX_CATCH_UP == len(report.runs_created)
    assert slots == [now - timedelta(minutes=m) for m in range(MAX_CATCH_UP - 1, -1, -1)]
    assert 0 < report.slots_dropped <= 300 - MAX_CATCH_UP
    assert job_row(db, job["id"]).next_run_at == now + timedelta(minutes=1)


# --- concurrency policies ----------------------------------------------------------------------------

def test_concurrency_policies_when_the_previous_run_is_active(db: Database, org: Org) -> None:
    jobs = {policy: make_job(db, org, concurrencyPolicy=policy) for policy in ("skip", "queue", "replace")}
    tick(db, T0 + HOUR)
    first = {p: runs_of(db, j["id"]) for p, j in jobs.items()}
    assert all(len(runs) == 1 and runs[0].status == "ready" for runs in first.values())
    set_status(db, first["skip"][0].id, "running")
    set_status(db, first["queue"][0].id, "running")
    # replace's run stays ready: a ready (not yet dispatched) run counts as active too

    report = tick(db, T0 + 2 * HOUR)
    assert report.slots_skipped == 1 and report.runs_replaced == 1
    assert slots_of(db, jobs["skip"]["id"]) == [T0 + HOUR]
    assert [(r.status, slot(r)) for r in runs_of(db, jobs["queue"]["id"])] == [
        ("running", T0 + HOUR), ("ready", T0 + 2 * HOUR)]
    replaced = runs_of(db, jobs["replace"]["id"])
    assert [(r.status, slot(r)) for r in replaced] == [("cancelled", T0 + HOUR),
                                                                      ("ready", T0 + 2 * HOUR)]
    assert replaced[0].status_message is not None and "replace" in replaced[0].status_message
    assert replaced[0].finished_at is not None
    for job in jobs.values():  # skipped or not, the schedule moves on
        assert job_row(db, job["id"]).next_run_at == T0 + 3 * HOUR
    assert job_row(db, jobs["skip"]["id"]).last_scheduled_at == T0 + HOUR

    # Once the previous run has finished, skip schedules again.
    set_status(db, first["skip"][0].id, "succeeded")
    tick(db, T0 + 3 * HOUR)
    assert slots_of(db, jobs["skip"]["id"]) == [T0 + HOUR, T0 + 3 * HOUR]


def test_max_concurrent_runs_respected(db: Database, org: Org) -> None:
    skip = make_job(db, org, concurrencyPolicy="skip", maxConcurrentRuns=2)
    replace = make_job(db, org, concurrencyPolicy="replace", maxConcurrentRuns=2)
    for h in (1, 2, 3):
        tick(db, T0 + h * HOUR)

    def active(job_id: str) -> list[datetime]:
        return [as_utc(r.scheduled_for) for r in runs_of(db, job_id)
                if r.status not in ("succeeded", "failed", "timeout", "cancelled") and r.scheduled_for]

    assert slots_of(db, skip["id"]) == [T0 + HOUR, T0 + 2 * HOUR]  # the third found two active runs
    assert active(replace["id"]) == [T0 + 2 * HOUR, T0 + 3 * HOUR]  # the oldest was cancelled
    assert len(slots_of(db, replace["id"])) == 3
    # One finishes: skip has a place again.
    set_status(db, runs_of(db, skip["id"])[0].id, "succeeded")
    tick(db, T0 + 4 * HOUR)
    tick(db, T0 + 5 * HOUR)
    assert slots_of(db, skip["id"]) == [T0 + HOUR, T0 + 2 * HOUR, T0 + 4 * HOUR]
    assert len(active(skip["id"])) == 2 and len(active(replace["id"])) == 2


def test_held_manual_runs_are_not_counted_or_touched(db: Database, org: Org) -> None:
    job = make_job(db, org, concurrencyPolicy="replace")
    held = add_manual_run(db, job["id"], hold=True)
    tick(db, T0 + HOUR)
    tick(db, T0 + 2 * HOUR)  # replaces the 01:00 run, never the held manual one
    runs = {r.id: r for r in runs_of(db, job["id"])}
    assert runs[held].status == "pending" and runs[held].trigger == "manual"
    assert sorted((as_utc(r.scheduled_for), r.status) for r in runs.values() if r.scheduled_for) == [
        (T0 + HOUR, "cancelled"), (T0 + 2 * HOUR, "ready")]
    skip = make_job(db, org, concurrencyPolicy="skip", first=T0 + 3 * HOUR)
    add_manual_run(db, skip["id"], hold=True)
    tick(db, T0 + 3 * HOUR)
    assert slots_of(db, skip["id"]) == [T0 + 3 * HOUR]


# --- dependencies ------------------------------------------------------------------------------------

def test_depends_on_waits_then_releases_or_cancels(db: Database, org: Org) -> None:
    a = make_job(db, org)
    b = make_job(db, org, dependsOn=[{"jobKey": a["jobKey"]}])
    manual = add_manual_run(db, b["id"], hold=True)

    tick(db, T0 + HOUR)
    [a1], [b1] = runs_of(db, a["id"]), [r for r in runs_of(db, b["id"]) if r.trigger == "schedule"]
    assert (a1.status, b1.status) == ("ready", "pending")
    assert b1.status_message == f"waiting for upstream {a['jobKey']}"
    set_status(db, a1.id, "running")
    tick(db, T0 + HOUR + timedelta(seconds=5))
    assert runs_of(db, b["id"])[-1].status == "pending"
    set_status(db, a1.id, "succeeded")
    report = tick(db, T0 + HOUR + timedelta(seconds=10))
    assert report.runs_released == 1
    b1_now = next(r for r in runs_of(db, b["id"]) if r.id == b1.id)
    assert (b1_now.status, b1_now.status_message) == ("ready", None)

    # Next slot: the upstream fails, so the dependent is cancelled (Airflow's upstream_failed).
    set_status(db, b1.id, "succeeded")
    tick(db, T0 + 2 * HOUR)
    a2 = runs_of(db, a["id"])[-1]
    b2 = runs_of(db, b["id"])[-1]
    assert slot(a2) == slot(b2) == T0 + 2 * HOUR
    assert b2.status == "pending"
    set_status(db, a2.id, "failed")
    report = tick(db, T0 + 2 * HOUR + timedelta(seconds=5))
    assert report.runs_cancelled == 1
    b2 = runs_of(db, b["id"])[-1]
    assert (b2.status, b2.status_message) == ("cancelled", f"upstream {a['jobKey']} failed")
    assert b2.finished_at is not None

    # A paused upstream will never run this slot: cancelled rather than waiting for ever.
    r = org.owner.patch(f"/workloads/jobs/{a['id']}", json={"status": "paused"})
    assert r.status_code == 200, r.text
    tick(db, T0 + 3 * HOUR)
    b3 = runs_of(db, b["id"])[-1]
    assert slot(b3) == T0 + 3 * HOUR
    assert (b3.status, b3.status_message) == ("cancelled", f"upstream {a['jobKey']} paused")

    # The held manual run was never touched.
    assert next(r for r in runs_of(db, b["id"]) if r.id == manual).status == "pending"


def test_depends_on_two_upstreams_and_timeout(db: Database, org: Org) -> None:
    a = make_job(db, org)
    c = make_job(db, org)
    b = make_job(db, org, dependsOn=[{"jobKey": a["jobKey"]}, {"jobKey": c["jobKey"]}])
    tick(db, T0 + HOUR)
    set_status(db, runs_of(db, a["id"])[-1].id, "succeeded")
    tick(db, T0 + HOUR + timedelta(seconds=1))
    assert runs_of(db, b["id"])[-1].status == "pending"  # c has not succeeded yet
    set_status(db, runs_of(db, c["id"])[-1].id, "timeout")
    tick(db, T0 + HOUR + timedelta(seconds=2))
    run = runs_of(db, b["id"])[-1]
    assert (run.status, run.status_message) == ("cancelled", f"upstream {c['jobKey']} timeout")


def test_depends_on_an_upstream_without_this_slot(db: Database, org: Org) -> None:
    """An upstream on another schedule never has a run for the dependent's slot: once its schedule
    has passed the slot, the dependent run is cancelled instead of waiting for ever."""
    a = make_job(db, org, "30 * * * *", first=T0 + timedelta(minutes=30))
    b = make_job(db, org, dependsOn=[{"jobKey": a["jobKey"]}])
    tick(db, T0 + HOUR)
    run = runs_of(db, b["id"])[-1]
    assert (run.status, run.status_message) == ("cancelled", f"upstream {a['jobKey']} not scheduled")


def test_depends_on_a_job_no_longer_shared_is_not_followed(db: Database, org: Org) -> None:
    """Once the upstream job shares no team with the dependent one, the scheduler treats it as gone
    (the same words as for a deleted one): its outcome is neither waited for nor shown."""
    other = create_team(org.owner, f"other-{new_id()}")
    a = make_job(db, org)
    b = make_job(db, org, dependsOn=[{"jobKey": a["jobKey"]}], teamIds=[org.team, other])
    gone = make_job(db, org)
    c = make_job(db, org, dependsOn=[{"jobKey": gone["jobKey"]}])
    tick(db, T0 + HOUR)
    assert runs_of(db, b["id"])[-1].status == "pending"
    # b keeps only a team a is not shared with; the upstream of c is deleted.
    assert org.owner.delete(f"/workloads/jobs/{b['id']}/teams/{org.team}").status_code == 200
    assert org.owner.delete(f"/workloads/jobs/{gone['id']}").status_code == 200
    set_status(db, runs_of(db, a["id"])[-1].id, "succeeded")
    report = tick(db, T0 + HOUR + timedelta(seconds=5))
    assert report.runs_released == 0 and report.runs_cancelled == 2
    b1, c1 = runs_of(db, b["id"])[-1], runs_of(db, c["id"])[-1]
    assert (b1.status, b1.status_message) == (
        "cancelled", f"upstream {a['jobKey']} deleted or not shared with any of this job's teams")
    assert (c1.status, c1.status_message) == (
        "cancelled", f"upstream {gone['jobKey']} deleted or not shared with any of this job's teams")


# --- paused jobs -------------------------------------------------------------------------------------

def test_paused_job_is_not_scheduled_and_resumes(db: Database, org: Org) -> None:
    job = make_job(db, org)
    r = org.owner.patch(f"/workloads/jobs/{job['id']}", json={"status": "paused"})
    assert r.status_code == 200 and r.json()["nextRunAt"] is None
    assert job_row(db, job["id"]).next_run_at is None
    set_next(db, job["id"], T0 + HOUR)  # even with a stale next_run_at, a paused job is left alone
    report = tick(db, T0 + 5 * HOUR)
    assert runs_of(db, job["id"]) == [] and report.jobs_due == 0

    before = datetime.now(UTC)
    r = org.owner.patch(f"/workloads/jobs/{job['id']}", json={"status": "active"})
    after = datetime.now(UTC)
    assert r.status_code == 200, r.text
    resumed = job_row(db, job["id"]).next_run_at
    assert resumed is not None
    assert next_fire("0 * * * *", "UTC", before) <= resumed <= next_fire("0 * * * *", "UTC", after)
    assert r.json()["nextRunAt"] == resumed.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    tick(db, resumed - timedelta(seconds=1))
    assert runs_of(db, job["id"]) == []
    tick(db, resumed)
    assert slots_of(db, job["id"]) == [resumed]
    assert job_row(db, job["id"]).next_run_at == resumed + HOUR


def test_job_without_schedule_is_never_due(db: Database, org: Org) -> None:
    job = make_job(db, org, None, None, first=None)
    assert job_row(db, job["id"]).next_run_at is None
    assert tick(db, T0 + 100 * HOUR).jobs_due == 0
    assert runs_of(db, job["id"]) == []


# --- several schedulers at once ----------------------------------------------------------------------

def insert_jobs(db: Database, org_id: str, count: int, first: datetime, **version: Any) -> list[str]:
    """Hourly jobs straight into the tables (fast; the API path is covered above)."""
    ids = []
    with db.session() as s:
        for _ in range(count):
            job = Job(organization_id=org_id, member_id="BENCH", job_key=unique_key("many"), status="active",
                      current_version=1, next_run_at=first)
            s.add(job)
            s.flush()
            s.add(JobVersion(job_id=job.id, version=1, job_type="sql", cluster_id="LOCAL", member_id="BENCH",
                             config={"sql": {"source": "SELECT 1"}}, depends_on=[], cron_expression="0 * * * *",
                             cron_timezone="UTC", **version))
            ids.append(job.id)
        s.commit()
    return ids


def test_concurrent_ticks_never_create_a_slot_twice(sched_url: str, db: Database, org: Org) -> None:
    """Two schedulers (own engines, as two processes would have) tick at the same instants."""
    assert org.owner.org_id is not None
    ids = insert_jobs(db, org.owner.org_id, 150, T0 + HOUR)
    ids += insert_jobs(db, org.owner.org_id, 150, T0 + HOUR, missed_schedule_policy="all",
                       concurrency_policy="queue")
    engines = [Database(sched_url), Database(sched_url)]
    try:
        for hours in (3, 4, 6):  # a catch-up of 3 slots, then 1, then 2
            now = T0 + hours * HOUR
            barrier = threading.Barrier(len(engines))
            reports: list[TickReport] = []
            failures: list[BaseException] = []

            def run(database: Database, now: datetime = now, barrier: threading.Barrier = barrier,
                    reports: list[TickReport] = reports, failures: list[BaseException] = failures) -> None:
                try:
                    barrier.wait()
                    reports.append(scheduler.tick(database, now))
                except BaseException as exc:  # noqa: BLE001 - reported below
                    failures.append(exc)

            threads = [threading.Thread(target=run, args=(e,)) for e in engines]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert not failures, failures
            assert sum(r.errors for r in reports) == 0
            assert sum(r.jobs_scheduled for r in reports) == len(ids)  # each job's slots handled once
    finally:
        for e in engines:
            e.dispose()
    with db.session() as s:
        rows = s.execute(select(JobRun.job_id, JobRun.scheduled_for)).all()
        per_job = Counter(job_id for job_id, _ in rows)
        assert len(rows) == len(set(rows))
        nexts = set(s.scalars(select(Job.next_run_at).where(Job.id.in_(ids))))
        assert s.scalar(select(func.count()).select_from(JobRun)) == len(rows)
    # latest: 03:00, 04:00, 06:00 (05:00 dropped); all: 01…03, 04, 05…06 — except that concurrency
    # skip (the first 150) is at its limit after the first run, which stays ready here.
    assert [per_job[i] for i in ids[:150]] == [1] * 150
    assert [per_job[i] for i in ids[150:]] == [6] * 150
    assert {as_utc(n) for n in nexts if n is not None} == {T0 + 7 * HOUR}


def test_a_slot_that_already_has_a_run_is_not_created_again(db: Database, org: Org) -> None:
    job = make_job(db, org, concurrencyPolicy="queue", missedSchedulePolicy="all")
    with db.session() as s:  # e.g. left by a scheduler whose bookkeeping was lost
        row = s.get(Job, job["id"])
        version = s.scalar(select(JobVersion).where(JobVersion.job_id == job["id"]))
        assert row is not None and version is not None
        create_run(s, row, version, trigger="schedule", scheduled_for=T0 + HOUR)
        s.commit()
    report = tick(db, T0 + 2 * HOUR)
    assert slots_of(db, job["id"]) == [T0 + HOUR, T0 + 2 * HOUR] and len(report.runs_created) == 1
    assert job_row(db, job["id"]).next_run_at == T0 + 3 * HOUR


# --- the live loop -----------------------------------------------------------------------------------

def test_scheduler_loop_ticks_with_the_real_clock_and_wakes(db: Database, org: Org) -> None:
    job = make_job(db, org, "* * * * *", first=None)
    slot = datetime.now(UTC).replace(second=0, microsecond=0)
    set_next(db, job["id"], slot)
    woken = threading.Event()

    async def main() -> RunningScheduler:
        handle = await start_scheduler_loop(db, interval=0.05, wake=woken.set)
        while not await asyncio.to_thread(runs_of, db, job["id"]):
            await asyncio.sleep(0.05)
        await handle.stop()
        return handle

    handle = asyncio.run(asyncio.wait_for(main(), 30))
    assert handle.task.done() and not handle.task.cancelled()
    assert woken.is_set()
    assert slots_of(db, job["id"])[0] == slot


def test_scheduler_loop_survives_failing_ticks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = Database(f"sqlite:///{tmp_path / 'no-tables.db'}")  # no schema: every tick raises

    def failed_ticks() -> int:
        return sum("job scheduler tick failed" in r.message for r in caplog.records)

    async def main() -> None:
        handle = await start_scheduler_loop(broken, interval=0.02)
        deadline = time.monotonic() + 30  # a loaded machine runs few ticks a second; the count is what matters
        while failed_ticks() < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not handle.task.done()
        await handle.stop()
        assert handle.task.done() and not handle.task.cancelled()

    try:
        with caplog.at_level(logging.ERROR, logger="sailplane.workloads.runs.scheduler"):
            asyncio.run(main())
    finally:
        broken.dispose()
    assert failed_ticks() >= 3
