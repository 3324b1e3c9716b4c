"""Job runs: creating, listing, releasing, retrying, cancelling and deleting runs of a job.

Visibility is the job's (`sailplane.workloads.jobs.service.get_job`): organization admins and holders of
CanViewJobs organization-wide see every job's runs; others see the runs of jobs shared with a team
in which their team role grants CanViewJobs; anything else is 404 (also other organizations).
Acting on runs (create, release, retry, cancel, delete) needs CanRunJobs organization-wide or in one
of the job's teams (403).

`create_run` and `cancel_run` are also the scheduler's entry points: they add or change rows and
flush, and leave the commit (and the audit event) to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Principal
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.dialect import dialect_of
from sailplane.kit.errors import ApiError, conflict, forbidden, invalid, not_found
from sailplane.kit.ids import new_id
from sailplane.kit.pagination import MarkerPage, split_marker
from sailplane.tenancy.audit import service as audit
from sailplane.workloads.jobs.models import Job, JobTeam, JobVersion
from sailplane.workloads.jobs.service import get_job, get_job_with_current_version
from sailplane.workloads.runs import reads, states, team_listing
from sailplane.workloads.runs.models import JobRun
from sailplane.workloads.runs.reads import LISTED_COLUMNS, TOTAL_CAP, RunJson, run_id
from sailplane.workloads.runs.states import (
    ACTIVE_STATES,
    CANCELLED,
    LEASED_STATES,
    PENDING,
    READY,
    TERMINAL_STATES,
    UNCLAIMED_STATES,
    UNSUCCESSFUL_STATES,
)

VIEW, RUN = "CanViewJobs", "CanRunJobs"
CLEANUP_MODES = ("always", "on_success", "never")
render = reads.RUN_VIEW.render


# --- the scheduler's (and the API's) entry points -----------------------------------------------

def cleanup_mode_of(version: JobVersion) -> str:
    """`config.lakesail.resourceCleanupMode` (an additional Sail property) when it names a mode,
    else `always`."""
    mode = ((version.config or {}).get("lakesail") or {}).get("resourceCleanupMode")
    return mode if mode in CLEANUP_MODES else "always"


def create_run(db: Session, job: Job, version: JobVersion, *, trigger: str, parameters: dict[str, Any] | None = None,
               idempotency_key: str | None = None, scheduled_for: datetime | None = None, hold: bool = False,
               actor_id: str | None = None, resource_cleanup_mode: str | None = None) -> JobRun:
    """Add a run of `version` (`pending` when `hold`, else `ready` for the dispatcher), make it the
    job's latest run and flush. Does not commit. A duplicate (job, scheduled_for) or (job,
    idempotency_key) raises IntegrityError at the flush; callers handle it (the session is then
    unusable until rolled back)."""
    now = utcnow()
    run = JobRun(
        id=new_id(), organization_id=job.organization_id, job_id=job.id, job_version=version.version,
        status=PENDING if hold else READY, status_message=None,
        resource_cleanup_mode=resource_cleanup_mode or cleanup_mode_of(version), trigger=trigger,
        parameters=parameters or None, idempotency_key=idempotency_key, scheduled_for=scheduled_for, attempt=0,
        created_at=now, updated_at=now, created_by=actor_id, updated_by=actor_id,
    )
    db.add(run)
    db.flush()
    _point_latest(db, job, run.id)
    return run


def _point_latest(db: Session, job: Job, run_id: str | None) -> None:
    """Move the job's latest-run pointer; runs are not changes of the job's definition (updatedAt stays)."""
    db.execute(update(Job).where(Job.id == job.id).values(latest_run_id=run_id, updated_at=Job.updated_at),
               execution_options={"synchronize_session": False})
    set_committed_value(job, "latest_run_id", run_id)


def cancel_run(db: Session, run: JobRun, message: str, actor_id: str | None = None) -> bool:
    """Mark an active run cancelled (finished_at set); True when it was active. A run that never
    reached a dispatcher has nothing to clean (cleaned_at = now); for a dispatched one, the
    dispatcher holding its lease sees the change on its next renewal (within a second), stops the
    process and sets cleaned_at. Does not commit.

    The change is a conditional UPDATE (only while the run is still active), so it can never
    overwrite a terminal state a dispatcher wrote meanwhile; `run` is refreshed either way."""
    now = utcnow()
    values: dict[str, Any] = {"status_message": message}
    if actor_id is not None:
        values["updated_by"] = actor_id
    # Never dispatched: no process, no Sail instance, nothing left to clean.
    changed = bool(states.transition(db, run.id, CANCELLED, source=UNCLAIMED_STATES,
                                     values={**values, "cleaned_at": now}, now=now))
    if not changed:
        changed = bool(states.transition(db, run.id, CANCELLED, source=LEASED_STATES, values=values, now=now))
    db.refresh(run)
    return changed


# --- visibility and permissions ---------------------------------------------------------------

def _job_team_ids(db: Session, job_id: str) -> list[str]:
    return list(db.scalars(select(JobTeam.team_id).where(JobTeam.job_id == job_id)))


def _require_run_permission(db: Session, principal: Principal, job: Job) -> None:
    if principal.has(RUN):
        return
    if not any(principal.has(RUN, t) for t in _job_team_ids(db, job.id)):
        raise forbidden(f"This operation needs the {RUN} permission in one of the job's teams.")


def _current_version(db: Session, job: Job) -> JobVersion:
    version = db.scalar(select(JobVersion).where(JobVersion.job_id == job.id,
                                                 JobVersion.version == job.current_version))
    if version is None:  # a job always has its current version; guard against a concurrent delete
        raise not_found("job")
    return version


def _get_run(db: Session, job: Job, run_id: str) -> JobRun:
    run = db.scalar(select(JobRun).where(JobRun.id == run_id, JobRun.job_id == job.id))
    if run is None:
        raise not_found("job run")
    return run


def _state_conflict(run: JobRun, wanted: str) -> ApiError:
    return conflict("invalid_run_state", f"The job run is {run.status}; {wanted}.")


# --- listings ---------------------------------------------------------------------------------

@dataclass
class RunPage:
    """A page of runs (newest first, as JobRunView JSON: runs.reads), the next marker, and the jobs they
    belong to (with their current versions). `total` is counted on the first page only, up to TOTAL_CAP;
    None when not counted or above it: no page ever counts a whole table."""

    total: int | None
    runs: list[RunJson]
    marker: str | None
    jobs: list[tuple[Job, JobVersion]] = field(default_factory=list)


def _page(db: Session, scope: str, params: dict[str, Any], page: MarkerPage) -> RunPage:
    """One page of the scope's runs, without the jobs (the callers know how to get those)."""
    statements = reads.page_statements(scope)
    values = {**params, "limit": page.limit + 1}
    if page.marker is not None:
        rows = [render(r) for r in db.execute(statements.after, {**values, "marker": page.marker})]
        runs, marker = split_marker(rows, page, key=run_id)
        return RunPage(None, runs, marker)
    found = db.execute(statements.first, values).all()
    runs, marker = split_marker([render(r) for r in found], page, key=run_id)  # render skips the total
    return RunPage(_first_page_total(runs, marker, lambda: found[0].total), runs, marker)


