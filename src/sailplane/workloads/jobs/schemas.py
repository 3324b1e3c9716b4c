"""Wire shapes for job definitions (the `jobs` seed, camelCase): the job and version records, the
normalized `{total, items[{jobId, latestJobRunId, teamIds}], included{jobs, jobRuns, teams}}`
envelopes, and request bodies.

Configuration is validated field by field, so bad input is a 422 naming the field
(`config.python.parameters.0.1`, `config.sql`, `cronExpression`), never a run that fails later.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from sailplane.compute.environments import DEFAULT_LINE, SparkVersion
from sailplane.kit.schemas import ApiModel, Description, NotNull, RequestModel, ResourceId, Timestamp
from sailplane.tenancy.teams.schemas import TeamView
from sailplane.workloads.schemas import SPARK_VERSION_DESCRIPTION, ComputeSpec, ImageUri, Library

MAX_SOURCE_BYTES = 1024 * 1024
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600

JobKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
    Field(description="The job's key, unique in the organization (letters, digits, '.', '_', '-').",
          examples=["daily-sales-etl"]),
]
Source = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SOURCE_BYTES)]
PackageName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=255, pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
]
EntryPoint = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255,
                                              pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")]
Argument = Annotated[str, StringConstraints(max_length=4096, pattern=r"^[^\x00]*$")]
ParamName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")]
PropertyName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.-]+$")]
CronExpression = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
TimeZoneName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
GitUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048, pattern=r"^\S+$")]
TeamIds = Annotated[list[ResourceId], Field(min_length=1, max_length=50)]
ConcurrencyPolicy = Literal["skip", "queue", "replace"]
MissedSchedulePolicy = Literal["latest", "skip", "all"]
JobStatus = Literal["active", "paused"]
TimeoutSeconds = Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS, description="Runs longer than this time out.")]
MaxConcurrentRuns = Annotated[int, Field(ge=1, le=1000)]


MAX_ARGUMENT_CHARS = 128 * 1024
"""All of a run's command-line arguments together (they share the kernel's ARG_MAX with the environment)."""


def check_arguments_size(parameters: list[list[str]] | None, named: dict[str, str] | None) -> None:
    total = sum(len(a) for group in parameters or [] for a in group)
    total += sum(len(k) + len(v) + 3 for k, v in (named or {}).items())
    if total > MAX_ARGUMENT_CHARS:
        raise ValueError(f"parameters and namedParameters: at most {MAX_ARGUMENT_CHARS} characters in all")


# --- configuration ----------------------------------------------------------------------------

class SqlConfig(RequestModel):
    source: Source | None = Field(default=None, description="Inline SQL (a snapshot taken when saved).")
    query_id: ResourceId | None = Field(default=None, description="A saved query, resolved at run time.")

    @model_validator(mode="after")
    def _exactly_one(self) -> SqlConfig:
        if (self.source is None) == (self.query_id is None):
            raise ValueError("give exactly one of source or queryId")
        return self


class PythonConfig(RequestModel):
    source: Source | None = Field(default=None, description="The Python file to run.")
    package_name: PackageName | None = Field(default=None, description="A package (wheel) to run; needs entryPoint.")
    entry_point: EntryPoint | None = None
    parameters: list[list[Argument]] | None = Field(default=None, max_length=100,
                                                    description="Command-line arguments.")
    named_parameters: dict[ParamName, Argument] | None = Field(default=None, max_length=100,
                                                              description="Passed as --name=value.")

    @field_validator("parameters")
    @classmethod
    def _bounded(cls, value: list[list[str]] | None) -> list[list[str]] | None:
        if value is not None and sum(len(group) for group in value) > 1000:
            raise ValueError("at most 1000 arguments in all")
        return value

    @model_validator(mode="after")
    def _arguments_fit(self) -> PythonConfig:
        check_arguments_size(self.parameters, self.named_parameters)
        return self

    @model_validator(mode="after")
    def _what_to_run(self) -> PythonConfig:
        if (self.source is None) == (self.package_name is None):
            raise ValueError("give exactly one of source or packageName (with entryPoint)")
        if self.package_name is not None and self.entry_point is None:
            raise ValueError("packageName needs an entryPoint")
        if self.source is not None and self.entry_point is not None:
            raise ValueError("entryPoint goes with packageName, not with source")
        return self


class LakesailConfig(RequestModel):
    """Sail settings of the run; further string properties are passed to Sail as they are."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str] = Field(init=False)  # type: ignore[assignment]

    execution_mode: Literal["standalone", "cluster"] = "standalone"
    max_retries: int = Field(default=0, ge=0, le=10, description="Automatic retries of a failed run.")
    lakesail_image_uri: ImageUri | None = None
    libraries: list[Library] = Field(default_factory=list, max_length=100)
    spark_version: SparkVersion | None = Field(
        default=None, examples=[DEFAULT_LINE],
        description=SPARK_VERSION_DESCRIPTION + " The job's driver (SQL runner or Python code) runs in that "
                    "environment too, so its `pyspark` is that line's.")

    @model_validator(mode="after")
    def _additional_properties(self) -> LakesailConfig:
        extra = self.__pydantic_extra__ or {}
        if len(extra) > 100:
            raise ValueError("at most 100 additional properties")
        for name, value in extra.items():
            if len(name) > 255 or not all(c.isalnum() or c in "._-" for c in name):
                raise ValueError(f"additional property name {name[:40]!r} must use letters, digits, '.', '_', '-'")
            if len(value) > 4096:
                raise ValueError(f"additional property {name} must be at most 4096 characters")
        return self


