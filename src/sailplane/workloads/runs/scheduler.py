"""The job scheduler: turns due cron slots into runs, and releases runs waiting for upstream jobs.

`tick(db, now)` is the whole scheduler, a function of the database and `now` (the injectable
clock); `JobScheduler` calls it every second with the real time. Several server processes may
tick at once: each job's slots are claimed with a conditional UPDATE of `jobs.next_run_at`
(`WHERE id = ? AND next_run_at = <value read>`), committed together with the runs it creates, so
exactly one process handles a slot; the unique (job_id, scheduled_for) constraint is the second
guard (an IntegrityError makes the batch be redone job by job).

Behaviour:

* Due jobs: active (not paused), current version with a cron expression, `next_run_at <= now`.
  `next_run_at` is the oldest slot not handled yet, so the due slots are the fire times in
  [next_run_at, now]. Afterwards `next_run_at` is the first fire time after `now`, and
  `last_scheduled_at` the slot of the newest run this scheduler created for the job (unchanged
  when every due slot was skipped or dropped).
* missedSchedulePolicy, when slots were missed (a slot is *missed* once it is more than
  ON_TIME_GRACE = 60 s old: one scheduler interval plus room for a slow tick, a long GC pause or
  a quick restart; tick(..., grace=) overrides it):
  `latest` runs only the most recent due slot; `skip` runs only a slot that is on time (none of
  the missed ones); `all` runs every due slot, oldest first, but at most the MAX_CATCH_UP = 100
  most recent ones (older ones are dropped and logged) so a long outage of a frequent job does
  not flood the queue. A single due slot that is on time runs under every policy.
* concurrencyPolicy, judged against the job's active runs from before this tick (ready, dispatched,
  waiting_for_sail, running, and scheduled runs pending on dependencies; a manual run held in
  pending is not counted and never touched): while the job has `maxConcurrentRuns` of them,
  `skip` creates nothing for the slot (logged), `queue` creates the run anyway (ready; the
  dispatcher starts it when a place frees up), `replace` cancels the oldest active runs so that
  the new one keeps the job within `maxConcurrentRuns`. The slots of one catch-up (`all`) are one
  backlog: created together and run in order by the dispatcher.
* dependsOn: a scheduled run of a version with dependencies is created `pending` ("waiting for
  upstream ..."). Each tick then looks at the pending scheduled runs: once every job it depends on
  (by jobKey, same organization) has a `succeeded` run for the same `scheduled_for`, it becomes
  `ready`; if one of them ended failed/timeout/cancelled it is cancelled with "upstream <jobKey>
  <status>"; if an upstream job will never have a run for that slot (deleted, paused, or its
  schedule moved past the slot without one) it is cancelled with "upstream <jobKey> deleted or
  not shared with any of this job's teams", "... paused" or "... not scheduled" rather than
  waiting for ever. An upstream job is followed only while it shares a team with the dependent
  one: otherwise it counts as deleted (the same message), so its runs' outcomes never show.

Transactions and speed: due jobs are handled in batches of BATCH_SIZE jobs in id order, one
transaction per batch: the claims are one executemany of the conditional UPDATE (all must match,
else the batch is rolled back and read again, since another scheduler took some of its jobs), the
runs one bulk INSERT (the rows `runs.service.create_run` would add, status `ready`, or `pending`
with dependencies), then replace cancellations (`cancel_run`) and audit events (actor "system"),
all committed together. Dependency decisions go in batches of RELEASE_BATCH_SIZE runs, each change
a conditional UPDATE (`cancel_run` is one too), so concurrent ticks agree.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from croniter import CroniterError
from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from sailplane.kit.background import PeriodicService
from sailplane.kit.clock import as_utc, iso, utcnow
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from sailplane.tenancy.audit import service as audit
from sailplane.workloads.jobs.models import ACTIVE, Job, JobTeam, JobVersion
from sailplane.workloads.jobs.schedule import ScheduleError, next_fire
from sailplane.workloads.runs import states
from sailplane.workloads.runs.models import JobRun
from sailplane.workloads.runs.service import cancel_run, cleanup_mode_of
from sailplane.workloads.runs.states import BUSY_STATES, PENDING, READY, SUCCEEDED, UNSUCCESSFUL_STATES

log = logging.getLogger(__name__)

SCHEDULE = "schedule"
ON_TIME_GRACE = timedelta(seconds=60)
MAX_CATCH_UP = 100
BATCH_SIZE = 200
RELEASE_BATCH_SIZE = 500


@dataclass
class TickReport:
    """What one tick did (counts are of this process's work; another process may have done the rest)."""

    now: datetime
    jobs_due: int = 0  # due jobs seen
    jobs_scheduled: int = 0  # due jobs whose slots this tick claimed and handled
    jobs_taken: int = 0  # due jobs another scheduler (or an edit of the job) changed first
    runs_created: list[str] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # seconds from each created run's slot to its creation
    slots_skipped: int = 0  # not run: the job was at maxConcurrentRuns with concurrencyPolicy skip
    slots_dropped: int = 0  # missed slots left out by missedSchedulePolicy (at least; see due_slots)
    runs_replaced: int = 0  # active runs cancelled by concurrencyPolicy replace
    runs_released: int = 0  # dependency-waiting runs made ready
    runs_cancelled: int = 0  # dependency-waiting runs cancelled because an upstream job did not succeed
    errors: int = 0  # batches rolled back by a database error (retried on the next tick)


@dataclass
class _Plan:
    job: Job
    version: JobVersion
    due_from: datetime  # next_run_at as read: the claim's condition
    slots: list[datetime]  # slots to create runs for, oldest first
    dropped: int
    next_run_at: datetime | None


# --- cron slots ---------------------------------------------------------------------------------

# A pure function, and jobs due together mostly share their expression and slot: 1,000 hourly jobs
# cost one cron evaluation instead of 1,000.
_next_fire = lru_cache(maxsize=8192)(next_fire)


def _walk(cron: str, tz: str | None, start: datetime, now: datetime, keep: int,
          include_start: bool) -> tuple[list[datetime], int, datetime | None]:
    """Fire times in (start, now] (also `start` itself with include_start): the newest `keep`,
    how many there are, and the first fire time after `now` (None if the cron never fires again)."""
    kept: deque[datetime] = deque(maxlen=keep)
    count = 0
    if include_start:
        kept.append(start)
        count = 1
    current = start
    while True:
        try:
            nxt = _next_fire(cron, tz, current)
        except CroniterError:
            return list(kept), count, None
        if nxt > now:
            return list(kept), count, nxt
        kept.append(nxt)
        count += 1
        current = nxt


def due_slots(cron: str, tz: str | None, first: datetime, now: datetime,
              keep: int) -> tuple[list[datetime], int, bool, datetime | None]:
    """The newest `keep` fire times in [first, now] (oldest first; `first` is the oldest unhandled
    slot), how many fire times the range holds and whether that count is exact (else a lower
    bound), and the first fire time after `now`. Looks back from `now` in growing windows, so a
    long outage of a frequent job costs about as much as the slots kept, not all the slots missed."""
    span = timedelta(minutes=2)
    while True:
        start = now - span
        if start <= first:
            slots, count, after = _walk(cron, tz, first, now, keep, include_start=True)
            return slots, count, True, after
        slots, count, after = _walk(cron, tz, start, now, keep, include_start=False)
        if count >= keep:
            return slots, count + 1, False, after  # `first` (at least) lies before the window
        span *= 4


def _plan(job: Job, version: JobVersion, now: datetime, grace: timedelta) -> _Plan:
    first = as_utc(job.next_run_at) if job.next_run_at is not None else now
    cron, tz = version.cron_expression or "", version.cron_timezone
    policy = version.missed_schedule_policy
    keep = MAX_CATCH_UP if policy == "all" else 1
    try:
        slots, total, exact, after = due_slots(cron, tz, first, now, keep)
    except (ScheduleError, CroniterError, ValueError) as exc:
        log.warning("job %s (%s): unusable schedule %r %r (%s); not scheduling it", job.id, job.job_key, cron, tz, exc)
        return _Plan(job, version, first, [], 0, None)
    if policy == "skip":
        slots = [s for s in slots if now - s <= grace]
    dropped = max(total - len(slots), 0)
    if dropped:
        log.info("job %s (%s): %s%d missed slot(s) up to %s dropped (missedSchedulePolicy %s)%s", job.id, job.job_key,
                 "" if exact else "at least ", dropped, iso(now), policy,
                 f"; running {len(slots)} from {iso(slots[0])}" if slots else "")
    return _Plan(job, version, first, slots, dropped, after)


# --- creating runs for due slots ----------------------------------------------------------------

def _due_jobs(db: Session, now: datetime, after_id: str, limit: int,
              only: Sequence[str] | None = None) -> list[tuple[Job, JobVersion]]:
    stmt = (select(Job, JobVersion)
            .join(JobVersion, and_(JobVersion.job_id == Job.id, JobVersion.version == Job.current_version))
            .where(Job.status == ACTIVE, Job.next_run_at.is_not(None), Job.next_run_at <= now,
                   JobVersion.cron_expression.is_not(None), Job.id > after_id)
            .order_by(Job.id).limit(limit))
    if only is not None:
        stmt = stmt.where(Job.id.in_(only))
    return [(job, version) for job, version in db.execute(stmt).all()]


def _busy_runs(db: Session, job_ids: list[str]) -> dict[str, list[JobRun]]:
    """Per job, its runs that count against maxConcurrentRuns, oldest first. (The query asks for every
    active state, which an index on status finds without reading the jobs' finished history; held
    manual and retried runs are left out here.)"""
    found: dict[str, list[JobRun]] = defaultdict(list)
    if not job_ids:
        return found
    rows = db.scalars(select(JobRun).where(JobRun.status.in_((PENDING, *BUSY_STATES)), JobRun.job_id.in_(job_ids))
                      .order_by(JobRun.job_id, JobRun.id))
    for run in rows:
        if run.status != PENDING or run.trigger == SCHEDULE:
            found[run.job_id].append(run)
    return found


def _existing_slots(db: Session, plans: list[_Plan]) -> set[tuple[str, datetime]]:
    wanted = [p for p in plans if p.slots]
    if not wanted:
        return set()
    oldest = min(p.slots[0] for p in wanted)
    rows = db.execute(select(JobRun.job_id, JobRun.scheduled_for).where(
        JobRun.job_id.in_([p.job.id for p in wanted]), JobRun.scheduled_for >= oldest))
    return {(job_id, as_utc(slot)) for job_id, slot in rows if slot is not None}


def _audit(db: Session, org_id: str, action: str, run_id: str, details: dict[str, Any]) -> None:
    audit.record(db, None, None, action, "job_run", run_id, organization_id=org_id, actor_type="system",
                 details=details)


class _ClaimLost(Exception):
    """A job of the batch changed since it was read (another scheduler, or an edit through the API)."""


# Claims: conditional on the slot read (and on the job still being active at the same version).
# Prebuilt, so a batch is one executemany per statement rather than one statement built per job.
_CLAIM_WHERE = (Job.id == bindparam("b_id"), Job.next_run_at == bindparam("b_old"), Job.status == ACTIVE,
                Job.current_version == bindparam("b_version"))
_CLAIM = update(Job).where(*_CLAIM_WHERE).values(next_run_at=bindparam("b_next"), updated_at=Job.updated_at)
_CLAIM_WITH_RUNS = update(Job).where(*_CLAIM_WHERE).values(
    next_run_at=bindparam("b_next"), last_scheduled_at=bindparam("b_last"), latest_run_id=bindparam("b_run"),
    updated_at=Job.updated_at)


def _run_row(job: Job, version: JobVersion, slot: datetime, hold: bool, message: str | None,
             now: datetime) -> dict[str, Any]:
    """The row `runs.service.create_run(trigger="schedule", scheduled_for=slot, hold=...)` adds; inserted
    in bulk here, since one create_run (an ORM flush and an UPDATE) per run is too slow for 1,000 at once."""
    return {"id": new_id(), "organization_id": job.organization_id, "job_id": job.id, "job_version": version.version,
            "status": PENDING if hold else READY, "status_message": message,
            "resource_cleanup_mode": cleanup_mode_of(version), "trigger": SCHEDULE, "parameters": None,
            "idempotency_key": None, "scheduled_for": slot, "attempt": 0, "created_at": now, "updated_at": now,
            "created_by": None, "updated_by": None}


def _schedule_batch(db: Session, rows: list[tuple[Job, JobVersion]], now: datetime, grace: timedelta) -> TickReport:
    """Claims and handles the due slots of `rows` in the session's current transaction (the caller
    commits): one executemany of conditional claims, one bulk INSERT of runs, audit events.
    Raises _ClaimLost when a claim did not match (the caller rolls back and reads again), and
    IntegrityError on a duplicate slot."""
    part = TickReport(now)
    plans = [_plan(job, version, now, grace) for job, version in rows]
    busy = _busy_runs(db, [p.job.id for p in plans if p.slots])
    existing = _existing_slots(db, plans)
    created_at = utcnow()
    claims: list[dict[str, Any]] = []
    claims_with_runs: list[dict[str, Any]] = []
    new_runs: list[dict[str, Any]] = []
    cancels: list[tuple[Job, JobRun, datetime]] = []
    skipped: list[tuple[Job, list[datetime], int, int]] = []
    for plan in plans:
        job, version = plan.job, plan.version
        slots = [s for s in plan.slots if (job.id, s) not in existing]
        active = busy.get(job.id, [])
        limit = max(version.max_concurrent_runs or 1, 1)
        if slots and len(active) >= limit:
            if version.concurrency_policy == "skip":
                skipped.append((job, slots, len(active), limit))
                part.slots_skipped += len(slots)
                slots = []
            elif version.concurrency_policy == "replace":
                cancels.extend((job, run, slots[0]) for run in active[: len(active) - limit + 1])
        claim = {"b_id": job.id, "b_old": plan.due_from, "b_version": version.version, "b_next": plan.next_run_at}
        part.slots_dropped += plan.dropped
        if not slots:
            claims.append(claim)
            continue
        deps = [d.get("jobKey", "") for d in (version.depends_on or [])]
        message = f"waiting for upstream {', '.join(deps)}" if deps else None
        rows_of_job = [_run_row(job, version, slot, bool(deps), message, created_at) for slot in slots]
        new_runs.extend(rows_of_job)
        claims_with_runs.append({**claim, "b_last": slots[-1], "b_run": rows_of_job[-1]["id"]})
    for statement, params in ((_CLAIM, claims), (_CLAIM_WITH_RUNS, claims_with_runs)):
        if params:
            done = db.connection().execute(statement, params)  # Core executemany, not ORM bulk-by-key
            if done.rowcount != len(params):
                raise _ClaimLost
    part.jobs_scheduled = len(plans)
    for job, slots, active_count, limit in skipped:
        log.info("job %s (%s): slot(s) %s skipped: %d active run(s) reach maxConcurrentRuns %d (concurrencyPolicy "
                 "skip)", job.id, job.job_key, ", ".join(iso(s) or "" for s in slots), active_count, limit)
    for job, run, slot in cancels:
        message = f"replaced by the run scheduled for {iso(slot)} (concurrencyPolicy replace)"
        if cancel_run(db, run, message):
            part.runs_replaced += 1
            _audit(db, job.organization_id, "job_run.cancel", run.id, {"jobId": job.id, "reason": "replace"})
    if new_runs:
        db.execute(insert(JobRun), new_runs)
    for run_row in new_runs:
        part.runs_created.append(run_row["id"])
        part.lags.append((as_utc(created_at) - as_utc(run_row["scheduled_for"])).total_seconds())
        _audit(db, run_row["organization_id"], "job_run.create", run_row["id"],
               {"jobId": run_row["job_id"], "trigger": SCHEDULE, "scheduledFor": iso(run_row["scheduled_for"]),
                "status": run_row["status"]})
    return part


def _merge(report: TickReport, part: TickReport) -> None:
    for name in ("jobs_scheduled", "slots_skipped", "slots_dropped", "runs_replaced"):
        setattr(report, name, getattr(report, name) + getattr(part, name))
    report.runs_created.extend(part.runs_created)
    report.lags.extend(part.lags)


def _schedule_due(db: Database, now: datetime, grace: timedelta, report: TickReport) -> None:
    after = ""
    seen: set[str] = set()
    lost = 0
    with db.session() as session:
        while True:
            rows = _due_jobs(session, now, after, BATCH_SIZE)
            if not rows:
                break
            seen.update(job.id for job, _ in rows)
            try:
                part = _schedule_batch(session, rows, now, grace)
                session.commit()
                _merge(report, part)
            except _ClaimLost:
                # Another scheduler took some of these jobs: read the batch again (what it handled is no
                # longer due); when that keeps happening, go job by job.
                session.rollback()
                lost += 1
                if lost <= 3:
                    continue
                _schedule_one_by_one(session, [job.id for job, _ in rows], now, grace, report)
            except IntegrityError:
                # A run for one of these slots exists although the claims matched (created outside
                # the scheduler's bookkeeping): job by job, each leaving out the slots that exist.
                session.rollback()
                _schedule_one_by_one(session, [job.id for job, _ in rows], now, grace, report)
            except SQLAlchemyError:
                session.rollback()
                report.errors += 1
                log.exception("scheduling a batch of %d due job(s) failed; they are retried on the next tick",
                              len(rows))
            after = rows[-1][0].id
            if len(rows) < BATCH_SIZE:
                break
    report.jobs_due = len(seen)
    report.jobs_taken = max(len(seen) - report.jobs_scheduled, 0)


def _schedule_one_by_one(session: Session, job_ids: list[str], now: datetime, grace: timedelta,
                         report: TickReport) -> None:
    for job_id in job_ids:
        for _attempt in range(3):
            rows = _due_jobs(session, now, "", 1, only=[job_id])
            if not rows:
                break  # handled meanwhile by someone else
            try:
                part = _schedule_batch(session, rows, now, grace)
                session.commit()
                _merge(report, part)
                break
            except (_ClaimLost, IntegrityError):
                session.rollback()  # read again: the change or the conflicting slot is visible now
            except SQLAlchemyError:
                session.rollback()
                report.errors += 1
                log.exception("scheduling job %s failed; it is retried on the next tick", job_id)
                break


# --- releasing runs that wait for upstream jobs -------------------------------------------------

def _verdict(run: JobRun, keys: list[str], upstream: dict[str, tuple[str, str, datetime | None]],
             outcomes: dict[tuple[str, datetime], str]) -> str | None:
    """None: keep waiting; "" : release; otherwise the reason to cancel."""
    slot = as_utc(run.scheduled_for) if run.scheduled_for is not None else None
    waiting = False
    for key in keys:
        info = upstream.get(key)
        if info is None:
            return f"upstream {key} deleted or not shared with any of this job's teams"
        job_id, status, next_run_at = info
        outcome = outcomes.get((job_id, slot)) if slot is not None else None
        if outcome == SUCCEEDED:
            continue
        if outcome in UNSUCCESSFUL_STATES:
            return f"upstream {key} {outcome}"
        if outcome is not None:
            waiting = True  # pending/ready/running: not decided yet
        elif status != ACTIVE:
            return f"upstream {key} paused"
        elif slot is None or next_run_at is None or as_utc(next_run_at) > slot:
            return f"upstream {key} not scheduled"  # its schedule went past this slot without a run
        else:
            waiting = True  # the upstream job has not reached this slot yet
    return None if waiting else ""


def _release_batch(db: Session, rows: list[tuple[JobRun, list[dict[str, str]] | None]], report: TickReport) -> None:
    orgs = {run.organization_id for run, _ in rows}
    keys = {d.get("jobKey", "") for _, deps in rows for d in (deps or [])}
    upstream: dict[str, dict[str, tuple[str, str, datetime | None]]] = defaultdict(dict)
    if keys:
        found = db.execute(select(Job.id, Job.organization_id, Job.job_key, Job.status, Job.next_run_at)
                           .where(Job.organization_id.in_(orgs), Job.job_key.in_(keys)))
        for job_id, org_id, key, status, next_run_at in found:
            upstream[org_id][key] = (job_id, status, next_run_at)
    slots = list({as_utc(run.scheduled_for) for run, _ in rows if run.scheduled_for is not None})
    job_ids = list({info[0] for by_key in upstream.values() for info in by_key.values()})
    outcomes: dict[tuple[str, datetime], str] = {}
    if job_ids and slots:
        found_runs = db.execute(select(JobRun.job_id, JobRun.scheduled_for, JobRun.status)
                                .where(JobRun.job_id.in_(job_ids), JobRun.scheduled_for.in_(slots)))
        outcomes = {(job_id, as_utc(slot)): status for job_id, slot, status in found_runs if slot is not None}
    # An upstream job is followed only while it shares a team with the dependent job (the rule
    # createJob checks); otherwise it is treated as deleted, so nothing of it shows in the dependent.
    teams: dict[str, set[str]] = defaultdict(set)
    linked = {run.job_id for run, _ in rows} | set(job_ids)
    if job_ids:
        for job_id, team_id in db.execute(select(JobTeam.job_id, JobTeam.team_id)
                                          .where(JobTeam.job_id.in_(list(linked)))):
            teams[job_id].add(team_id)
    now = utcnow()
    for run, deps in rows:
        dep_keys = [d.get("jobKey", "") for d in (deps or [])]
        of_org = upstream.get(run.organization_id, {})
        shared = {key: of_org[key] for key in dep_keys if key in of_org and teams[of_org[key][0]] & teams[run.job_id]}
        verdict = _verdict(run, dep_keys, shared, outcomes)
        if verdict is None:
            continue
        if verdict == "":
            if states.transition(db, run.id, READY, source=(PENDING,), values={"status_message": None}, now=now):
                report.runs_released += 1
                _audit(db, run.organization_id, "job_run.release", run.id,
                       {"jobId": run.job_id, "reason": "upstream succeeded", "dependsOn": dep_keys})
        elif cancel_run(db, run, verdict):
            report.runs_cancelled += 1
            log.info("run %s of job %s cancelled: %s", run.id, run.job_id, verdict)
            _audit(db, run.organization_id, "job_run.cancel", run.id, {"jobId": run.job_id, "reason": verdict})


def _release_waiting(db: Database, report: TickReport) -> None:
    after = ""
    with db.session() as session:
        while True:
            rows = session.execute(
                select(JobRun, JobVersion.depends_on)
                .join(JobVersion, and_(JobVersion.job_id == JobRun.job_id, JobVersion.version == JobRun.job_version))
                .where(JobRun.status == PENDING, JobRun.trigger == SCHEDULE, JobRun.scheduled_for.is_not(None),
                       JobRun.id > after)
                .order_by(JobRun.id).limit(RELEASE_BATCH_SIZE)).all()
            if not rows:
                return
            after = rows[-1][0].id
            try:
                _release_batch(session, [(run, deps) for run, deps in rows], report)
                session.commit()
            except SQLAlchemyError:
                session.rollback()
                report.errors += 1
                log.exception("releasing %d dependency-waiting run(s) failed; retried on the next tick", len(rows))
            if len(rows) < RELEASE_BATCH_SIZE:
                return


# --- entry points -------------------------------------------------------------------------------

def tick(db: Database, now: datetime, *, grace: timedelta = ON_TIME_GRACE) -> TickReport:
    """One scheduler pass at `now`: create the runs of every due slot, then release (or cancel) the
    scheduled runs waiting for upstream jobs. Safe to call from several processes at once."""
    now = as_utc(now)
    report = TickReport(now)
    _schedule_due(db, now, grace, report)
    _release_waiting(db, report)
    return report


class JobScheduler:
    """tick() every `interval` seconds with the real time, in a worker thread, the first at once (a
    `kit.background` service: a failing tick is logged and the next one comes on time). `wake` (e.g.
    the dispatcher's) is called on this loop after a tick that made runs ready, so they start without
    waiting for a poll. `on_lag` hears each created run's lag (slot → created; the operator's metric)."""

    def __init__(self, db: Database, interval: float = 1.0, *, wake: Callable[[], None] | None = None,
                 on_lag: Callable[[float], None] | None = None) -> None:
        self.db = db
        self.wake = wake
        self.on_lag = on_lag
        self.service = PeriodicService("job-scheduler", self.tick, interval, logger=log,
                                       failure="job scheduler tick failed", tick_at_start=True)

    async def tick(self) -> None:
        report = await asyncio.to_thread(tick, self.db, utcnow())
        if self.on_lag is not None:
            for lag in report.lags:
                self.on_lag(lag)
        if report.runs_created or report.slots_skipped or report.runs_released or report.runs_cancelled:
            log.info("scheduler: %d run(s) created, %d slot(s) skipped, %d released, %d cancelled, %d replaced",
                     len(report.runs_created), report.slots_skipped, report.runs_released,
                     report.runs_cancelled, report.runs_replaced)
        if self.wake is not None and (report.runs_created or report.runs_released):
            self.wake()


@dataclass
class RunningScheduler:
    """A started JobScheduler."""

    scheduler: JobScheduler

    @property
    def task(self) -> asyncio.Task[None]:
        task = self.scheduler.service.task
        assert task is not None
        return task

    async def stop(self, timeout: float = 60.0) -> None:
        """Ask the loop to end and wait for it (a tick in progress completes first, within `timeout`)."""
        await self.scheduler.service.stop(timeout)
        log.info("job scheduler stopped")


async def start_scheduler_loop(db: Database, *, interval: float = 1.0, wake: Callable[[], None] | None = None,
                               on_lag: Callable[[float], None] | None = None) -> RunningScheduler:
    """Start a JobScheduler on the running loop; `await handle.stop()` ends it."""
    scheduler = JobScheduler(db, interval, wake=wake, on_lag=on_lag)
    log.info("job scheduler started (every %g s)", interval)
    scheduler.service.start()
    return RunningScheduler(scheduler)
