"""Wire shapes of the `notebooks` seed (camelCase): the notebook record, the normalized
`{total, items[{notebookId, teamIds, workloadConfigId}], included{notebooks, teams, workloadConfigs}}`
envelopes, team links and request bodies; plus the source and its revisions (beyond the seed)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sailplane.kit.schemas import ApiModel, Description, Name, NotNull, RequestModel, ResourceId, Timestamp
from sailplane.tenancy.teams.schemas import TeamItem
from sailplane.workloads.notebooks.models import DEFAULT_DETACHED_TIMEOUT_SECONDS, DEFAULT_IDLE_TIMEOUT_SECONDS
from sailplane.workloads.schemas import WorkloadConfigView

MAX_TIMEOUT_SECONDS = 30 * 24 * 3600
MAX_SOURCE_BYTES = 1024 * 1024
"""A notebook's source, UTF-8 encoded (larger replacements answer 413)."""
MAX_REVISIONS = 50
"""Previous sources kept per notebook; the oldest go first."""

IdleTimeout = Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS, examples=[DEFAULT_IDLE_TIMEOUT_SECONDS],
                                   description="Seconds without activity before the running notebook is stopped.")]
DetachedTimeout = Annotated[int, Field(
    ge=1, le=MAX_TIMEOUT_SECONDS, examples=[DEFAULT_DETACHED_TIMEOUT_SECONDS],
    description="Seconds with no browser attached before the running notebook is stopped.")]
TeamIds = Annotated[list[ResourceId], Field(max_length=50)]


class CreateNotebookRequest(RequestModel):
    workload_config_id: ResourceId = Field(description="A workload config of a team in which you may manage "
                                                       "notebooks.")
    name: Name = Field(examples=["Daily Sales Analysis"])
    description: Description | None = Field(default=None, examples=["Daily ETL pipeline for sales data"])
    idle_timeout_seconds: IdleTimeout = DEFAULT_IDLE_TIMEOUT_SECONDS
    detached_timeout_seconds: DetachedTimeout = DEFAULT_DETACHED_TIMEOUT_SECONDS
    team_ids: TeamIds = Field(default_factory=list, description="Teams (of yours) to share the notebook with.")


class UpdateNotebookRequest(RequestModel):
    workload_config_id: Annotated[ResourceId | None, NotNull] = Field(
        default=None, description="Only while the notebook is stopped (else 409).")
    name: Annotated[Name | None, NotNull] = None
    description: Description | None = Field(default=None, description="null clears the description.")
    idle_timeout_seconds: Annotated[IdleTimeout | None, NotNull] = None
    detached_timeout_seconds: Annotated[DetachedTimeout | None, NotNull] = None


class NotebookTeamsRequest(RequestModel):
    team_ids: Annotated[list[ResourceId], Field(min_length=1, max_length=50)]


class NotebookView(ApiModel):
    id: str
    member_id: str = Field(description="The owner.")
    workload_config_id: str
    name: str
    description: str | None
    status: str = Field(description="stopped, starting, running, idle, detached, stopping or failed.")
    status_message: str | None
    idle_timeout_seconds: int
    detached_timeout_seconds: int
    last_active_at: Timestamp | None
    session_id: str | None
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class NotebookRef(ApiModel):
    notebook_id: str
    team_ids: list[str]
    workload_config_id: str


class NotebookIncluded(ApiModel):
    notebooks: list[NotebookView]
    teams: list[TeamItem] = Field(description="The notebooks' teams that the caller can see.")
    workload_configs: list[WorkloadConfigView] = Field(
        description="The notebooks' workload configs that the caller can see.")


class NotebookList(ApiModel):
    total: int
    items: list[NotebookRef]
    included: NotebookIncluded


class NotebookDescription(ApiModel):
    item: NotebookRef
    included: NotebookIncluded


class NotebookOpenUrl(ApiModel):
    url: str = Field(description="The notebook proxy's authentication URL: valid for 5 minutes, usable once.")


class NotebookTeamLink(ApiModel):
    notebook_id: str
    team_id: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class NotebookTeamLinks(ApiModel):
    items: list[NotebookTeamLink]


# --- source (beyond the seed) -------------------------------------------------------------------

class NotebookSourceInfo(ApiModel):
    notebook_id: str
    size: int = Field(description="Bytes (UTF-8).")
    updated_at: Timestamp
    updated_by: str | None
    revision_id: str | None = Field(
        default=None, description="The revision now keeping the replaced source (null when nothing changed).")


class NotebookRevisionView(ApiModel):
    id: str
    notebook_id: str
    size: int = Field(description="Bytes (UTF-8).")
    created_at: Timestamp = Field(description="When this source was replaced (and so became a revision).")
    created_by: str | None = Field(description="Who replaced it.")


class NotebookRevisionList(ApiModel):
    total: int
    items: list[NotebookRevisionView] = Field(description="Newest first.")
