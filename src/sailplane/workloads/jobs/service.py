"""Job definitions: jobs, their versions and drafts, and the teams they are shared with.

Visibility follows catalogs and queries: organization admins (roles with allTeams) and holders of
CanViewJobs organization-wide see every job of the organization; everyone else sees the jobs
shared with a team in which their team role grants CanViewJobs. Anything else is 404. Changing a
job needs CanManageJobs organization-wide or in one of the job's teams (403).

A job always has a current, published version; at most one draft; and `next_run_at`, kept here
whenever the current version or the status changes (None while paused or without a schedule).

References (saved query and its catalog, dependsOn keys, cluster) must be visible to the caller,
else they are answered exactly like unknown ones (422 naming the field), and shared with one of the
job's teams, who see the runs' output; the dispatcher and the scheduler check the sharing again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from croniter import CroniterError
from sqlalchemy import Select, and_, delete, func, select
from sqlalchemy.orm import Session

from sailplane.compute import registry as compute_registry
from sailplane.data.models import Query
from sailplane.data.service import CATALOGS, QUERIES, find_visible, shared_with
from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Principal
from sailplane.infra.clusters.service import LOCAL_CLUSTER_ID, Cluster, cluster_for_teams, local_cluster
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.errors import ApiError, conflict, forbidden, invalid, not_found
from sailplane.kit.pagination import PageRequest, count
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org.service import ordered, page_total, paged
from sailplane.tenancy.teams.models import Team
from sailplane.tenancy.teams.service import get_team, with_member_counts
from sailplane.workloads.jobs import schedule
from sailplane.workloads.jobs.models import ACTIVE, DRAFT, PUBLISHED, Job, JobTeam, JobVersion
from sailplane.workloads.jobs.schemas import (
    CreateJobRequest,
    UpdateJobRequest,
    VersionFields,
    stored_config,
    stored_source_config,
)
from sailplane.workloads.runs.models import JobRun

VIEW, MANAGE = "CanViewJobs", "CanManageJobs"
_S = TypeVar("_S", bound=Select)  # type: ignore[type-arg]
# The versioned settings, in the order the seed lists them; the first two must never be null.
VERSION_FIELDS = ("cluster_id", "config", "description", "timeout_seconds", "source_config", "depends_on",
                  "cron_expression", "cron_timezone", "concurrency_policy", "max_concurrent_runs",
                  "missed_schedule_policy")
REQUIRED_VERSION_FIELDS = ("cluster_id", "config", "depends_on", "concurrency_policy", "max_concurrent_runs",
                           "missed_schedule_policy")
WIRE_NAMES = {"cluster_id": "clusterId", "config": "config", "description": "description",
              "timeout_seconds": "timeoutSeconds", "source_config": "sourceConfig", "depends_on": "dependsOn",
              "cron_expression": "cronExpression", "cron_timezone": "cronTimezone",
              "concurrency_policy": "concurrencyPolicy", "max_concurrent_runs": "maxConcurrentRuns",
              "missed_schedule_policy": "missedSchedulePolicy"}


@dataclass
class JobListing:
    """Jobs in order, each with the version shown, its team IDs and latest run, plus the teams."""

    total: int
    jobs: list[tuple[Job, JobVersion]]
    team_ids: dict[str, list[str]]
    latest_runs: dict[str, JobRun] = field(default_factory=dict)
    teams: list[Team] = field(default_factory=list)


# --- the query check deleteQuery runs (data.router passes it to data.service) -----------------

def active_jobs_using_query(db: Session, principal: Principal, query_id: str) -> list[str | None]:
    """Keys of active jobs whose current version runs the saved query (deleteQuery answers 409),
    None for each job the caller may not see."""
    org_id = db.scalar(select(Query.organization_id).where(Query.id == query_id))
    if org_id is None:
        return []
    rows = db.execute(_with_current_version(select(Job.job_key, JobVersion.config, authz.jobs_visible_to(principal)))
                      .where(Job.organization_id == org_id, Job.status == ACTIVE, JobVersion.job_type == "sql")
                      .order_by(Job.job_key))
    return [key if visible else None for key, config, visible in rows
            if ((config or {}).get("sql") or {}).get("queryId") == query_id]


# --- visibility and permissions ---------------------------------------------------------------

def _with_current_version(stmt: _S) -> _S:
    return stmt.join(JobVersion, and_(JobVersion.job_id == Job.id, JobVersion.version == Job.current_version))


def _visible(principal: Principal, stmt: _S) -> _S:
    return stmt.where(Job.organization_id == principal.organization_id, authz.jobs_visible_to(principal))


def get_job(db: Session, principal: Principal, job_id: str, *, lock: bool = False) -> Job:
    """The job if the caller may see it; 404 otherwise (also for other organizations)."""
    stmt = _visible(principal, select(Job)).where(Job.id == job_id)
    if lock:
        stmt = stmt.with_for_update()
    job = db.scalar(stmt)
    if job is None:
        raise not_found("job")
    return job


def get_job_with_current_version(db: Session, principal: Principal, job_id: str) -> tuple[Job, JobVersion]:
    """`get_job` and the job's current version in one query (the run listing shows both)."""
    found = db.execute(_with_current_version(_visible(principal, select(Job, JobVersion))).where(Job.id == job_id))
    row = found.first()
    if row is None:
        raise not_found("job")
    return row[0], row[1]


