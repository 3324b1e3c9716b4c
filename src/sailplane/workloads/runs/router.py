"""HTTP routes for job runs: /workloads/jobs/{job}/runs (create, list, describe, delete, release,
retry, cancel, logs) and /me/jobs/runs. Visibility (CanViewJobs) and CanRunJobs depend on the job's
teams, so both are checked in the service. After a change that makes a run eligible (or cancels
it), the dispatcher of this server is woken so it does not wait for its next poll."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.orm import Session

from sailplane.iam.auth.deps import AppSettings, CurrentPrincipal, Db
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.db import after_commit
from sailplane.kit.errors import invalid
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.input import MAX_BYTE_OFFSET
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute, raw_json
from sailplane.kit.schemas import DONE, Message
from sailplane.workloads.jobs.router import job_view
from sailplane.workloads.jobs.schemas import JobRunView
from sailplane.workloads.runs import files, service
from sailplane.workloads.runs.execution import read_log
from sailplane.workloads.runs.reads import run_json
from sailplane.workloads.runs.schemas import CreateJobRunRequest, JobRunList, RetryJobRunRequest

router = APIRouter(route_class=JsonRoute, tags=["job-runs"])

Ctx = Annotated[RequestContext, Depends(request_context)]
Page = Annotated[MarkerPage, Depends(marker_params)]
JobId = Annotated[str, Path(pattern=ID_PATTERN, description="A LakeSail job ID.")]
RunId = Annotated[str, Path(alias="jobRun", pattern=ID_PATTERN, description="A LakeSail job run ID.")]
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", max_length=255,
    description="Makes creation safe to repeat: a second request with the same key (for this job) answers "
                "200 with the run the first one created instead of creating another.")]
LOG_CHUNK_LIMIT = 1 << 20


def _wake(request: Request, db: Session) -> None:
    """Have the dispatcher look at once, after the request commits: woken before, it would find nothing new
    and the run would wait for its next poll."""
    runtime = getattr(request.app.state, "runs", None)
    if runtime is not None:
        after_commit(db, runtime.notify)


def _run_list(result: service.RunPage) -> Response:
    """`JobRunList` JSON: the runs are already JobRunView JSON (runs.reads); the jobs stay `JobView`
    models (at most one per distinct job, and their config shape is the model's)."""
    return raw_json({
        "total": result.total,
        "items": [{"jobRunId": r["id"], "jobId": r["jobId"]} for r in result.runs],
        "included": {"jobRuns": result.runs, "jobs": [job_view(j, v) for j, v in result.jobs]},
        "marker": result.marker,
    })


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or not key.isprintable() or not key.isascii() or key != key.strip():
        raise invalid("Idempotency-Key", "must be 1 to 255 printable ASCII characters without surrounding spaces",
                      status=400)
    return key


@router.get("/me/jobs/runs", operation_id="listMyJobRuns", response_model=JobRunList)
def list_my_job_runs(db: Db, principal: CurrentPrincipal, page: Page) -> Response:
    """Runs of every job the caller can view through their teams (all jobs for organization admins),
    newest first."""
    return _run_list(service.list_my_runs(db, principal, page))


@router.get("/workloads/jobs/{job}/runs", operation_id="listJobRuns", response_model=JobRunList)
def list_job_runs(job: JobId, db: Db, principal: CurrentPrincipal, page: Page) -> Response:
    """The job's runs, newest first, with status, timing and trigger."""
    return _run_list(service.list_job_runs(db, principal, job, page))


@router.post("/workloads/jobs/{job}/runs", operation_id="createJobRun", status_code=201, response_model=JobRunView,
             responses={200: {"model": JobRunView, "description": "The run an earlier request with the same "
                                                                 "Idempotency-Key created."}})
def create_job_run(job: JobId, request: Request, db: Db, principal: CurrentPrincipal, ctx: Ctx,
                   body: CreateJobRunRequest | None = None,
                   idempotency_key: IdempotencyKey = None) -> Any:
    """Run the job's current version now (`ready`), or hold it `pending` for releaseJobRun, with
    optional parameter overrides. Needs CanRunJobs in one of the job's teams."""
    body = body or CreateJobRunRequest()
    run, created = service.start_run(
        db, principal, job, parameters=body.parameters, named_parameters=body.named_parameters, hold=body.hold,
        resource_cleanup_mode=body.resource_cleanup_mode, idempotency_key=_check_key(idempotency_key), ctx=ctx)
    if created:
        _wake(request, db)
    return raw_json(run_json(run), 201 if created else 200)


@router.get("/workloads/jobs/{job}/runs/{jobRun}", operation_id="describeJobRun", response_model=JobRunView)
def describe_job_run(job: JobId, job_run: RunId, db: Db, principal: CurrentPrincipal) -> Response:
    """The run's status, timing and results."""
    return raw_json(run_json(service.describe_run(db, principal, job, job_run)))


@router.delete("/workloads/jobs/{job}/runs/{jobRun}", operation_id="deleteJobRun", response_model=Message)
def delete_job_run(job: JobId, job_run: RunId, db: Db, principal: CurrentPrincipal, ctx: Ctx,
                   settings: AppSettings) -> dict[str, str]:
    """Remove a finished run and its log (409 while it is pending, ready or running); its results stay."""
    service.delete_run(db, principal, job, job_run, ctx)
    files.remove_run_files(settings.data_dir, job_run)
    return DONE


@router.post("/workloads/jobs/{job}/runs/{jobRun}/ready", operation_id="releaseJobRun", response_model=JobRunView)
def release_job_run(job: JobId, job_run: RunId, request: Request, db: Db, principal: CurrentPrincipal,
                    ctx: Ctx) -> Response:
    """Release a pending run for execution (pending → ready); 409 in any other state."""
    run = service.release_run(db, principal, job, job_run, ctx)
    _wake(request, db)
    return raw_json(run_json(run))


@router.post("/workloads/jobs/{job}/runs/{jobRun}/retry", operation_id="retryJobRun", response_model=JobRunView)
def retry_job_run(job: JobId, job_run: RunId, request: Request, db: Db, principal: CurrentPrincipal, ctx: Ctx,
                  body: RetryJobRunRequest | None = None) -> Response:
    """Run a failed, timed-out or cancelled run again with the same ID, version and parameters
    (`hold` keeps it pending); 409 in any other state."""
    run = service.retry_run(db, principal, job, job_run, (body or RetryJobRunRequest()).hold, ctx)
    _wake(request, db)
    return raw_json(run_json(run))


@router.post("/workloads/jobs/{job}/runs/{jobRun}/cancel", operation_id="cancelJobRun", response_model=JobRunView)
def cancel_job_run(job: JobId, job_run: RunId, request: Request, db: Db, principal: CurrentPrincipal,
                   ctx: Ctx) -> Response:
    """Cancel a run that has not ended; its process is stopped within about a second. 409 once it has ended."""
    run = service.cancel_active_run(db, principal, job, job_run, ctx)
    _wake(request, db)
    return raw_json(run_json(run))


@router.get("/workloads/jobs/{job}/runs/{jobRun}/logs", operation_id="getJobRunLogs",
            response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "The driver output from `offset`."}})
def get_job_run_logs(job: JobId, job_run: RunId, db: Db, principal: CurrentPrincipal, settings: AppSettings,
                     offset: Annotated[int, Query(ge=0, le=MAX_BYTE_OFFSET, description="Byte offset to read from (the "
                                                                     "LakeSail-Log-Offset of the previous call).")] = 0,
                     ) -> PlainTextResponse:
    """The run's driver output (every attempt, with `--- sailplane:` notes) as text/plain, readable
    while the run is going. At most 1 MiB per call: to follow a running run, call again with
    `?offset=` set to the `LakeSail-Log-Offset` response header until `LakeSail-Run-Status` is a
    final state and no more text comes back."""
    run = service.run_for_logs(db, principal, job, job_run)
    chunk = read_log(files.log_path(settings.data_dir, run.id), offset, LOG_CHUNK_LIMIT)
    return PlainTextResponse(chunk.text, headers={"LakeSail-Log-Offset": str(chunk.next_offset),
                                                  "LakeSail-Run-Status": run.status})
