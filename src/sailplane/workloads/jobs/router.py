"""HTTP routes for job definitions: /workloads/jobs (versions, drafts, teams), /me/jobs, and the
team and cluster job listings. Visibility and manage checks depend on the job's teams, so they
live in the service; the team listing declares its check here. Job runs have their own router."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from sailplane.data.schemas import ResourceTeamList, team_list
from sailplane.iam.auth.deps import CurrentPrincipal, Db, require_team
from sailplane.iam.auth.principal import Principal
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import Limit, Page, PageRequest, page_request, paging
from sailplane.kit.routing import JsonRoute, raw_json
from sailplane.kit.schemas import DONE, Message
from sailplane.tenancy.teams.schemas import TeamView
from sailplane.workloads.jobs import service
from sailplane.workloads.jobs.models import Job, JobVersion
from sailplane.workloads.jobs.schemas import (
    ActivateVersionRequest,
    CreateJobRequest,
    DependsOnView,
    JobDescription,
    JobList,
    JobRef,
    JobTeamLink,
    JobTeamLinks,
    JobVersionList,
    JobVersionView,
    JobView,
    SourceConfigView,
    TeamIdsRequest,
    UpdateJobRequest,
    VersionFields,
)
from sailplane.workloads.runs.reads import run_json
from sailplane.workloads.runs.service import cancel_runs_of_deleted_job

router = APIRouter(route_class=JsonRoute, tags=["jobs"])

Ctx = Annotated[RequestContext, Depends(request_context)]
JobId = Annotated[str, Path(pattern=ID_PATTERN, description="A LakeSail job ID.")]
TeamId = Annotated[str, Path(pattern=ID_PATTERN, description="The team ID.")]
ClusterId = Annotated[str, Path(pattern=ID_PATTERN, description="A cluster ID.")]
ViewTeamJobs = Annotated[Principal, Depends(require_team("CanViewJobs"))]
SORTABLE = ("createdAt", "jobKey")  # the first is the default
ORG_SORTABLE = ("jobKey", "createdAt")  # listJobs has always answered by key, so that stays its default


async def _version_paging(page: Page = 1, limit: Limit = 100) -> PageRequest:
    return page_request(page, limit, None, "asc", ("version",))


MyPaging = Annotated[PageRequest, Depends(paging(SORTABLE))]
OrgPaging = Annotated[PageRequest, Depends(paging(ORG_SORTABLE))]
VersionPaging = Annotated[PageRequest, Depends(_version_paging)]


# --- shaping ------------------------------------------------------------------------------------

def _source(value: dict[str, object] | None) -> SourceConfigView | None:
    return SourceConfigView.model_validate(value) if value is not None else None


def job_view(job: Job, version: JobVersion) -> JobView:
    return JobView(
        id=job.id, member_id=job.member_id, job_key=job.job_key, version=job.lock_version,
        current_version=job.current_version, draft_version=job.draft_version,
        based_on_version=version.based_on_version, status=job.status, cluster_id=version.cluster_id,
        description=version.description, config=version.config, timeout_seconds=version.timeout_seconds,
        source_config=_source(version.source_config),
        depends_on=[DependsOnView(job_key=d["jobKey"]) for d in version.depends_on or []],
        cron_expression=version.cron_expression, cron_timezone=version.cron_timezone,
        concurrency_policy=version.concurrency_policy, max_concurrent_runs=version.max_concurrent_runs,
        missed_schedule_policy=version.missed_schedule_policy, created_at=job.created_at, created_by=job.created_by,
        updated_at=job.updated_at, next_run_at=job.next_run_at, last_scheduled_at=job.last_scheduled_at,
        updated_by=job.updated_by,
    )


def version_view(v: JobVersion) -> JobVersionView:
    return JobVersionView(
        job_id=v.job_id, version=v.version, based_on_version=v.based_on_version, status=v.status,
        job_type=v.job_type, cluster_id=v.cluster_id, member_id=v.member_id, description=v.description,
        config=v.config, timeout_seconds=v.timeout_seconds, source_config=_source(v.source_config),
        depends_on=[DependsOnView(job_key=d["jobKey"]) for d in v.depends_on or []],
        cron_expression=v.cron_expression, cron_timezone=v.cron_timezone, concurrency_policy=v.concurrency_policy,
        max_concurrent_runs=v.max_concurrent_runs, missed_schedule_policy=v.missed_schedule_policy,
        created_at=v.created_at, created_by=v.created_by, updated_at=v.updated_at, updated_by=v.updated_by,
    )


def _parts(listing: service.JobListing) -> tuple[list[JobRef], dict[str, Any]]:
    """The items and `included` of a job listing; the latest runs as JobRunView JSON (runs.reads, the one
    builder of a run's JSON), so `included` is data for kit.routing.raw_json, not a model."""
    refs = [JobRef(job_id=job.id, latest_job_run_id=listing.latest_runs[job.id].id
                   if job.id in listing.latest_runs else None,
                   team_ids=listing.team_ids.get(job.id, [])) for job, _ in listing.jobs]
    runs = [listing.latest_runs[job.id] for job, _ in listing.jobs if job.id in listing.latest_runs]
    included = {"jobs": [job_view(job, version) for job, version in listing.jobs],
                "jobRuns": [run_json(r) for r in runs],
                "teams": [TeamView.model_validate(t) for t in listing.teams]}
    return refs, included


def job_list(listing: service.JobListing) -> Response:
    """`JobList` JSON."""
    items, included = _parts(listing)
    return raw_json({"total": listing.total, "items": items, "included": included})


def job_description(listing: service.JobListing) -> Response:
    """`JobDescription` JSON."""
    items, included = _parts(listing)
    return raw_json({"item": items[0], "included": included})


# --- listings -----------------------------------------------------------------------------------

@router.get("/me/jobs", operation_id="listMyJobs", response_model=JobList)
def list_my_jobs(db: Db, principal: CurrentPrincipal, paging: MyPaging) -> Response:
    """Jobs the caller can access through their teams (all of them for organization admins), paged."""
    return job_list(service.list_mine(db, principal, paging))


@router.get("/workloads/jobs", operation_id="listJobs", response_model=JobList)
def list_jobs(db: Db, principal: CurrentPrincipal, paging: OrgPaging) -> Response:
    """Every job of the organization the caller may view, with status, version and schedule, a page at a time
    (*beyond* the contract's `limit`: `page`, `sortBy`, `sortDirection` like listMyJobs; by key by default)."""
    return job_list(service.list_all(db, principal, paging))


@router.get("/workloads/teams/{team}/jobs", operation_id="listTeamJobs", response_model=JobList)
def list_team_jobs(team: TeamId, db: Db, principal: ViewTeamJobs, limit: Limit = 100) -> Response:
    """Jobs shared with the team."""
    return job_list(service.list_for_team(db, principal, team, limit))


@router.get("/workloads/clusters/{cluster}/jobs", operation_id="listClusterJobs", response_model=JobList)
def list_cluster_jobs(cluster: ClusterId, db: Db, principal: CurrentPrincipal, limit: Limit = 100) -> Response:
    """Jobs (that the caller may view) whose current version runs on the cluster."""
    return job_list(service.list_for_cluster(db, principal, cluster, limit))


# --- jobs ---------------------------------------------------------------------------------------

@router.post("/workloads/jobs", operation_id="createJob", status_code=201, response_model=JobView)
def create_job(body: CreateJobRequest, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> JobView:
    """Define a job with its first published version, on an active cluster, for teams in which the
    caller manages jobs."""
    return job_view(*service.create_job(db, principal, body, ctx))


@router.get("/workloads/jobs/{job}", operation_id="describeJob", response_model=JobDescription)
def describe_job(job: JobId, db: Db, principal: CurrentPrincipal) -> Response:
    """The job with its current version, teams and latest run; 404 unless shared with the caller's teams."""
    return job_description(service.describe(db, principal, job))


@router.patch("/workloads/jobs/{job}", operation_id="updateJob", response_model=JobView)
def update_job(job: JobId, body: UpdateJobRequest, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> JobView:
    """Change the key, status (active/paused) or description; execution settings change through versions."""
    return job_view(*service.update_job(db, principal, job, body, ctx))


@router.delete("/workloads/jobs/{job}", operation_id="deleteJob", response_model=Message)
def delete_job(job: JobId, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, str]:
    """Remove the job with its versions, runs and team links."""
    service.delete_job(db, principal, job, ctx, cancel_runs=cancel_runs_of_deleted_job)
    return DONE


@router.post("/workloads/jobs/{job}/activate-version", operation_id="activateJobVersion", response_model=JobView)
def activate_job_version(job: JobId, body: ActivateVersionRequest, db: Db, principal: CurrentPrincipal,
                         ctx: Ctx) -> JobView:
    """Make a published version the job's configuration again (refused while a draft exists)."""
    return job_view(*service.activate_version(db, principal, job, body.version, ctx))


# --- drafts -------------------------------------------------------------------------------------

@router.get("/workloads/jobs/{job}/draft", operation_id="describeJobDraft", response_model=JobVersionView)
def describe_job_draft(job: JobId, db: Db, principal: CurrentPrincipal) -> JobVersionView:
    """The job's draft version; 404 when there is none."""
    return version_view(service.get_draft(db, principal, job))


@router.post("/workloads/jobs/{job}/draft", operation_id="createJobDraft", status_code=201,
             response_model=JobVersionView)
def create_job_draft(job: JobId, body: VersionFields, db: Db, principal: CurrentPrincipal,
                     ctx: Ctx) -> JobVersionView:
    """Start a draft from the current version with the given fields replaced (409 if a draft exists)."""
    return version_view(service.create_draft(db, principal, job, body, ctx))


@router.patch("/workloads/jobs/{job}/draft", operation_id="updateJobDraft", response_model=JobVersionView)
def update_job_draft(job: JobId, body: VersionFields, db: Db, principal: CurrentPrincipal,
                     ctx: Ctx) -> JobVersionView:
    """Change only the given fields of the draft."""
    return version_view(service.update_draft(db, principal, job, body, ctx))


@router.delete("/workloads/jobs/{job}/draft", operation_id="discardJobDraft", response_model=Message)
def discard_job_draft(job: JobId, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, str]:
    """Throw the draft away; the current version keeps running unchanged."""
    service.discard_draft(db, principal, job, ctx)
    return DONE


@router.post("/workloads/jobs/{job}/draft/publish", operation_id="publishJobDraft", response_model=JobView)
def publish_job_draft(job: JobId, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> JobView:
    """The draft becomes the job's current version (400 when there is no draft)."""
    return job_view(*service.publish_draft(db, principal, job, ctx))


# --- versions -----------------------------------------------------------------------------------

@router.get("/workloads/jobs/{job}/versions", operation_id="listJobVersions", response_model=JobVersionList)
def list_job_versions(job: JobId, db: Db, principal: CurrentPrincipal, paging: VersionPaging) -> JobVersionList:
    """The job's published versions, by number."""
    total, versions = service.list_versions(db, principal, job, paging)
    return JobVersionList(total=total, items=[version_view(v) for v in versions])


@router.post("/workloads/jobs/{job}/versions", operation_id="createJobVersion", status_code=201,
             response_model=JobVersionView)
def create_job_version(job: JobId, body: VersionFields, db: Db, principal: CurrentPrincipal,
                       ctx: Ctx) -> JobVersionView:
    """Create and publish a version in one step (409 while a draft exists)."""
    return version_view(service.create_version(db, principal, job, body, ctx))


@router.get("/workloads/jobs/{job}/versions/{jobVersionNumber}", operation_id="describeJobVersion",
            response_model=JobDescription)
def describe_job_version(job: JobId, job_version_number: Annotated[int, Path(
        alias="jobVersionNumber", ge=1, le=2_147_483_647, description="A LakeSail job version.")],
        db: Db, principal: CurrentPrincipal) -> Response:
    """The job as configured by one published version."""
    return job_description(service.describe(db, principal, job, job_version_number))


# --- teams --------------------------------------------------------------------------------------

@router.get("/workloads/jobs/{job}/teams", operation_id="listJobTeams", response_model=ResourceTeamList)
def list_job_teams(job: JobId, db: Db, principal: CurrentPrincipal, limit: Limit = 100) -> ResourceTeamList:
    """The teams the job is shared with (those the caller can see), with member counts."""
    total, teams = service.list_teams(db, principal, job, limit)
    return team_list(total, teams)


@router.post("/workloads/jobs/{job}/teams", operation_id="addJobTeams", response_model=JobTeamLinks)
def add_job_teams(job: JobId, body: TeamIdsRequest, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> JobTeamLinks:
    """Share the job with more teams (idempotent)."""
    links = service.add_teams(db, principal, job, body.team_ids, ctx)
    return JobTeamLinks(items=[JobTeamLink.model_validate(x) for x in links])


@router.delete("/workloads/jobs/{job}/teams/{team}", operation_id="removeJobTeam", response_model=Message)
def remove_job_team(job: JobId, team: TeamId, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, str]:
    """Stop sharing the job with a team; the last team cannot be removed (409)."""
    service.remove_team(db, principal, job, team, ctx)
    return DONE