def _team_ids(db: Session, job_ids: Iterable[str]) -> dict[str, list[str]]:
    wanted = list(dict.fromkeys(job_ids))
    result: dict[str, list[str]] = {i: [] for i in wanted}
    if wanted:
        rows = db.execute(select(JobTeam.job_id, JobTeam.team_id).where(JobTeam.job_id.in_(wanted))
                          .order_by(JobTeam.created_at, JobTeam.team_id))
        for job_id, team_id in rows:
            result[job_id].append(team_id)
    return result


def _require_manage(db: Session, principal: Principal, job: Job) -> list[str]:
    teams = _team_ids(db, [job.id])[job.id]
    if not authz.may_in_any(principal, MANAGE, teams):
        raise forbidden(f"This operation needs the {MANAGE} permission in one of the job's teams.")
    return teams


def _check_teams(db: Session, principal: Principal, team_ids: Sequence[str], *, must_manage: bool) -> list[str]:
    """Teams must be in this organization and visible to the caller (else 422, revealing nothing);
    with `must_manage`, the caller needs CanManageJobs in each (else 403)."""
    wanted = list(dict.fromkeys(team_ids))
    found = set(db.scalars(select(Team.id).where(Team.organization_id == principal.organization_id,
                                                 Team.id.in_(wanted))))
    unknown = [t for t in wanted if t not in found or not authz.may_name_team(principal, VIEW, MANAGE, t)]
    if unknown:
        raise invalid("teamIds", f"unknown team {', '.join(unknown)}")
    if must_manage:
        denied = [t for t in wanted if not principal.has(MANAGE, t)]
        if denied:
            raise forbidden(f"This operation needs the {MANAGE} permission in team {', '.join(denied)}.")
    return wanted


def _touch(record: Any, principal: Principal) -> None:
    record.updated_at = utcnow()
    record.updated_by = principal.actor_id


# --- versions: merging and validating ---------------------------------------------------------

def _fields_from_request(body: VersionFields | CreateJobRequest, names: Iterable[str]) -> dict[str, Any]:
    """The given version fields in stored form (config and sourceConfig as wire-named JSON)."""
    out: dict[str, Any] = {}
    for name in names:
        if name not in VERSION_FIELDS:
            continue
        value = getattr(body, name)
        if value is None:
            if name in REQUIRED_VERSION_FIELDS:
                raise invalid(WIRE_NAMES[name], "must not be null")
            out[name] = None
        elif name == "config":
            out[name] = stored_config(value)
        elif name == "source_config":
            out[name] = stored_source_config(value)
        elif name == "depends_on":
            out[name] = [{"jobKey": key} for key in dict.fromkeys(d.job_key for d in value)]
        else:
            out[name] = value
    return out