def _team_page(db: Session, params: dict[str, Any], page: MarkerPage) -> RunPage:
    """As _page, for the runs of the jobs shared with params["team_ids"] (see runs.team_listing)."""
    conn = db.connection()
    found = team_listing.statements(LISTED_COLUMNS, TOTAL_CAP, dialect_of(conn))
    values = {**params, "limit": page.limit + 1, "marker": page.marker}
    rows = team_listing.fetch(conn, found, values, render, key=run_id)
    runs, marker = split_marker(rows, page, key=run_id)
    if page.marker is not None:
        return RunPage(None, runs, marker)
    return RunPage(_first_page_total(runs, marker, lambda: conn.execute(found.total, values).scalar_one()),
                   runs, marker)


def _first_page_total(runs: list[RunJson], marker: str | None, capped_count: Callable[[], int]) -> int | None:
    """With no next page the page itself is the total; else the capped count (None above TOTAL_CAP)."""
    counted = capped_count() if marker is not None else len(runs)
    return counted if counted <= TOTAL_CAP else None


def list_job_runs(db: Session, principal: Principal, job_id: str, page: MarkerPage) -> RunPage:
    """The job's runs, newest first (keyset pagination on (job_id, id)). The job and its current
    version come with the visibility check, in one query."""
    job, version = get_job_with_current_version(db, principal, job_id)
    result = _page(db, "job", {"job_id": job.id}, page)
    result.jobs = [(job, version)] if result.runs else []
    return result


