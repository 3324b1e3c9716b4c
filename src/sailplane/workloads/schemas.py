"""Wire shapes for workload configs and sessions (the seeded bodies, camelCase).

Request models validate every field of a compute profile so a bad value is a 422 naming the field
(`config.sail.compute.worker.maxNodes`), never a Sail server that fails to start later.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from sailplane.compute.environments import DEFAULT_LINE, LINES, SparkVersion
from sailplane.kit.schemas import ApiModel, CompactModel, Name, RequestModel, ResourceId, Timestamp

# --- workload configs -------------------------------------------------------------------------

SPARK_VERSION_DESCRIPTION = (
    f"The PySpark line the Sail server answers as: {', '.join(LINES)}. Omitted: the newest, {DEFAULT_LINE}. "
    "Use the line of your client (pyspark or pyspark-client X.Y.*): the Sail server runs in an environment "
    "with that line's PySpark, which sets the settings and behaviour clients of the line expect and runs "
    "UDFs, with pandas below 3 and pyarrow. Libraries are installed within that environment's pins."
)

InstanceType = Annotated[
    str,
    StringConstraints(max_length=64, pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$"),
    Field(description="A cloud instance type, e.g. c8g.2xlarge.", examples=["c8g.2xlarge"]),
]
Uri = Annotated[str, StringConstraints(max_length=2048, pattern=r"^(s3|https?)://[^\s/]+(/\S*)?$")]
ImageUri = Annotated[str, StringConstraints(max_length=512, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")]
EnvName = Annotated[str, StringConstraints(max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
EnvValue = Annotated[str, StringConstraints(max_length=4096, pattern=r"^[^\x00]*$")]
# PEP 508 name, optional extras, optional version specifiers (no URLs or markers).
_SPEC = r"(===|==|>=|<=|~=|!=|>|<)\s*[A-Za-z0-9.*+!_-]+"
PackageSpec = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=255,
        pattern=rf"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[A-Za-z0-9._-]+(\s*,\s*[A-Za-z0-9._-]+)*\])?"
                rf"\s*({_SPEC}(\s*,\s*{_SPEC})*)?$",
    ),
]

VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
_IOPS_RANGES = {"gp3": (3000, 80000), "io1": (100, 64000), "io2": (100, 256000)}
_MIN_VOLUME_SIZE = {"st1": 125, "sc1": 125, "io1": 4, "io2": 4}
# Variables the platform sets itself: the execution mode, the worker count, and the markers the
# local backend uses to recognise its processes. Dynamic-loader variables are refused as well.
RESERVED_ENV = {"SAIL_MODE", "SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED"}
RESERVED_ENV_PREFIXES = ("SAILPLANE_", "SAIL_CLUSTER__WORKER_", "LD_")


class EbsConfig(RequestModel):
    volume_type: Literal["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"] = "gp3"
    volume_size: int = Field(default=100, ge=1, le=16384, description="GiB.")
    iops: int | None = Field(default=None, description="Only for gp3, io1 and io2.")
    throughput: int | None = Field(default=None, description="MiB/s; only for gp3 (125-2000).")
    delete_on_termination: bool = True

    @field_validator("volume_size")
    @classmethod
    def _size_for_type(cls, value: int, info: ValidationInfo) -> int:
        minimum = _MIN_VOLUME_SIZE.get(info.data.get("volume_type", "gp3"), 1)
        if value < minimum:
            raise ValueError(f"must be at least {minimum} GiB for this volume type")
        return value

    @field_validator("iops")
    @classmethod
    def _iops_for_type(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        volume_type = info.data.get("volume_type", "gp3")
        if volume_type not in _IOPS_RANGES:
            raise ValueError(f"cannot be set for volume type {volume_type} (only gp3, io1, io2)")
        low, high = _IOPS_RANGES[volume_type]
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high} for {volume_type}")
        return value

    @field_validator("throughput")
    @classmethod
    def _throughput_for_type(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        if info.data.get("volume_type", "gp3") != "gp3":
            raise ValueError("can only be set for gp3 volumes")
        if not 125 <= value <= 2000:
            raise ValueError("must be between 125 and 2000 MiB/s")
        return value


class DriverConfig(RequestModel):
    instance_type: InstanceType | None = None
    ebs_config: EbsConfig | None = None


class WorkerConfig(RequestModel):
    instance_type: InstanceType | None = None
    ebs_config: EbsConfig | None = None
    max_nodes: int = Field(default=1, ge=1, le=1000, description="Workers in cluster execution mode.")
    capacity_type: Literal["on-demand", "spot"] = "on-demand"


class ComputeSpec(RequestModel):
    driver: DriverConfig | None = None
    worker: WorkerConfig | None = None


class PypiLibrary(RequestModel):
    package: PackageSpec = Field(description="A requirement such as 'pandas>=2.2'.")
    repo: Uri | None = Field(default=None, description="An index URL; PyPI when omitted.")


class RequirementsLibrary(RequestModel):
    source: Annotated[str, StringConstraints(min_length=1, max_length=65536)] | None = Field(
        default=None, description="requirements.txt content.")
    uri: Uri | None = Field(default=None, description="Where a requirements.txt is (s3:// or https://).")

    @model_validator(mode="after")
    def _one_of(self) -> RequirementsLibrary:
        if (self.source is None) == (self.uri is None):
            raise ValueError("give exactly one of source or uri")
        return self


class Library(RequestModel):
    pypi: PypiLibrary | None = None
    requirements: RequirementsLibrary | None = None
    whl: Uri | None = Field(default=None, description="A wheel file URL (s3:// or https://).")

    @field_validator("whl")
    @classmethod
    def _is_wheel(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().endswith(".whl"):
            raise ValueError("must point to a .whl file")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Library:
        given = [k for k in ("pypi", "requirements", "whl") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a library is exactly one of pypi, requirements or whl")
        return self


SECRET_ENV_DESCRIPTION = (
    "An environment variable of the workload (its Sail server): a plain string, or `{\"type\", \"value\"}`. "
    "Type `string` is kept and shown as given; type `secret` is encrypted at rest, given only to the workload's "
    "environment and never returned: it reads back as `{\"type\": \"secret\"}`, without `value`."
)


class EnvVar(RequestModel):
    """The typed form of an extraEnv value (the notebooks seed's)."""

    type: Literal["string", "secret"] = "string"
    value: EnvValue


class SailConfig(RequestModel):
    execution_mode: Literal["standalone", "cluster"] = Field(
        default="standalone", description="standalone: one Sail server; cluster: a driver and workers.")
    max_retries: int | None = Field(
        default=None, ge=0, le=10,
        description="Attempts of a failed Sail task beyond the first (Sail's cluster.task_max_attempts - 1).")
    compute: ComputeSpec | None = None
    lakesail_image_uri: ImageUri | None = None
    libraries: list[Library] = Field(default_factory=list, max_length=100)
    extra_env: dict[EnvName, EnvValue | EnvVar] = Field(default_factory=dict, max_length=100,
                                                       description=SECRET_ENV_DESCRIPTION)
    spark_version: SparkVersion | None = Field(default=None, description=SPARK_VERSION_DESCRIPTION,
                                               examples=[DEFAULT_LINE])

    @field_validator("extra_env")
    @classmethod
    def _not_reserved(cls, value: dict[str, str | EnvVar]) -> dict[str, str | EnvVar]:
        for name in value:
            if name.upper() in RESERVED_ENV or name.upper().startswith(RESERVED_ENV_PREFIXES):
                raise ValueError(f"{name} is set by the platform and cannot be overridden")
        return value

    def worker_count(self) -> int:
        if self.execution_mode != "cluster":
            return 0
        worker = self.compute.worker if self.compute else None
        return worker.max_nodes if worker else 1


class WorkloadConfigBody(RequestModel):
    sail: SailConfig = Field(default_factory=SailConfig)


class EndpointLimits(RequestModel):
    spark_connect: int | None = Field(
        default=None, ge=0, le=10000, alias="spark_connect",  # snake_case on the wire, as seeded
        description="Most open Spark Connect sessions sharing one compute instance (0 or omitted: no limit).")


WorkloadType = Literal["sail"]


class CreateWorkloadConfigRequest(RequestModel):
    name: Name
    workload_type: WorkloadType = "sail"
    cluster_id: ResourceId | None = Field(default=None, description="Default: the built-in cluster LOCAL.")
    team_id: ResourceId
    config: WorkloadConfigBody = Field(default_factory=WorkloadConfigBody)
    endpoint_limits: EndpointLimits | None = None


class InlineWorkloadConfig(RequestModel):
    """A compute profile given with the session instead of a workloadConfigId (never listed)."""

    workload_type: WorkloadType = "sail"
    cluster_id: ResourceId | None = None
    config: WorkloadConfigBody = Field(default_factory=WorkloadConfigBody)
    endpoint_limits: EndpointLimits | None = None


class EbsConfigView(CompactModel):
    volume_type: str = "gp3"
    volume_size: int = 100
    iops: int | None = None
    throughput: int | None = None
    delete_on_termination: bool = True


class DriverConfigView(CompactModel):
    instance_type: str | None = None
    ebs_config: EbsConfigView | None = None


class WorkerConfigView(DriverConfigView):
    max_nodes: int = 1
    capacity_type: str = "on-demand"


class ComputeSpecView(CompactModel):
    driver: DriverConfigView | None = None
    worker: WorkerConfigView | None = None


class PypiLibraryView(CompactModel):
    package: str
    repo: str | None = None


class RequirementsLibraryView(CompactModel):
    source: str | None = None
    uri: str | None = None


class LibraryView(CompactModel):
    """Exactly one of pypi, requirements or whl is set."""

    pypi: PypiLibraryView | None = None
    requirements: RequirementsLibraryView | None = None
    whl: str | None = None


class EnvVarView(CompactModel):
    type: str
    value: str | None = Field(default=None, description="Left out for `secret` values, which are never returned.")


class SailConfigView(CompactModel):
    execution_mode: str = "standalone"
    max_retries: int | None = None
    spark_version: str | None = Field(default=None, description=SPARK_VERSION_DESCRIPTION)
    compute: ComputeSpecView | None = None
    lakesail_image_uri: str | None = None
    libraries: list[LibraryView] = Field(default_factory=list)
    extra_env: dict[str, str | EnvVarView] = Field(default_factory=dict, description=SECRET_ENV_DESCRIPTION)

    @field_validator("extra_env", mode="before")
    @classmethod
    def _hide_secrets(cls, value: Any) -> Any:
        """Stored secrets carry only their ciphertext (`encryptedValue`), which is never shown."""
        if not isinstance(value, dict):
            return value
        return {k: {"type": "secret"} if isinstance(v, dict) and v.get("type") == "secret" else v
                for k, v in value.items()}


class WorkloadConfigBodyView(CompactModel):
    """A saved workload config's settings, as validated on creation (CreateWorkloadConfigRequest.config)."""

    sail: SailConfigView = Field(default_factory=SailConfigView)


class EndpointLimitsView(CompactModel):
    spark_connect: int | None = Field(default=None, alias="spark_connect")


class WorkloadConfigView(ApiModel):
    id: str
    name: str | None
    workload_type: str
    cluster_id: str
    team_id: str
    config: WorkloadConfigBodyView
    endpoint_limits: EndpointLimitsView
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class WorkloadConfigList(ApiModel):
    items: list[WorkloadConfigView]
    marker: str | None = None


# --- sessions ---------------------------------------------------------------------------------

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]
MetadataValue = Annotated[str, StringConstraints(max_length=4096)]