def _fields_of(version: JobVersion) -> dict[str, Any]:
    fields = {name: getattr(version, name) for name in VERSION_FIELDS}
    source = fields.get("source_config")
    if source is not None and "snapshotCommit" in source:
        # The commit a version's runs used belongs to that version: a new version has not run yet.
        fields["source_config"] = {k: v for k, v in source.items() if k != "snapshotCommit"}
    return fields


def _job_type(config: dict[str, Any]) -> str:
    return "sql" if config.get("sql") is not None else "python"


def _cluster(principal: Principal, cluster_id: str) -> Cluster | None:
    """The organization's cluster with this ID (only the built-in local cluster for now)."""
    return local_cluster(principal) if cluster_id == LOCAL_CLUSTER_ID else None


def _keys_shared_with(db: Session, org_id: str, keys: Sequence[str], team_ids: Sequence[str]) -> set[str]:
    """Which of the job keys name a job shared with at least one of the teams."""
    shared = select(JobTeam.job_id).where(JobTeam.team_id.in_(list(team_ids)))
    return set(db.scalars(select(Job.job_key).where(Job.organization_id == org_id, Job.job_key.in_(list(keys)),
                                                    Job.id.in_(shared))))


def _check_dependencies(db: Session, principal: Principal, job_key: str, job_id: str | None, keys: list[str],
                        team_ids: Sequence[str]) -> None:
    """Every key names another job the caller can see (else "unknown", as for a key nobody has)
    that is shared with one of this job's teams (the scheduler follows no other dependency), and
    no chain of current versions' dependencies leads back to this job."""
    if not keys:
        return
    if job_key in keys:
        raise invalid("dependsOn", f"a job cannot depend on itself ({job_key})")
    org_id = principal.organization_id
    rows = db.execute(_with_current_version(select(Job.id, Job.job_key, JobVersion.depends_on))
                      .where(Job.organization_id == org_id))
    graph = {key: [d.get("jobKey", "") for d in (deps or [])] for jid, key, deps in rows if jid != job_id}
    visible = set(db.scalars(_visible(principal, select(Job.job_key)).where(Job.job_key.in_(keys))))
    missing = [k for k in keys if k not in graph or k not in visible]
    if missing:
        raise invalid("dependsOn", f"unknown job key {', '.join(missing)}")
    shared = _keys_shared_with(db, org_id, keys, team_ids)
    unshared = [k for k in keys if k not in shared]
    if unshared:
        raise invalid("dependsOn", f"job {', '.join(unshared)} is not shared with any of this job's teams")
    # Depth-first from each dependency; reaching this job's key closes a cycle.
    for start in keys:
        stack: list[tuple[str, list[str]]] = [(start, [job_key, start])]
        seen: set[str] = set()
        while stack:
            key, path = stack.pop()
            if key == job_key:
                # Jobs on the way that the caller cannot see are not named.
                known = set(db.scalars(_visible(principal, select(Job.job_key)).where(Job.job_key.in_(path))))
                shown = [k if k in known or k == job_key else "(a job you cannot see)" for k in path]
                raise invalid("dependsOn", f"would create a dependency cycle: {' -> '.join(shown)}")
            if key in seen:
                continue
            seen.add(key)
            for nxt in graph.get(key, []):
                stack.append((nxt, [*path, nxt]))


def _check_query(db: Session, principal: Principal, query_id: str, team_ids: Sequence[str]) -> None:
    """The saved query is one the caller can see (else "unknown", as for an ID nobody has), and it
    and its catalog are shared with one of the job's teams: the runs check the same before they
    start, so a job never shows its teams a query, rows or catalog settings that are not theirs."""
    field_name = "config.sql.queryId"
    query: Query | None = find_visible(db, principal, QUERIES, query_id)
    if query is None:
        raise invalid(field_name, f"unknown query {query_id}")
    if not shared_with(db, QUERIES, query.id, team_ids):
        raise invalid(field_name, f"the query {query_id} is not shared with any of the job's teams")
    if query.catalog_id is not None and not shared_with(db, CATALOGS, query.catalog_id, team_ids):
        raise invalid(field_name, f"the catalog of query {query_id} is not shared with any of the job's teams")


