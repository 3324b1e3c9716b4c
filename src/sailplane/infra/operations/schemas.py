"""Wire shape of an operation (the `clusters` seed's `operations[]`, and getOperation)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from sailplane.kit.schemas import ApiModel, CompactModel, Timestamp


class OperationErrorDetails(ApiModel):
    retryable: bool = False
    retry_after: int | None = None
    field_errors: dict[str, str] = Field(default_factory=dict)
    request_id: str | None = None
    caused_by: str | None = None


class OperationError(ApiModel):
    code: str
    message: str
    error_type: str
    details: OperationErrorDetails


class ProgressResource(ApiModel):
    urn: str
    type: str
    name: str
    operation: str
    status: str = Field(description="pending, running, succeeded, failed or unchanged.")
    duration: float = Field(description="Seconds spent in this step so far.")


class ProgressSummary(ApiModel):
    total: int
    pending: int
    running: int
    succeeded: int
    failed: int
    unchanged: int


class OperationProgress(ApiModel):
    stage: str = Field(description="The current (or last) step.")
    message: str
    resources: list[ProgressResource]
    summary: ProgressSummary


class OperationResult(CompactModel):
    """What a succeeded operation produced (fields left out when they do not apply to its kind): a template
    sync's stack and versions."""

    model_config = ConfigDict(extra="allow")

    stack_arn: str | None = None
    previous_version: str | None = None
    template_version: str | None = None
    updated: bool | None = Field(default=None, description="Whether the operation changed anything.")


class OperationView(ApiModel):
    id: str
    organization_id: str
    member_id: str | None = None
    operation: str = Field(description="What it does, e.g. sync_connection_template.")
    status: str = Field(description="pending, running, succeeded or failed.")
    result: OperationResult | None = None
    error: OperationError | None = None
    progress: OperationProgress | None = None
    resource_type: str
    resource_id: str
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