class SessionConfigRequest(RequestModel):
    idle_timeout_seconds: int | None = Field(default=None, ge=1, description="Seconds without calls before idle.")
    idle_close_delay_seconds: int | None = Field(default=None, ge=0, description="Seconds idle before closing.")
    max_duration_seconds: int | None = Field(default=None, ge=1, description="Seconds from creation to closing.")


class CreateSessionRequest(RequestModel):
    endpoint_type: Literal["spark_connect"] = "spark_connect"
    name: Name | None = None
    team_id: ResourceId | None = Field(default=None, description="Default: the workload config's team.")
    member_id: ResourceId | None = Field(default=None, description="The owner; only the caller themselves.")
    service_account_id: ResourceId | None = Field(default=None, description="The owner; only the caller itself.")
    notebook_id: ResourceId | None = None
    config: SessionConfigRequest | None = None
    metadata: dict[MetadataKey, MetadataValue] | None = Field(default=None, max_length=50)
    workload_config_id: ResourceId | None = None
    workload_config: InlineWorkloadConfig | None = Field(
        default=None, description="An inline compute profile, instead of workloadConfigId.")
    allow_shared: bool = Field(default=False, description="Reuse a running instance of the same config.")


class ConnectionInfo(ApiModel):
    proxy_auth_url: str | None = None
    grpc_endpoint: str | None = None