def _validate_version(db: Session, principal: Principal, fields: dict[str, Any], job_key: str,
                      job_id: str | None, team_ids: Sequence[str]) -> None:
    """What the request schema cannot know: the cluster, the saved query, the schedule, dependencies.
    References must be visible to the caller and usable by the job's teams; an invisible one is
    answered exactly like one that does not exist."""
    cluster = cluster_for_teams(db, principal, fields["cluster_id"], team_ids)
    if cluster.status != "active":
        raise invalid("clusterId", f"the cluster is {cluster.status}, not active")
    lakesail = fields["config"].get("lakesail") or {}
    problem = compute_registry.limitation(cluster.id, lakesail.get("lakesailImageUri"), lakesail.get("libraries") or [])
    if problem is not None:
        raise invalid(f"config.lakesail.{problem[0]}", problem[1])
    query_id = (fields["config"].get("sql") or {}).get("queryId")
    if query_id is not None:
        _check_query(db, principal, query_id, team_ids)
    if fields["cron_timezone"] is not None:
        try:
            schedule.zone(fields["cron_timezone"])
        except schedule.ScheduleError as exc:
            raise invalid("cronTimezone", str(exc)) from exc
    if fields["cron_expression"] is not None:
        try:
            schedule.validate(fields["cron_expression"], fields["cron_timezone"], utcnow())
        except schedule.ScheduleError as exc:
            raise invalid("cronExpression", str(exc)) from exc
    _check_dependencies(db, principal, job_key, job_id, [d["jobKey"] for d in fields["depends_on"]], team_ids)


def _new_version(job: Job, number: int, fields: dict[str, Any], status: str, based_on: int | None,
                 principal: Principal) -> JobVersion:
    member = principal.actor_id
    return JobVersion(job_id=job.id, version=number, based_on_version=based_on, status=status,
                      job_type=_job_type(fields["config"]), member_id=member, created_by=member, updated_by=member,
                      **fields)


def _refresh_schedule(job: Job, version: JobVersion, now: datetime | None = None) -> None:
    """next_run_at: the next cron time while the job is active and its current version has a schedule."""
    job.next_run_at = None
    if job.status == ACTIVE and version.cron_expression:
        try:
            job.next_run_at = schedule.next_fire(version.cron_expression, version.cron_timezone, now or utcnow())
        except (CroniterError, schedule.ScheduleError):
            job.next_run_at = None


def _version(db: Session, job: Job, number: int | None) -> JobVersion | None:
    if number is None:
        return None
    return db.scalar(select(JobVersion).where(JobVersion.job_id == job.id, JobVersion.version == number))


def current_version(db: Session, job: Job) -> JobVersion:
    found = _version(db, job, job.current_version)
    assert found is not None, "a job always has its current version"
    return found


def _next_number(db: Session, job: Job) -> int:
    return int(db.scalar(select(func.max(JobVersion.version)).where(JobVersion.job_id == job.id)) or 0) + 1


def _check_unique_key(db: Session, org_id: str, key: str, exclude: str | None = None) -> None:
    stmt = select(Job.id).where(Job.organization_id == org_id, Job.job_key == key)
    if exclude is not None:
        stmt = stmt.where(Job.id != exclude)
    if db.scalar(stmt.limit(1)) is not None:
        raise conflict("job_key_taken", f"A job with the key {key} already exists in the organization.")


def _dependents(db: Session, org_id: str, key: str, exclude: str) -> list[str]:
    rows = db.execute(_with_current_version(select(Job.id, Job.job_key, JobVersion.depends_on))
                      .where(Job.organization_id == org_id, Job.id != exclude))
    return sorted(k for _, k, deps in rows if any(d.get("jobKey") == key for d in (deps or [])))


# --- listings ---------------------------------------------------------------------------------

