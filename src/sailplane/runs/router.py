"""HTTP routes for job runs: /workloads/jobs/{job}/runs (create, list, describe, delete, release,
retry, cancel, logs) and /me/jobs/runs. Visibility (CanViewJobs) and CanRunJobs depend on the job's
teams, so both are checked in the service. After a change that makes a run eligible (or cancels
it), the dispatcher of this server is woken so it does not wait for its next poll."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic_core import to_json

from sailplane.auth.deps import AppSettings, CurrentPrincipal, Db
from sailplane.jobs.router import job_view, run_view
from sailplane.jobs.schemas import JobRunView
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.errors import invalid
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.input import MAX_BYTE_OFFSET
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message
from sailplane.runs import files, service
from sailplane.runs.execution import read_log
from sailplane.runs.schemas import CreateJobRunRequest, JobRunList, RetryJobRunRequest

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


def _wake(request: Request) -> None:
    runtime = getattr(request.app.state, "runs", None)
    if runtime is not None:
        runtime.notify()


def listed_run(r: service.ListedRun) -> dict[str, Any]:
    """A listed run as `JobRunView` JSON (same keys, order and formats as describeJobRun; a test
    compares the two). Built directly: validating 100 models only to dump them again was most of
    the listing's time."""
    return {
        "id": r.id, "jobId": r.job_id, "jobVersion": r.job_version, "status": r.status,
        "statusMessage": r.status_message, "resourceCleanupMode": r.resource_cleanup_mode,
        "dispatchedAt": r.dispatched_at, "finishedAt": r.finished_at, "runnerStartedAt": r.runner_started_at,
        "runnerCompletedAt": r.runner_completed_at, "runnerExecutionTimeUs": r.runner_execution_time_us,
        "trigger": r.trigger, "createdAt": r.created_at, "createdBy": r.created_by, "updatedAt": r.updated_at,
        "results": {"outputPath": r.output_path}, "updatedBy": r.updated_by, "cleanedAt": r.cleaned_at,
    }


def _run_list(result: service.RunPage) -> Response:
    """`JobRunList` JSON, encoded once by pydantic's serializer (the jobs stay `JobView` models:
    at most one per distinct job, and their config shape is the model's)."""
    body = {
        "total": result.total,
        "items": [{"jobRunId": r.id, "jobId": r.job_id} for r in result.runs],
        "included": {"jobRuns": [listed_run(r) for r in result.runs],
                     "jobs": [job_view(j, v) for j, v in result.jobs]},
        "marker": result.marker,
    }
    return Response(to_json(body, by_alias=True), media_type="application/json")


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
    view = run_view(run)
    if not created:
        return Response(view.model_dump_json(by_alias=True), status_code=200, media_type="application/json")
    _wake(request)
    return view


@router.get("/workloads/jobs/{job}/runs/{jobRun}", operation_id="describeJobRun", response_model=JobRunView)
def describe_job_run(job: JobId, job_run: RunId, db: Db, principal: CurrentPrincipal) -> JobRunView:
    """The run's status, timing and results."""
    return run_view(service.describe_run(db, principal, job, job_run))


@router.delete("/workloads/jobs/{job}/runs/{jobRun}", operation_id="deleteJobRun", response_model=Message)
def delete_job_run(job: JobId, job_run: RunId, db: Db, principal: CurrentPrincipal, ctx: Ctx,
                   settings: AppSettings) -> dict[str, str]:
    """Remove a finished run and its log (409 while it is pending, ready or running); its results stay."""
    service.delete_run(db, principal, job, job_run, ctx)
    files.remove_run_files(settings.data_dir, job_run)
    return DONE


@router.post("/workloads/jobs/{job}/runs/{jobRun}/ready", operation_id="releaseJobRun", response_model=JobRunView)
def release_job_run(job: JobId, job_run: RunId, request: Request, db: Db, principal: CurrentPrincipal,
                    ctx: Ctx) -> JobRunView:
    """Release a pending run for execution (pending → ready); 409 in any other state."""
    run = service.release_run(db, principal, job, job_run, ctx)
    _wake(request)
    return run_view(run)


@router.post("/workloads/jobs/{job}/runs/{jobRun}/retry", operation_id="retryJobRun", response_model=JobRunView)
def retry_job_run(job: JobId, job_run: RunId, request: Request, db: Db, principal: CurrentPrincipal, ctx: Ctx,
                  body: RetryJobRunRequest | None = None) -> JobRunView:
    """Run a failed, timed-out or cancelled run again with the same ID, version and parameters
    (`hold` keeps it pending); 409 in any other state."""
    run = service.retry_run(db, principal, job, job_run, (body or RetryJobRunRequest()).hold, ctx)
    _wake(request)
    return run_view(run)


@router.post("/workloads/jobs/{job}/runs/{jobRun}/cancel", operation_id="cancelJobRun", response_model=JobRunView)
def cancel_job_run(job: JobId, job_run: RunId, request: Request, db: Db, principal: CurrentPrincipal,
                   ctx: Ctx) -> JobRunView:
    """Cancel a run that has not ended; its process is stopped within about a second. 409 once it has ended."""
    run = service.cancel_active_run(db, principal, job, job_run, ctx)
    _wake(request)
    return run_view(run)


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