class JobConfig(RequestModel):
    sql: SqlConfig | None = None
    python: PythonConfig | None = None
    compute: ComputeSpec | None = None
    lakesail: LakesailConfig | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> JobConfig:
        if (self.sql is None) == (self.python is None):
            raise ValueError("give exactly one of sql or python")
        return self

    @property
    def job_type(self) -> str:
        return "sql" if self.sql is not None else "python"


class SourceReference(RequestModel):
    type: Literal["branch", "tag", "commit"]
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255,
                                            pattern=r"^[^\s\x00]+$")]


class SourceConfig(RequestModel):
    url: GitUrl = Field(description="A git repository (https, ssh or a local path).")
    provider: Annotated[str, StringConstraints(max_length=64)] | None = Field(default=None, examples=["github"])
    reference: SourceReference | None = Field(default=None, description="Omitted: the default branch.")
    snapshot_commit: str | None = Field(default=None, description="Read-only: ignored on input.")


class DependsOn(RequestModel):
    job_key: JobKey


DependsOnList = Annotated[list[DependsOn], Field(max_length=50)]


class VersionFields(RequestModel):
    """The versioned settings. In a draft or new version, given fields replace the copied ones;
    null clears the optional ones (description, timeoutSeconds, sourceConfig, cron fields)."""

    cluster_id: Annotated[ResourceId | None, NotNull] = None
    description: Description | None = None
    config: Annotated[JobConfig | None, NotNull] = None
    timeout_seconds: TimeoutSeconds | None = None
    source_config: SourceConfig | None = None
    depends_on: DependsOnList | None = None
    cron_expression: CronExpression | None = Field(default=None, examples=["0 2 * * *"])
    cron_timezone: TimeZoneName | None = Field(default=None, examples=["America/New_York"],
                                               description="An IANA time zone; UTC when omitted.")
    concurrency_policy: ConcurrencyPolicy | None = Field(
        default=None, description="When a run is due while maxConcurrentRuns are running: skip it, queue it, "
                                  "or replace (cancel) the running one.")
    max_concurrent_runs: MaxConcurrentRuns | None = None
    missed_schedule_policy: MissedSchedulePolicy | None = Field(
        default=None, description="Schedules missed while the service was down: run the latest, skip, or run all.")