def _listing(db: Session, principal: Principal, rows: Sequence[Any], total: int) -> JobListing:
    jobs = [(row[0], row[1]) for row in rows]
    ids = [job.id for job, _ in jobs]
    team_ids = _team_ids(db, ids)
    latest: dict[str, JobRun] = {}
    if ids:
        newest = select(func.max(JobRun.id)).where(JobRun.job_id.in_(ids)).group_by(JobRun.job_id)
        latest = {run.job_id: run for run in db.scalars(select(JobRun).where(JobRun.id.in_(newest)))}
    # Team details follow team visibility; the IDs themselves are part of the job.
    shown = sorted({t for ts in team_ids.values() for t in ts if principal.can_see_team(t)})
    teams = list(db.scalars(select(Team).where(Team.id.in_(shown)).order_by(Team.id))) if shown else []
    return JobListing(total, jobs, team_ids, latest, teams)


def _jobs_stmt(principal: Principal) -> Select[Job, JobVersion]:
    return _visible(principal, _with_current_version(select(Job, JobVersion)))


def _limited(db: Session, principal: Principal, stmt: Select[Job, JobVersion], limit: int) -> JobListing:
    rows = db.execute(stmt.order_by(Job.job_key, Job.id).limit(limit)).all()
    total = len(rows) if len(rows) < limit else count(db, stmt)
    return _listing(db, principal, rows, total)


def _paged_listing(db: Session, principal: Principal, stmt: Select[Job, JobVersion], pr: PageRequest) -> JobListing:
    key = Job.job_key if pr.sort_by == "jobKey" else Job.created_at
    rows = db.execute(paged(ordered(stmt, pr, key, Job.id), pr)).all()
    return _listing(db, principal, rows, page_total(db, stmt, pr, len(rows)))


def list_mine(db: Session, principal: Principal, pr: PageRequest) -> JobListing:
    """/me/jobs: jobs the caller can access through their teams (all of them for organization admins)."""
    return _paged_listing(db, principal, _jobs_stmt(principal), pr)


def list_all(db: Session, principal: Principal, pr: PageRequest) -> JobListing:
    """listJobs: every job the caller may view, a page at a time (by key unless asked otherwise)."""
    return _paged_listing(db, principal, _jobs_stmt(principal), pr)


def list_for_team(db: Session, principal: Principal, team_id: str, limit: int) -> JobListing:
    team = get_team(db, principal, team_id)
    stmt = _jobs_stmt(principal).where(Job.id.in_(select(JobTeam.job_id).where(JobTeam.team_id == team.id)))
    return _limited(db, principal, stmt, limit)


def list_for_cluster(db: Session, principal: Principal, cluster_id: str, limit: int) -> JobListing:
    """Jobs whose current version runs on the cluster; 404 for a cluster the organization does not have."""
    if _cluster(principal, cluster_id) is None:
        raise not_found("cluster")
    return _limited(db, principal, _jobs_stmt(principal).where(JobVersion.cluster_id == cluster_id), limit)


def describe(db: Session, principal: Principal, job_id: str, version_number: int | None = None) -> JobListing:
    """The job with its current version, or with the named published version (404 if there is none)."""
    job = get_job(db, principal, job_id)
    version = _version(db, job, job.current_version if version_number is None else version_number)
    if version is None or version.status != PUBLISHED:
        raise not_found("job version")
    return _listing(db, principal, [(job, version)], 1)


def list_versions(db: Session, principal: Principal, job_id: str, pr: PageRequest) -> tuple[int, list[JobVersion]]:
    job = get_job(db, principal, job_id)
    stmt = select(JobVersion).where(JobVersion.job_id == job.id, JobVersion.status == PUBLISHED)
    rows = list(db.scalars(paged(stmt.order_by(JobVersion.version), pr)))
    return page_total(db, stmt, pr, len(rows)), rows


def list_teams(db: Session, principal: Principal, job_id: str, limit: int) -> tuple[int, list[tuple[Team, int]]]:
    """The job's teams that the caller can see, by name, each with its member count."""
    job = get_job(db, principal, job_id)
    team_ids = [t for t in _team_ids(db, [job.id])[job.id] if principal.can_see_team(t)]
    return len(team_ids), with_member_counts(db, team_ids, limit)


# --- jobs -------------------------------------------------------------------------------------

