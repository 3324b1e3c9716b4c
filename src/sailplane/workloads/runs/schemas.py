"""Wire shapes for job runs: the run record is the seed's `jobRuns[]` (`JobRunView` of the jobs
package); lists are normalized like the job lists: `{total, items[{jobRunId, jobId}],
included{jobRuns, jobs}, marker}`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, model_validator

from sailplane.kit.schemas import ApiModel, RequestModel
from sailplane.workloads.jobs.schemas import Argument, JobRunView, JobView, ParamName, check_arguments_size


class CreateJobRunRequest(RequestModel):
    """Every field is optional; an empty body (or none) runs the current version as configured."""

    parameters: list[list[Argument]] | None = Field(
        default=None, max_length=100,
        description="Python jobs: replaces the version's `parameters` (command-line arguments).")
    named_parameters: dict[ParamName, Argument] | None = Field(
        default=None, max_length=100,
        description="Merged over the version's `namedParameters` (Python: --name=value; SQL: :name markers).")
    hold: StrictBool = Field(default=False, description="Create the run `pending`; release it with releaseJobRun.")
    resource_cleanup_mode: Literal["always", "on_success", "never"] | None = Field(
        default=None,
        description="What happens to the run's Sail server when it ends: stopped (always), kept after a failure "
                    "for debugging (on_success), or kept (never) until the idle reaper stops it. Default: "
                    "the version's config.lakesail.resourceCleanupMode, else always.")

    @model_validator(mode="after")
    def _arguments_fit(self) -> CreateJobRunRequest:
        check_arguments_size(self.parameters, self.named_parameters)
        return self


class RetryJobRunRequest(RequestModel):
    hold: StrictBool = Field(default=False, description="Put the retried run in `pending` instead of `ready`.")


class JobRunRef(ApiModel):
    job_run_id: str
    job_id: str


class JobRunIncluded(ApiModel):
    job_runs: list[JobRunView]
    jobs: list[JobView]


class JobRunList(ApiModel):
    total: int | None = Field(
        description="Counted on the first page only, and only up to 10,000 runs; null otherwise "
                    "(page with `marker` until it is null).")
    items: list[JobRunRef]
    included: JobRunIncluded
    marker: str | None = Field(default=None, description="Pass as `marker` for the next page; null on the last.")