class CreateJobRequest(RequestModel):
    job_key: JobKey
    status: JobStatus = "active"
    cluster_id: ResourceId
    description: Description | None = None
    config: JobConfig
    timeout_seconds: TimeoutSeconds | None = None
    source_config: SourceConfig | None = None
    depends_on: DependsOnList = Field(default_factory=list)
    cron_expression: CronExpression | None = None
    cron_timezone: TimeZoneName | None = None
    concurrency_policy: ConcurrencyPolicy = "skip"
    max_concurrent_runs: MaxConcurrentRuns = 1
    missed_schedule_policy: MissedSchedulePolicy = "latest"
    team_ids: TeamIds


class UpdateJobRequest(RequestModel):
    job_key: Annotated[JobKey | None, NotNull] = None
    status: Annotated[JobStatus | None, NotNull] = None
    description: Description | None = Field(default=None, description="null clears the description.")
    version: int | None = Field(default=None, ge=0, description="The job's version as last read; a different "
                                                                 "current version answers 409.")


class ActivateVersionRequest(RequestModel):
    version: int = Field(ge=1, le=2_147_483_647)


class TeamIdsRequest(RequestModel):
    team_ids: TeamIds


# --- responses --------------------------------------------------------------------------------

class SourceReferenceView(ApiModel):
    type: str
    value: str


class SourceConfigView(ApiModel):
    url: str
    provider: str | None = None
    reference: SourceReferenceView | None = None
    snapshot_commit: str | None = None


class DependsOnView(ApiModel):
    job_key: str


class JobView(ApiModel):
    """A job with the settings of one of its versions (the current one unless a version is named)."""

    id: str
    member_id: str
    job_key: str
    version: int = Field(description="The job record's version, for optimistic concurrency (updateJob).")
    current_version: int
    draft_version: int | None
    based_on_version: int | None
    status: str
    cluster_id: str
    description: str | None
    config: JobConfig
    timeout_seconds: int | None
    source_config: SourceConfigView | None
    depends_on: list[DependsOnView]
    cron_expression: str | None
    cron_timezone: str | None
    concurrency_policy: str
    max_concurrent_runs: int
    missed_schedule_policy: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    next_run_at: Timestamp | None
    last_scheduled_at: Timestamp | None
    updated_by: str | None


class JobVersionView(ApiModel):
    job_id: str
    version: int
    based_on_version: int | None
    status: str
    job_type: str
    cluster_id: str
    member_id: str
    description: str | None
    config: JobConfig
    timeout_seconds: int | None
    source_config: SourceConfigView | None
    depends_on: list[DependsOnView]
    cron_expression: str | None
    cron_timezone: str | None
    concurrency_policy: str
    max_concurrent_runs: int
    missed_schedule_policy: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class RunResults(ApiModel):
    output_path: str | None


class JobRunView(ApiModel):
    id: str
    job_id: str
    job_version: int
    status: str
    status_message: str | None
    resource_cleanup_mode: str
    dispatched_at: Timestamp | None
    finished_at: Timestamp | None
    runner_started_at: Timestamp | None
    runner_completed_at: Timestamp | None
    runner_execution_time_us: int | None
    trigger: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    results: RunResults
    updated_by: str | None
    cleaned_at: Timestamp | None


class JobRef(ApiModel):
    job_id: str
    latest_job_run_id: str | None
    team_ids: list[str]


class JobIncluded(ApiModel):
    jobs: list[JobView]
    job_runs: list[JobRunView]
    teams: list[TeamView]


class JobList(ApiModel):
    total: int
    items: list[JobRef]
    included: JobIncluded


class JobDescription(ApiModel):
    item: JobRef
    included: JobIncluded


class JobVersionList(ApiModel):
    total: int
    items: list[JobVersionView]


class JobTeamLink(ApiModel):
    job_id: str
    team_id: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class JobTeamLinks(ApiModel):
    items: list[JobTeamLink]


def stored_config(config: JobConfig) -> dict[str, Any]:
    """The configuration as stored (wire names, unset parts left out)."""
    return config.model_dump(mode="json", by_alias=True, exclude_none=True)


def stored_source_config(source: SourceConfig | None) -> dict[str, Any] | None:
    if source is None:
        return None
    return source.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"snapshot_commit"})