def create_job(db: Session, principal: Principal, body: CreateJobRequest,
               ctx: RequestContext) -> tuple[Job, JobVersion]:
    """The job and its first published version, shared with teams in which the caller manages jobs."""
    team_ids = _check_teams(db, principal, body.team_ids, must_manage=True)
    fields = _fields_from_request(body, VERSION_FIELDS)
    _validate_version(db, principal, fields, body.job_key, None, team_ids)
    _check_unique_key(db, principal.organization_id, body.job_key)
    actor = principal.actor_id
    job = Job(organization_id=principal.organization_id, member_id=actor, job_key=body.job_key, status=body.status,
              current_version=1, draft_version=None, lock_version=0, created_by=actor, updated_by=actor)
    db.add(job)
    db.flush()
    version = _new_version(job, 1, fields, PUBLISHED, None, principal)
    db.add(version)
    for team_id in team_ids:
        db.add(JobTeam(job_id=job.id, team_id=team_id, created_by=actor, updated_by=actor))
    _refresh_schedule(job, version)
    audit.record(db, ctx, principal, "job.create", "job", job.id,
                 details={"jobKey": job.job_key, "teamIds": team_ids, "jobType": version.job_type,
                          "clusterId": version.cluster_id})
    db.flush()
    return job, version


def update_job(db: Session, principal: Principal, job_id: str, body: UpdateJobRequest,
               ctx: RequestContext) -> tuple[Job, JobVersion]:
    """Metadata only (key, status, description); `version` guards against a concurrent change."""
    job = get_job(db, principal, job_id, lock=True)
    teams = _require_manage(db, principal, job)
    given = body.model_fields_set - {"version"}
    if body.version is not None and body.version != job.lock_version:
        raise conflict("version_conflict", f"The job is at version {job.lock_version}, not {body.version}; "
                                           "read it again and retry.")
    for required in ("job_key", "status"):
        if required in given and getattr(body, required) is None:
            raise invalid("jobKey" if required == "job_key" else "status", "must not be null")
    version = current_version(db, job)
    if "job_key" in given and body.job_key != job.job_key:
        assert body.job_key is not None
        _check_unique_key(db, job.organization_id, body.job_key, exclude=job.id)
        dependents = _dependents(db, job.organization_id, job.job_key, job.id)
        if dependents:
            known = set(db.scalars(_visible(principal, select(Job.job_key)).where(Job.job_key.in_(dependents))))
            hidden = len(dependents) - len(known)
            names = [k for k in dependents if k in known][:10] + ([f"{hidden} job(s) you cannot see"] if hidden else [])
            raise conflict("job_key_in_use", f"Jobs depend on the key {job.job_key}: {', '.join(names)}; "
                                             "change their dependsOn first.")
        job.job_key = body.job_key
    new_status = body.status if "status" in given else None
    status_changed = new_status is not None and new_status != job.status
    if new_status is not None and status_changed:
        if new_status == ACTIVE:
            # Resuming: what the version refers to (saved query, other jobs) may have gone meanwhile.
            _validate_version(db, principal, _fields_of(version), job.job_key, job.id, teams)
        job.status = new_status
    if "description" in given:
        version.description = body.description
        _touch(version, principal)
    if given:
        job.lock_version += 1
    if status_changed:
        # Only pausing or resuming moves the schedule: recomputing it on a rename would silently drop
        # a slot that is due but not yet taken by the scheduler.
        _refresh_schedule(job, version)
    _touch(job, principal)
    audit.record(db, ctx, principal, "job.update", "job", job.id,
                 details={"fields": sorted(WIRE_NAMES.get(f, "jobKey" if f == "job_key" else f) for f in given),
                          "status": job.status, "jobKey": job.job_key})
    db.flush()
    return job, version


def delete_job(db: Session, principal: Principal, job_id: str, ctx: RequestContext, *,
               cancel_runs: Callable[[Session, Job], None]) -> None:
    """The job, its versions, runs and team links go in one transaction (the rows cascade).

    `cancel_runs` (runs.service.cancel_runs_of_deleted_job, passed in by the caller since the runs package
    builds on this one) first cancels the job's active runs in that transaction."""
    job = get_job(db, principal, job_id, lock=True)
    _require_manage(db, principal, job)
    cancel_runs(db, job)
    details = {"jobKey": job.job_key,
               "dependents": _dependents(db, job.organization_id, job.job_key, job.id)}
    db.execute(delete(Job).where(Job.id == job.id))
    audit.record(db, ctx, principal, "job.delete", "job", job.id, details=details)
    db.flush()