class SessionConfigView(ApiModel):
    idle_timeout_seconds: int
    idle_close_delay_seconds: int
    max_duration_seconds: int


class SessionView(ApiModel):
    id: str
    endpoint_type: str
    name: str
    status: str
    workload_id: str
    team_id: str
    member_id: str | None
    service_account_id: str | None
    notebook_id: str | None
    termination_reason: str | None
    status_message: str | None
    connection_info: ConnectionInfo | None = Field(description="Only for the session owner.")
    last_activity_at: Timestamp | None
    idle_since: Timestamp | None
    closed_at: Timestamp | None
    timeout_at: Timestamp | None
    config: SessionConfigView
    metadata: dict[str, str]
    created_at: Timestamp
    updated_at: Timestamp


class SessionItem(ApiModel):
    id: str
    compute_instance_id: str
    member_id: str | None
    service_account_id: str | None


class MemberRef(ApiModel):
    id: str
    organization_id: str
    user_id: str
    name: str
    email: str
    preferences: dict[str, Any]
    invited_by_member_id: str | None = None
    invite_expires_at: Timestamp | None = None
    invite_accepted_at: Timestamp | None = None
    last_login_at: Timestamp | None = None
    last_active_at: Timestamp | None = None
    is_enabled: bool
    account_type: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class ServiceAccountRef(ApiModel):
    id: str
    username: str
    description: str | None
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class WorkloadView(ApiModel):
    id: str
    workload_config_id: str
    infra_status: str
    shutdown_policy: str
    endpoints: dict[str, str]
    provisioned_at: Timestamp | None
    cleaned_at: Timestamp | None
    last_activity_at: Timestamp | None
    status_message: str | None
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class SessionIncluded(ApiModel):
    sessions: list[SessionView]
    members: list[MemberRef]
    service_accounts: list[ServiceAccountRef]
    workloads: list[WorkloadView]
    workload_configs: list[WorkloadConfigView]


class SessionList(ApiModel):
    total: int
    items: list[SessionItem]
    included: SessionIncluded
    marker: str | None = None


class IssueTokenRequest(RequestModel):
    duration_seconds: int | None = Field(default=None, ge=60,
                                         description="Default 28800; at most 86400 unless the server says otherwise.")


class SessionToken(ApiModel):
    token: str
    expires_at: Timestamp


class SessionMessage(ApiModel):
    message: str


SESSION_CLOSED = {"message": "The session was closed successfully."}