def list_my_runs(db: Session, principal: Principal, page: MarkerPage) -> RunPage:
    """Runs of every job the caller can view, newest first (keyset pagination on id): every run for
    organization admins and org-wide viewers (on (organization_id, id)), else the runs of jobs shared
    with a team in which the caller's role grants CanViewJobs (the jobs package's rule; per job on
    (job_id, id), see runs.team_listing)."""
    params: dict[str, Any] = {"org_id": principal.organization_id}
    if authz.sees_all(principal, VIEW):
        result = _page(db, "org", params, page)
    else:
        params["team_ids"] = sorted(authz.teams_granting(principal, VIEW))
        result = _team_page(db, params, page) if params["team_ids"] else RunPage(0, [], None)
    job_ids = sorted({r["jobId"] for r in result.runs})
    if job_ids:
        result.jobs = [(j, v) for j, v in db.execute(reads.JOBS_WITH_VERSIONS, {"job_ids": job_ids})]
    return result


def describe_run(db: Session, principal: Principal, job_id: str, run_id: str) -> JobRun:
    return _get_run(db, get_job(db, principal, job_id), run_id)


# --- changes ----------------------------------------------------------------------------------

def _overrides(version: JobVersion, parameters: Sequence[Sequence[str]] | None,
               named_parameters: dict[str, str] | None) -> dict[str, Any] | None:
    """The run's parameter override as stored. SQL jobs bind named parameters only."""
    if parameters is not None and version.job_type == "sql":
        raise invalid("parameters", "SQL jobs take namedParameters only (bound to :name markers)")
    out: dict[str, Any] = {}
    if parameters is not None:
        out["parameters"] = [list(group) for group in parameters]
    if named_parameters is not None:
        out["namedParameters"] = dict(named_parameters)
    return out or None


def _by_key(db: Session, job: Job, key: str) -> JobRun | None:
    return db.scalar(select(JobRun).where(JobRun.job_id == job.id, JobRun.idempotency_key == key))


def _replay(run: JobRun, overrides: dict[str, Any] | None) -> JobRun:
    if (run.parameters or None) != overrides:
        raise invalid("Idempotency-Key", "this key was already used for a run with different parameters")
    return run


def start_run(db: Session, principal: Principal, job_id: str, *, parameters: Sequence[Sequence[str]] | None,
              named_parameters: dict[str, str] | None, hold: bool, resource_cleanup_mode: str | None,
              idempotency_key: str | None, ctx: RequestContext) -> tuple[JobRun, bool]:
    """A manual run of the job's current version; (run, created). With an idempotency key that was
    used before for this job, the original run is returned instead (created False); two concurrent
    requests with one key race on the (job_id, idempotency_key) unique constraint, and the loser
    returns the winner's run."""
    job = get_job(db, principal, job_id)
    _require_run_permission(db, principal, job)
    version = _current_version(db, job)
    overrides = _overrides(version, parameters, named_parameters)
    if idempotency_key is not None:
        existing = _by_key(db, job, idempotency_key)
        if existing is not None:
            return _replay(existing, overrides), False
    try:
        run = create_run(db, job, version, trigger="manual", parameters=overrides, idempotency_key=idempotency_key,
                         hold=hold, actor_id=principal.actor_id, resource_cleanup_mode=resource_cleanup_mode)
        audit.record(db, ctx, principal, "job_run.create", "job_run", run.id,
                     details={"jobId": job.id, "jobKey": job.job_key, "jobVersion": version.version,
                              "status": run.status, "idempotencyKey": idempotency_key is not None})
        db.flush()
    except IntegrityError:
        db.rollback()
        if idempotency_key is None:
            raise
        existing = _by_key(db, job, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, overrides), False
    return run, True


def _transition(db: Session, run: JobRun, target: str, allowed: Sequence[str], values: dict[str, Any],
                now: datetime) -> bool:
    """states.transition (only while the run is in one of `allowed`: a dispatcher may be changing it
    concurrently), then refresh `run`; True when it changed."""
    changed = bool(states.transition(db, run.id, target, source=allowed, values=values, now=now))
    db.refresh(run)
    return changed