# --- versions and drafts ----------------------------------------------------------------------

def _draft(db: Session, job: Job) -> JobVersion | None:
    draft = _version(db, job, job.draft_version)
    return draft if draft is not None and draft.status == DRAFT else None


def get_draft(db: Session, principal: Principal, job_id: str) -> JobVersion:
    job = get_job(db, principal, job_id)
    draft = _draft(db, job)
    if draft is None:
        raise not_found("draft version")
    return draft


def _merged(db: Session, principal: Principal, job: Job, teams: Sequence[str], base: JobVersion,
            body: VersionFields) -> dict[str, Any]:
    fields = _fields_of(base)
    fields.update(_fields_from_request(body, body.model_fields_set))
    _validate_version(db, principal, fields, job.job_key, job.id, teams)
    return fields


def create_draft(db: Session, principal: Principal, job_id: str, body: VersionFields,
                 ctx: RequestContext) -> JobVersion:
    """A copy of the current version with the given fields replaced; 409 while a draft exists."""
    job = get_job(db, principal, job_id, lock=True)
    teams = _require_manage(db, principal, job)
    if job.draft_version is not None:
        raise conflict("draft_exists", f"The job already has a draft (version {job.draft_version}); update, "
                                       "publish or discard it.")
    fields = _merged(db, principal, job, teams, current_version(db, job), body)
    draft = _new_version(job, _next_number(db, job), fields, DRAFT, job.current_version, principal)
    db.add(draft)
    job.draft_version = draft.version
    _touch(job, principal)
    audit.record(db, ctx, principal, "job.draft.create", "job", job.id,
                 details={"version": draft.version, "fields": sorted(WIRE_NAMES[f] for f in body.model_fields_set)})
    db.flush()
    return draft


def update_draft(db: Session, principal: Principal, job_id: str, body: VersionFields,
                 ctx: RequestContext) -> JobVersion:
    """Only the given fields change; 404 without a draft."""
    job = get_job(db, principal, job_id, lock=True)
    teams = _require_manage(db, principal, job)
    draft = _draft(db, job)
    if draft is None:
        raise not_found("draft version")
    fields = _merged(db, principal, job, teams, draft, body)
    for name, value in fields.items():
        setattr(draft, name, value)
    draft.job_type = _job_type(fields["config"])
    _touch(draft, principal)
    _touch(job, principal)
    audit.record(db, ctx, principal, "job.draft.update", "job", job.id,
                 details={"version": draft.version, "fields": sorted(WIRE_NAMES[f] for f in body.model_fields_set)})
    db.flush()
    return draft


def discard_draft(db: Session, principal: Principal, job_id: str, ctx: RequestContext) -> None:
    job = get_job(db, principal, job_id, lock=True)
    _require_manage(db, principal, job)
    draft = _draft(db, job)
    if draft is None:
        raise not_found("draft version")
    number = draft.version
    db.delete(draft)
    job.draft_version = None
    _touch(job, principal)
    audit.record(db, ctx, principal, "job.draft.discard", "job", job.id, details={"version": number})
    db.flush()


def _make_current(db: Session, principal: Principal, job: Job, version: JobVersion) -> None:
    job.current_version = version.version
    job.lock_version += 1
    _refresh_schedule(job, version)
    _touch(job, principal)


