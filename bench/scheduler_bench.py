"""Benchmark (not a test): 1,000 jobs due in the same minute -> time for one scheduler tick to create
all their runs (target ≤ 5 s), on SQLite and on a throwaway PostgreSQL, against a baseline measured
in the same run on the same database: a bare bulk INSERT of 1,000 rows into job_runs, committed.

Jobs are inserted straight into the tables (next_run_at = the slot) in one organization; each round
uses a fresh hourly slot, so every round creates 1,000 new runs. Measured twice: every job with its
own cron expression (all firing at minute 0: "0,a,b * * *", the worst case for the scheduler's cron
cache) and all jobs sharing "0 * * * *". Also reported: a tick with nothing due (what the 1-second
loop costs when idle).

Run: .venv/bin/python bench/scheduler_bench.py [--rounds 3] [--jobs 1000] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support.postgres

from tests.support.postgres import TempPostgres  # noqa: E402

from sailplane.kit.db import Database  # noqa: E402
from sailplane.kit.ids import new_id  # noqa: E402
from sailplane.migrations.runner import upgrade  # noqa: E402
from sailplane.tenancy.org.models import Organization  # noqa: E402
from sailplane.workloads.jobs.models import Job, JobVersion  # noqa: E402
from sailplane.workloads.runs.models import JobRun  # noqa: E402
from sailplane.workloads.runs.scheduler import tick  # noqa: E402

SLOT0 = datetime(2099, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def setup(db: Database, jobs: int) -> tuple[str, list[str]]:
    """One organization and `jobs` hourly jobs, not yet due anywhere."""
    now = datetime.now(UTC)
    with db.session() as s:
        org = Organization(name="Scheduler bench")
        s.add(org)
        s.flush()
        job_rows: list[dict[str, Any]] = [
            {"id": new_id(), "organization_id": org.id, "member_id": "BENCH", "job_key": f"bench-{i:05}",
             "status": "active", "current_version": 1, "next_run_at": None, "lock_version": 0, "created_at": now,
             "updated_at": now} for i in range(jobs)]
        s.execute(insert(Job), job_rows)
        s.execute(insert(JobVersion), [
            {"id": new_id(), "job_id": j["id"], "version": 1, "status": "published", "job_type": "sql",
             "cluster_id": "LOCAL", "member_id": "BENCH", "config": {"sql": {"source": "SELECT 1"}},
             "depends_on": [], "cron_expression": "0 * * * *", "cron_timezone": "UTC", "concurrency_policy": "queue",
             "max_concurrent_runs": 1, "missed_schedule_policy": "latest", "created_at": now, "updated_at": now}
            for j in job_rows])
        s.commit()
        return org.id, [j["id"] for j in job_rows]


def set_crons(db: Database, distinct: bool) -> None:
    """Each job its own expression firing at minute 0 of every hour, or all the same one."""
    with db.session() as s:
        ids = list(s.scalars(select(JobVersion.id).order_by(JobVersion.id)))
        crons = (f"0,{a},{b} * * * *" for a, b in combinations(range(1, 60), 2))
        s.connection().execute(update(JobVersion).where(JobVersion.id == bindparam("b_id"))
                               .values(cron_expression=bindparam("b_cron")),
                               [{"b_id": i, "b_cron": next(crons) if distinct else "0 * * * *"} for i in ids])
        s.commit()


def make_due(db: Database, slot: datetime) -> None:
    with db.session() as s:
        s.execute(update(Job).values(next_run_at=slot))
        s.commit()


def bare_insert(db: Database, org_id: str, job_ids: list[str]) -> float:
    """The baseline: 1,000 job_runs rows in one executemany INSERT and a commit (then removed)."""
    now = datetime.now(UTC)
    rows = [{"id": new_id(), "organization_id": org_id, "job_id": j, "job_version": 1, "status": "ready",
             "resource_cleanup_mode": "always", "trigger": "schedule", "scheduled_for": None, "attempt": 0,
             "created_at": now, "updated_at": now} for j in job_ids]
    with db.session() as s:
        t0 = time.perf_counter()
        s.execute(insert(JobRun), rows)
        s.commit()
        elapsed = time.perf_counter() - t0
        s.execute(delete(JobRun).where(JobRun.id.in_([r["id"] for r in rows])))
        s.commit()
    return elapsed


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(name: str, url: str, jobs: int, rounds: int) -> None:
    upgrade(url)
    db = Database(url)
    try:
        org_id, job_ids = setup(db, jobs)
        idle = statistics.median(timed(lambda: tick(db, SLOT0 - HOUR)) for _ in range(5))
        slot = SLOT0
        for distinct in (True, False):
            set_crons(db, distinct)
            ticks, bases = [], []
            for _ in range(rounds):
                make_due(db, slot)
                bases.append(bare_insert(db, org_id, job_ids))
                t0 = time.perf_counter()
                report = tick(db, slot + timedelta(seconds=1))
                ticks.append(time.perf_counter() - t0)
                with db.session() as s:
                    created = s.scalar(select(func.count()).select_from(JobRun).where(JobRun.scheduled_for == slot))
                assert created == jobs == len(report.runs_created) and not report.errors, (created, report)
                slot += HOUR
            t, b = statistics.median(ticks), statistics.median(bases)
            label = "own crons" if distinct else "one cron"
            print(f"{name:10} {label:9} {jobs} jobs due -> {jobs} runs: tick median {t:.3f} s (rounds "
                  f"{', '.join(f'{x:.3f}' for x in ticks)}; target ≤ 5 s) | baseline bare INSERT of {jobs} "
                  f"job_runs rows {b * 1000:.1f} ms | ratio {t / b:.1f}x | {t / jobs * 1000:.2f} ms/job")
        print(f"{name:10} idle tick (nothing due): {idle * 1000:.2f} ms")
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="sailplane-sched-bench-") as tmp:
            bench("sqlite", f"sqlite:///{tmp}/bench.db", args.jobs, args.rounds)
    if args.only in (None, "postgresql"):
        pg = TempPostgres()
        pg.start()
        try:
            bench("postgresql", pg.create_database("scheduler_bench"), args.jobs, args.rounds)
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
