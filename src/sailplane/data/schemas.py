"""Wire shapes for catalogs and saved queries: records, the normalized list/describe envelopes
(`{total, items[{catalogId|queryId, teamIds}], included{...}}` as /me/jobs), and request bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from sailplane.data.providers import Provider
from sailplane.kit.input import JsonObject
from sailplane.kit.schemas import ApiModel, Description, Name, NotNull, RequestModel, ResourceId, Timestamp
from sailplane.tenancy.teams.schemas import TeamItem, TeamView

MAX_SQL_BYTES = 1024 * 1024
Sql = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SQL_BYTES)]
SchemaName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
TeamIds = Annotated[list[ResourceId], Field(min_length=1, max_length=50)]


class CatalogView(ApiModel):
    id: str
    organization_id: str
    name: str
    description: str | None
    provider: str
    provider_config: dict[str, Any] = Field(description="The provider settings, without secrets.")
    configured_secrets: list[str] = Field(description="Secret settings that are set (their values are never returned).")
    status: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class QueryView(ApiModel):
    id: str
    organization_id: str
    name: str
    description: str | None
    sql: str
    catalog_id: str | None
    schema_: str | None = Field(alias="schema")
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class CatalogRef(ApiModel):
    catalog_id: str
    team_ids: list[str]


class QueryRef(ApiModel):
    query_id: str
    catalog_id: str | None
    team_ids: list[str]


class CatalogIncluded(ApiModel):
    catalogs: list[CatalogView]
    teams: list[TeamView]


class QueryIncluded(ApiModel):
    queries: list[QueryView]
    catalogs: list[CatalogView]
    teams: list[TeamView]


class CatalogList(ApiModel):
    total: int
    items: list[CatalogRef]
    included: CatalogIncluded


class CatalogDescription(ApiModel):
    item: CatalogRef
    included: CatalogIncluded


class QueryList(ApiModel):
    total: int
    items: list[QueryRef]
    included: QueryIncluded


class QueryDescription(ApiModel):
    item: QueryRef
    included: QueryIncluded


class ResourceTeamList(ApiModel):
    total: int
    items: list[TeamItem]


def team_list(total: int, teams: Sequence[tuple[Any, int]]) -> ResourceTeamList:
    """The teams a resource is shared with (Team rows with their member counts), as listCatalogTeams answers."""
    return ResourceTeamList(total=total, items=[TeamItem(team=TeamView.model_validate(t), member_count=n)
                                                for t, n in teams])


class CatalogTeamLink(ApiModel):
    catalog_id: str
    team_id: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class QueryTeamLink(ApiModel):
    query_id: str
    team_id: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class CatalogTeamLinks(ApiModel):
    items: list[CatalogTeamLink]


class QueryTeamLinks(ApiModel):
    items: list[QueryTeamLink]


class CreateCatalogRequest(RequestModel):
    name: Name
    description: Description | None = None
    provider: Provider
    provider_config: JsonObject = Field(description="Validated per provider; secret fields are write-only.")
    team_ids: TeamIds


class UpdateCatalogRequest(RequestModel):
    name: Annotated[Name | None, NotNull] = None
    description: Description | None = Field(default=None, description="null clears the description.")
    provider_config: Annotated[JsonObject | None, NotNull] = Field(
        default=None,
        description="Merged into the current configuration: given fields replace, null removes an optional field, "
                    "omitted secrets are kept.",
    )


class TeamIdsRequest(RequestModel):
    team_ids: TeamIds


class CreateQueryRequest(RequestModel):
    name: Name
    description: Description | None = None
    sql: Sql
    catalog_id: ResourceId | None = None
    schema_: SchemaName | None = Field(default=None, alias="schema")
    team_ids: TeamIds


class UpdateQueryRequest(RequestModel):
    name: Annotated[Name | None, NotNull] = None
    description: Description | None = Field(default=None, description="null clears the description.")
    sql: Annotated[Sql | None, NotNull] = None
    catalog_id: ResourceId | None = Field(default=None, description="null detaches the query from its catalog.")
    schema_: SchemaName | None = Field(default=None, alias="schema")