def publish_draft(db: Session, principal: Principal, job_id: str, ctx: RequestContext) -> tuple[Job, JobVersion]:
    """The draft becomes the current version; 400 without a draft. It is validated again, since the
    saved queries and other jobs it refers to may have changed since it was saved."""
    job = get_job(db, principal, job_id, lock=True)
    teams = _require_manage(db, principal, job)
    draft = _draft(db, job)
    if draft is None:
        raise ApiError(400, "no_draft", "The job has no draft version to publish.")
    _validate_version(db, principal, _fields_of(draft), job.job_key, job.id, teams)
    previous = job.current_version
    draft.status = PUBLISHED
    _touch(draft, principal)
    job.draft_version = None
    _make_current(db, principal, job, draft)
    audit.record(db, ctx, principal, "job.draft.publish", "job", job.id,
                 details={"version": draft.version, "previousVersion": previous})
    db.flush()
    return job, draft


def create_version(db: Session, principal: Principal, job_id: str, body: VersionFields,
                   ctx: RequestContext) -> JobVersion:
    """Draft, update and publish in one step: a new current version (409 while a draft exists)."""
    job = get_job(db, principal, job_id, lock=True)
    teams = _require_manage(db, principal, job)
    if job.draft_version is not None:
        raise conflict("draft_exists", f"The job has a draft (version {job.draft_version}); publish or discard "
                                       "it first.")
    fields = _merged(db, principal, job, teams, current_version(db, job), body)
    previous = job.current_version
    version = _new_version(job, _next_number(db, job), fields, PUBLISHED, previous, principal)
    db.add(version)
    _make_current(db, principal, job, version)
    audit.record(db, ctx, principal, "job.version.create", "job", job.id,
                 details={"version": version.version, "previousVersion": previous,
                          "fields": sorted(WIRE_NAMES[f] for f in body.model_fields_set)})
    db.flush()
    return version


def activate_version(db: Session, principal: Principal, job_id: str, number: int,
                     ctx: RequestContext) -> tuple[Job, JobVersion]:
    """Make an earlier (or later) published version current; refused while a draft exists."""
    job = get_job(db, principal, job_id, lock=True)
    teams = _require_manage(db, principal, job)
    if job.draft_version is not None:
        raise conflict("draft_exists", f"The job has a draft (version {job.draft_version}); publish or discard "
                                       "it before activating another version.")
    version = _version(db, job, number)
    if version is None or version.status != PUBLISHED:
        raise not_found("job version")
    _validate_version(db, principal, _fields_of(version), job.job_key, job.id, teams)
    previous = job.current_version
    _make_current(db, principal, job, version)
    audit.record(db, ctx, principal, "job.version.activate", "job", job.id,
                 details={"version": number, "previousVersion": previous})
    db.flush()
    return job, version


# --- sharing ----------------------------------------------------------------------------------

def add_teams(db: Session, principal: Principal, job_id: str, team_ids: Sequence[str],
              ctx: RequestContext) -> list[JobTeam]:
    """Idempotent: teams already linked keep their link; returns the links of the given teams."""
    job = get_job(db, principal, job_id, lock=True)
    current = _require_manage(db, principal, job)
    wanted = _check_teams(db, principal, team_ids, must_manage=False)
    added = [t for t in wanted if t not in current]
    for team_id in added:
        db.add(JobTeam(job_id=job.id, team_id=team_id, created_by=principal.actor_id, updated_by=principal.actor_id))
    if added:
        _touch(job, principal)
    audit.record(db, ctx, principal, "job.add_teams", "job", job.id, details={"teamIds": wanted, "added": added})
    db.flush()
    return list(db.scalars(select(JobTeam).where(JobTeam.job_id == job.id, JobTeam.team_id.in_(wanted))
                           .order_by(JobTeam.created_at, JobTeam.team_id)))


def remove_team(db: Session, principal: Principal, job_id: str, team_id: str, ctx: RequestContext) -> None:
    """A job always keeps at least one team (409 for the last one)."""
    job = get_job(db, principal, job_id, lock=True)
    current = _require_manage(db, principal, job)
    if team_id not in current:
        raise not_found("team")
    if len(current) == 1:
        raise conflict("last_team", "A job must keep at least one team; add another team first.")
    db.execute(delete(JobTeam).where(JobTeam.job_id == job.id, JobTeam.team_id == team_id))
    _touch(job, principal)
    audit.record(db, ctx, principal, "job.remove_team", "job", job.id, details={"teamId": team_id})
    db.flush()