def release_run(db: Session, principal: Principal, job_id: str, run_id: str, ctx: RequestContext) -> JobRun:
    """pending → ready; 409 in any other state."""
    job = get_job(db, principal, job_id)
    _require_run_permission(db, principal, job)
    run = _get_run(db, job, run_id)
    now = utcnow()
    if not _transition(db, run, READY, (PENDING,), {"updated_by": principal.actor_id}, now):
        db.rollback()
        raise _state_conflict(run, "only pending runs can be released")
    audit.record(db, ctx, principal, "job_run.release", "job_run", run.id, details={"jobId": job.id})
    db.flush()
    return run


def retry_run(db: Session, principal: Principal, job_id: str, run_id: str, hold: bool,
              ctx: RequestContext) -> JobRun:
    """Run a failed, timed-out or cancelled run again: same ID, version, parameters and source commit;
    attempt + 1, trigger `retry`; the previous attempt's timestamps and results are cleared
    (createdAt stays)."""
    job = get_job(db, principal, job_id)
    _require_run_permission(db, principal, job)
    run = _get_run(db, job, run_id)
    now = utcnow()
    values = {**states.attempt_reset(message=None, next_attempt=JobRun.attempt + 1), "updated_by": principal.actor_id}
    previous = run.status
    if not _transition(db, run, PENDING if hold else READY, UNSUCCESSFUL_STATES, values, now):
        db.rollback()
        raise _state_conflict(run, "only failed, timed-out or cancelled runs can be retried")
    audit.record(db, ctx, principal, "job_run.retry", "job_run", run.id,
                 details={"jobId": job.id, "previousStatus": previous, "attempt": run.attempt, "hold": hold})
    db.flush()
    return run


def cancel_active_run(db: Session, principal: Principal, job_id: str, run_id: str, ctx: RequestContext) -> JobRun:
    """Cancel a pending, ready or executing run; 409 once it has ended."""
    job = get_job(db, principal, job_id)
    _require_run_permission(db, principal, job)
    run = _get_run(db, job, run_id)
    previous = run.status
    if not cancel_run(db, run, "cancelled by a user", principal.actor_id):
        db.rollback()
        raise _state_conflict(run, "only pending, ready or running runs can be cancelled")
    audit.record(db, ctx, principal, "job_run.cancel", "job_run", run.id,
                 details={"jobId": job.id, "previousStatus": previous})
    db.flush()
    return run


def delete_run(db: Session, principal: Principal, job_id: str, run_id: str, ctx: RequestContext) -> None:
    """Remove a finished run (succeeded, failed, timeout, cancelled); 409 while it is active.
    Its results stay on disk; the caller removes its log (files.remove_run_files) after this."""
    job = get_job(db, principal, job_id)
    _require_run_permission(db, principal, job)
    run = _get_run(db, job, run_id)
    result = db.execute(delete(JobRun).where(JobRun.id == run.id, JobRun.status.in_(TERMINAL_STATES)))
    if not result.rowcount:  # type: ignore[attr-defined]
        db.rollback()
        db.refresh(run)
        raise _state_conflict(run, "only finished runs (succeeded, failed, timeout, cancelled) can be deleted")
    if job.latest_run_id == run.id:
        _point_latest(db, job, db.scalar(select(func.max(JobRun.id)).where(JobRun.job_id == job.id)))
    audit.record(db, ctx, principal, "job_run.delete", "job_run", run.id,
                 details={"jobId": job.id, "status": run.status})
    db.flush()


def run_for_logs(db: Session, principal: Principal, job_id: str, run_id: str) -> JobRun:
    """The run whose log the caller may read (CanViewJobs, like describing it)."""
    return describe_run(db, principal, job_id, run_id)


# --- deleting a job ---------------------------------------------------------------------------

def cancel_runs_of_deleted_job(db: Session, job: Job) -> None:
    """deleteJob (jobs.router passes this to jobs.service.delete_job): active runs are cancelled first (their
    rows then go with the job); dispatchers notice the vanished rows on their next lease renewal and stop the
    processes."""
    for run in list(db.scalars(select(JobRun).where(JobRun.job_id == job.id, JobRun.status.in_(ACTIVE_STATES)))):
        cancel_run(db, run, "the job was deleted")

