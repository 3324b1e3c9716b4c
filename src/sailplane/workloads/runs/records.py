"""What the steps of a run this process holds write to the database (blocking; the loop calls it
in worker threads): waiting for Sail, running, the end, an automatic retry, a requeue on a
graceful stop, the recovery of a run whose server stopped, and `cleanedAt`. Every status change
goes through `states.transition` and is conditional on our lease, so a run cancelled, deleted or
taken over meanwhile is never overwritten."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.workloads.jobs.models import JobVersion
from sailplane.workloads.runs import states
from sailplane.workloads.runs.execution import Outcome
from sailplane.workloads.runs.executor import RunDriver
from sailplane.workloads.runs.models import JobRun
from sailplane.workloads.runs.states import (
    CANCELLED,
    DISPATCHED,
    FAILED,
    LEASED_STATES,
    READY,
    RUNNING,
    TERMINAL_STATES,
    WAITING_FOR_SAIL,
)

SERVER_STOPPED = "server stopped during the run"
_MESSAGE_LIMIT = 8000


def clip(message: str | None) -> str | None:
    if message is None or len(message) <= _MESSAGE_LIMIT:
        return message
    return message[: _MESSAGE_LIMIT - 1] + "…"


class RunRecords:
    """The database side of the runs one server process (`owner`) holds."""

    def __init__(self, db: Database, *, owner: str, node_tag: str, retry_backoff: float) -> None:
        self.db = db
        self.owner = owner
        self.node_tag = node_tag
        self.retry_backoff = retry_backoff

    def _session(self) -> Session:
        return self.db.session()

    def waiting_for_sail(self, run_id: str, instance_id: str | None = None) -> bool:
        return self.transition(run_id, WAITING_FOR_SAIL, (DISPATCHED,),
                               {} if instance_id is None else {"instance_id": instance_id})

    def update_fields(self, run_id: str, values: dict[str, Any]) -> bool:
        """Fields other than the status of a run we hold."""
        with self._session() as db:
            result = db.execute(update(JobRun).where(JobRun.id == run_id, JobRun.lease_owner == self.owner,
                                                     JobRun.status.in_(LEASED_STATES))
                                .values(**values, updated_at=utcnow()),
                                execution_options={"synchronize_session": False})
            db.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def transition(self, run_id: str, target: str, source: Sequence[str], values: dict[str, Any]) -> bool:
        """states.transition of a run we hold (our lease), committed."""
        with self._session() as db:
            done = states.transition(db, run_id, target, source=source, values=values,
                                     where=(JobRun.lease_owner == self.owner,))
            db.commit()
            return bool(done)

    def record_commit(self, run_id: str, commit: str) -> None:
        """The commit a run checked out, on the run (its retries run the same code) and as the
        `sourceConfig.snapshotCommit` of its job version: the code the version last ran, as
        Databricks' `git_snapshot.used_commit` reports it."""
        if not self.update_fields(run_id, {"snapshot_commit": commit}):
            return
        with self._session() as db:
            row = db.execute(select(JobRun.job_id, JobRun.job_version).where(JobRun.id == run_id)).first()
            if row is None:
                return
            version = db.scalar(select(JobVersion).where(JobVersion.job_id == row.job_id,
                                                         JobVersion.version == row.job_version))
            if version is not None and version.source_config is not None:
                version.source_config = {**version.source_config, "snapshotCommit": commit}
                db.commit()

    def running(self, run_id: str, process: RunDriver, instance_id: str | None) -> bool:
        return self.transition(run_id, RUNNING, (DISPATCHED, WAITING_FOR_SAIL),
                               {"runner_started_at": process.runner_started_at, "pid": process.pid,
                                "instance_id": instance_id})

    def final(self, run_id: str, status: str, message: str | None, outcome: Outcome | None,
              cancelled: bool) -> bool:
        """The run's end. A run cancelled meanwhile keeps its status and message; the runner's times
        are recorded either way."""
        now = utcnow()
        values: dict[str, Any] = {"lease_expires_at": None, "pid": None}
        if outcome is not None:
            values.update(runner_started_at=outcome.runner_started_at, runner_completed_at=outcome.runner_completed_at,
                          runner_execution_time_us=outcome.runner_execution_time_us, output_path=outcome.output_path)
        with self._session() as db:
            done = states.transition(db, run_id, status, source=LEASED_STATES, now=now,
                                     values={**values, "status_message": clip(message)},
                                     where=(JobRun.lease_owner == self.owner,))
            if not done:
                db.execute(update(JobRun).where(JobRun.id == run_id, JobRun.lease_owner == self.owner,
                                                JobRun.status == CANCELLED).values(**values, updated_at=now),
                           execution_options={"synchronize_session": False})
            db.commit()
            return bool(done) or cancelled

    def _back_to_ready(self, db: Session, run_id: str, values: dict[str, Any], now: datetime) -> None:
        """A run we hold back to the queue (values: states.attempt_reset)."""
        states.transition(db, run_id, READY, source=LEASED_STATES, values=values, now=now,
                          where=(JobRun.lease_owner == self.owner,))

    def retry_later(self, run_id: str, attempt: int, status: str, message: str | None, delay: float) -> None:
        now = utcnow()
        note = f"attempt {attempt + 1} ended {status}; retrying in {delay:g} s"
        values = states.attempt_reset(message=clip(f"{note}: {message}" if message else note),
                                      next_attempt=attempt + 1, not_before=now + timedelta(seconds=delay))
        with self._session() as db:
            self._back_to_ready(db, run_id, values, now)
            db.commit()

    def requeue(self, run_id: str) -> None:
        """Graceful stop: back to ready with the same attempt, for this or another server."""
        now = utcnow()
        values = states.attempt_reset(message="requeued: the server stopped while the run was executing")
        with self._session() as db:
            self._back_to_ready(db, run_id, values, now)
            db.commit()

    def cleaned(self, run_id: str, instance_id: str | None) -> None:
        """cleanedAt, unless the run has started another attempt (with another instance) meanwhile."""
        now = utcnow()
        with self._session() as db:
            stmt = update(JobRun).where(JobRun.id == run_id, JobRun.status.in_(TERMINAL_STATES),
                                        JobRun.cleaned_at.is_(None))
            if instance_id is not None:
                stmt = stmt.where(or_(JobRun.instance_id == instance_id, JobRun.instance_id.is_(None)))
            db.execute(stmt.values(cleaned_at=now, updated_at=now), execution_options={"synchronize_session": False})
            db.commit()

    def instances_in_use(self, run_ids: list[str]) -> dict[str, str | None]:
        """For retained instances: which instance each (still existing, still finished) run points at."""
        with self._session() as db:
            return {r.id: r.instance_id for r in db.execute(
                select(JobRun.id, JobRun.instance_id).where(JobRun.id.in_(run_ids),
                                                            JobRun.status.in_(TERMINAL_STATES)))}

    def recovered(self, run_id: str) -> str:
        """Retry (when attempts remain) or fail a run whose server stopped during it."""
        now = utcnow()
        with self._session() as db:
            run = db.get(JobRun, run_id)
            if run is None or run.lease_owner != self.owner or run.status not in LEASED_STATES:
                return run.status if run is not None else "deleted"
            version = db.scalar(select(JobVersion).where(JobVersion.job_id == run.job_id,
                                                         JobVersion.version == run.job_version))
            max_retries = int((((version.config if version else None) or {}).get("lakesail") or {})
                              .get("maxRetries") or 0)
            if run.attempt < max_retries:
                delay = min(60.0, self.retry_backoff * (2 ** run.attempt))
                values = states.attempt_reset(message=clip(f"{SERVER_STOPPED}; retrying in {delay:g} s"),
                                              next_attempt=run.attempt + 1, not_before=now + timedelta(seconds=delay))
                status = READY
            else:
                values = {"status_message": SERVER_STOPPED, "cleaned_at": now, "lease_expires_at": None, "pid": None}
                if run.runner_started_at is not None:
                    values.update(runner_completed_at=now, runner_execution_time_us=int(
                        (now - run.runner_started_at).total_seconds() * 1_000_000))
                status = FAILED
            states.transition(db, run_id, status, source=LEASED_STATES, values=values, now=now,
                              where=(JobRun.lease_owner == self.owner,))
            db.commit()
            return status

    def clean_previous_life(self) -> None:
        """Finished runs of this node whose kept instances died with the previous process (the session
        controller stops every Sail process of this node that no record owns when it starts)."""
        now = utcnow()
        with self._session() as db:
            db.execute(update(JobRun).where(JobRun.lease_owner.like(f"{self.node_tag}:%"),
                                            JobRun.lease_owner != self.owner,
                                            JobRun.status.in_(TERMINAL_STATES), JobRun.cleaned_at.is_(None))
                       .values(cleaned_at=now, updated_at=JobRun.updated_at),
                       execution_options={"synchronize_session": False})
            db.commit()
