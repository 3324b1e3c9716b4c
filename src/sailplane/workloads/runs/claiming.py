"""Claiming runs and keeping their leases (blocking database work; the loop calls it in worker
threads). Two server processes can never start the same run:

- PostgreSQL: for each job with ready runs, the job row is locked (`FOR NO KEY UPDATE SKIP
  LOCKED`), its runs in dispatched/waiting_for_sail/running are counted against the current
  version's `maxConcurrentRuns`, and that many ready runs are taken with `FOR UPDATE SKIP LOCKED`.
  The job lock makes the count and the claim atomic across processes.
- SQLite: one conditional UPDATE per run (`... WHERE id = ? AND status = 'ready' AND (active runs
  of the job) < maxConcurrentRuns`); SQLite runs each such statement under its write lock, so the
  count and the claim are atomic too.
- A claimed run carries a lease (`lease_owner` = this process, `lease_expires_at`), renewed every
  second for all of this process's runs in one statement. A renewal that no longer finds the run
  held by us (cancelled, deleted, or taken over after our lease expired) stops its process.
- `ready` runs whose `lease_expires_at` lies in the future are not claimed before it: that is the
  backoff of automatic retries (a ready run holds no lease, so the column is free for it).
- Runs whose holder is gone (a previous life of this node, an expired lease) are taken over by a
  compare-and-set on their lease (`orphans`), so one process recovers each.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.kit.dialect import dialect_of
from sailplane.workloads.jobs.models import Job, JobVersion
from sailplane.workloads.runs import states
from sailplane.workloads.runs.models import JobRun
from sailplane.workloads.runs.states import DISPATCHED, LEASED_STATES, READY


class Leases:
    """The leases of one server process (`owner` = "<node tag>:<this process's life>")."""

    def __init__(self, db: Database, *, owner: str, node_tag: str, lease_seconds: float) -> None:
        self.db = db
        self.owner = owner
        self.node_tag = node_tag
        self.lease_seconds = lease_seconds
        self.dialect = dialect_of(db.url)

    def _session(self) -> Session:
        return self.db.session()

    @staticmethod
    def _past_backoff(now: datetime) -> Any:
        """A ready run's `lease_expires_at` is its retry backoff: claimable once it has passed."""
        return or_(JobRun.lease_expires_at.is_(None), JobRun.lease_expires_at <= now)

    @classmethod
    def _ready_clause(cls, now: datetime, held: Collection[str] = ()) -> Any:
        """Ready runs past their backoff, except `held`: runs whose earlier attempt this process is still ending
        (a run retried while its cancelled process is being stopped). Claimed now, that attempt's end, written
        under the same lease owner, would be taken for the new attempt's."""
        ready = and_(JobRun.status == READY, cls._past_backoff(now))
        return and_(ready, JobRun.id.not_in(held)) if held else ready

    def _claim(self, db: Session, run_ids: str | list[str], now: datetime, *extra: Any) -> int:
        """ready → dispatched under our lease (states.transition stamps dispatchedAt)."""
        # status_message: "retrying in …"/"requeued: …" described the wait that ends here.
        values = {"status_message": None, "lease_owner": self.owner,
                  "lease_expires_at": now + timedelta(seconds=self.lease_seconds)}
        return states.transition(db, run_ids, DISPATCHED, source=(READY,), values=values, now=now, where=extra)

    def claim(self, capacity: int, held: Collection[str] = ()) -> tuple[list[str], bool]:
        """Up to `capacity` ready runs, oldest first, within their jobs' maxConcurrentRuns, none of `held` (the
        runs this process still has an attempt of); and whether a job's row was locked by another process (worth
        looking again very soon)."""
        with self._session() as db:
            now = utcnow()
            rows = db.execute(select(JobRun.id, JobRun.job_id).where(self._ready_clause(now, held))
                              .order_by(JobRun.id).limit(capacity * 4 + 20)).all()
            if not rows:
                return [], False
            if self.dialect.row_locks:
                return self._claim_postgres(db, rows, capacity, held)
            return self._claim_sqlite(db, rows, capacity), False

    def _claim_postgres(self, db: Session, rows: Sequence[Any], capacity: int,
                        held: Collection[str]) -> tuple[list[str], bool]:
        claimed: list[str] = []
        busy = False
        now = utcnow()
        for job_id in dict.fromkeys(r.job_id for r in rows):
            if capacity <= 0:
                break
            job = db.execute(select(Job.id, Job.current_version).where(Job.id == job_id)
                             .with_for_update(skip_locked=True, key_share=True)).first()
            if job is None:
                busy = True
                continue
            limit = db.scalar(select(JobVersion.max_concurrent_runs).where(
                JobVersion.job_id == job_id, JobVersion.version == job.current_version)) or 1
            active = db.scalar(select(func.count()).select_from(JobRun).where(
                JobRun.job_id == job_id, JobRun.status.in_(LEASED_STATES))) or 0
            free = min(limit - active, capacity)
            if free <= 0:
                continue
            now = utcnow()  # after the count: never earlier than the end that freed the slot
            ids = list(db.scalars(select(JobRun.id).where(JobRun.job_id == job_id, self._ready_clause(now, held))
                                  .order_by(JobRun.id).limit(free).with_for_update(skip_locked=True)))
            if ids:
                self._claim(db, ids, now)
                claimed += ids
                capacity -= len(ids)
        db.commit()
        return claimed, busy

    def _claim_sqlite(self, db: Session, rows: Sequence[Any], capacity: int) -> list[str]:
        active_run = aliased(JobRun)
        job, version = aliased(Job), aliased(JobVersion)
        claimed: list[str] = []
        full: set[str] = set()
        for run_id, job_id in rows:
            if capacity <= 0:
                break
            if job_id in full:
                continue
            active = (select(func.count()).select_from(active_run)
                      .where(active_run.job_id == job_id, active_run.status.in_(LEASED_STATES)).scalar_subquery())
            limit = (select(version.max_concurrent_runs)
                     .join(job, and_(job.id == version.job_id, job.current_version == version.version))
                     .where(job.id == job_id).scalar_subquery())
            # Take SQLite's write lock first (a no-op write), then read the clock: dispatchedAt is then never
            # earlier than the commit of the run whose end freed the slot.
            db.execute(update(JobRun).where(JobRun.id == run_id)
                       .values(lease_owner=JobRun.lease_owner, updated_at=JobRun.updated_at),
                       execution_options={"synchronize_session": False})
            now = utcnow()
            done = self._claim(db, run_id, now, self._past_backoff(now), active < limit)
            db.commit()
            if done:
                claimed.append(run_id)
                capacity -= 1
            else:
                full.add(job_id)
        return claimed

    def renew(self, run_ids: list[str]) -> dict[str, str]:
        """Extend our leases; which of `run_ids` we no longer hold, and why."""
        now = utcnow()
        with self._session() as db:
            db.execute(update(JobRun).where(JobRun.id.in_(run_ids), JobRun.lease_owner == self.owner,
                                            JobRun.status.in_(LEASED_STATES))
                       .values(lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                               updated_at=JobRun.updated_at),
                       execution_options={"synchronize_session": False})
            db.commit()
            rows = {r.id: (r.status, r.lease_owner) for r in db.execute(
                select(JobRun.id, JobRun.status, JobRun.lease_owner).where(JobRun.id.in_(run_ids)))}
        lost: dict[str, str] = {}
        for run_id in run_ids:
            found = rows.get(run_id)
            if found is None:
                lost[run_id] = "deleted"
            elif found[1] != self.owner:
                lost[run_id] = "taken over"
            elif found[0] not in LEASED_STATES:
                lost[run_id] = "cancelled"
        return lost

    def orphans(self, on_start: bool) -> list[tuple[str, int | None, str | None]]:
        """Claim (compare-and-set on the lease) runs whose holder is gone; their (id, pid, instance)."""
        now = utcnow()
        mine_before = and_(JobRun.lease_owner.like(f"{self.node_tag}:%"), JobRun.lease_owner != self.owner)
        # Never our own runs: a lease of ours that lapsed (a stalled loop) is renewed, not recovered.
        gone = and_(or_(JobRun.lease_expires_at.is_(None), JobRun.lease_expires_at < now),
                    or_(JobRun.lease_owner.is_(None), JobRun.lease_owner != self.owner))
        if on_start:
            gone = or_(gone, mine_before)
        found: list[tuple[str, int | None, str | None]] = []
        with self._session() as db:
            stmt = select(JobRun.id, JobRun.lease_owner, JobRun.lease_expires_at, JobRun.pid, JobRun.instance_id) \
                .where(JobRun.status.in_(LEASED_STATES), gone).order_by(JobRun.id).limit(100)
            rows = db.execute(self.dialect.skip_locked(stmt)).all()
            for row in rows:
                same_owner = JobRun.lease_owner.is_(None) if row.lease_owner is None \
                    else JobRun.lease_owner == row.lease_owner
                same_expiry = JobRun.lease_expires_at.is_(None) if row.lease_expires_at is None \
                    else JobRun.lease_expires_at == row.lease_expires_at
                result = db.execute(update(JobRun).where(JobRun.id == row.id, JobRun.status.in_(LEASED_STATES),
                                                         same_owner, same_expiry)
                                    .values(lease_owner=self.owner,
                                            lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                                            updated_at=JobRun.updated_at),
                                    execution_options={"synchronize_session": False})
                if result.rowcount:  # type: ignore[attr-defined]
                    found.append((row.id, row.pid, row.instance_id))
            db.commit()
        return found
