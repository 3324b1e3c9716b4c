"""HTTP routes for catalogs (/data/catalogs, /me/catalogs) and saved queries (/workloads/queries,
/me/queries). Visibility and manage checks depend on the resource's teams, so they live in the
service; team-scoped listings declare their check here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from sailplane.data import service
from sailplane.data.models import Catalog
from sailplane.data.models import Query as SavedQuery
from sailplane.data.providers import LocalStorage
from sailplane.data.schemas import (
    CatalogDescription,
    CatalogIncluded,
    CatalogList,
    CatalogRef,
    CatalogTeamLink,
    CatalogTeamLinks,
    CatalogView,
    CreateCatalogRequest,
    CreateQueryRequest,
    QueryDescription,
    QueryIncluded,
    QueryList,
    QueryRef,
    QueryTeamLink,
    QueryTeamLinks,
    QueryView,
    ResourceTeamList,
    TeamIdsRequest,
    UpdateCatalogRequest,
    UpdateQueryRequest,
    team_list,
)
from sailplane.iam.auth.deps import AppSettings, CurrentPrincipal, Db, require_team
from sailplane.iam.auth.principal import Principal
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.crypto import Encryptor
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import Limit, PageRequest, paging
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message
from sailplane.tenancy.teams.schemas import TeamView
from sailplane.workloads.jobs import service as jobs

catalogs_router = APIRouter(route_class=JsonRoute, tags=["catalogs"])
queries_router = APIRouter(route_class=JsonRoute, tags=["queries"])

Ctx = Annotated[RequestContext, Depends(request_context)]
CatalogId = Annotated[str, Path(pattern=ID_PATTERN, description="A catalog ID.")]
QueryId = Annotated[str, Path(pattern=ID_PATTERN, description="A query ID.")]
TeamId = Annotated[str, Path(pattern=ID_PATTERN, description="The team ID.")]
ViewTeamCatalogs = Annotated[Principal, Depends(require_team("CanViewCatalogs"))]
ViewTeamQueries = Annotated[Principal, Depends(require_team("CanViewQueries"))]
SORTABLE_CATALOGS = ("name", "updatedAt")
SORTABLE_QUERIES = ("updatedAt", "name")  # the first is the default


CatalogPaging = Annotated[PageRequest, Depends(paging(SORTABLE_CATALOGS))]
QueryPaging = Annotated[PageRequest, Depends(paging(SORTABLE_QUERIES))]


def _encryptor(settings: AppSettings) -> Encryptor:
    return Encryptor(settings.secret_key)


Crypto = Annotated[Encryptor, Depends(_encryptor)]


def _storage(settings: AppSettings) -> LocalStorage:
    return LocalStorage(settings.warehouse_root, settings.data_dir)


Storage = Annotated[LocalStorage, Depends(_storage)]


# --- shaping ------------------------------------------------------------------------------------

def catalog_view(c: Catalog) -> CatalogView:
    return CatalogView(
        id=c.id, organization_id=c.organization_id, name=c.name, description=c.description, provider=c.provider,
        provider_config=dict(c.provider_config or {}), configured_secrets=list(c.secret_fields or []),
        status=c.status, created_at=c.created_at, created_by=c.created_by, updated_at=c.updated_at,
        updated_by=c.updated_by,
    )


def query_view(q: SavedQuery) -> QueryView:
    return QueryView(
        id=q.id, organization_id=q.organization_id, name=q.name, description=q.description, sql=q.sql,
        catalog_id=q.catalog_id, schema=q.schema_name, created_at=q.created_at, created_by=q.created_by,
        updated_at=q.updated_at, updated_by=q.updated_by,
    )


def _catalog_parts(listing: service.Listing) -> tuple[list[CatalogRef], CatalogIncluded]:
    refs = [CatalogRef(catalog_id=c.id, team_ids=listing.team_ids.get(c.id, [])) for c in listing.records]
    included = CatalogIncluded(catalogs=[catalog_view(c) for c in listing.records],
                               teams=[TeamView.model_validate(t) for t in listing.teams])
    return refs, included


def _query_parts(listing: service.Listing) -> tuple[list[QueryRef], QueryIncluded]:
    refs = [QueryRef(query_id=q.id, catalog_id=q.catalog_id, team_ids=listing.team_ids.get(q.id, []))
            for q in listing.records]
    included = QueryIncluded(queries=[query_view(q) for q in listing.records],
                             catalogs=[catalog_view(c) for c in listing.catalogs],
                             teams=[TeamView.model_validate(t) for t in listing.teams])
    return refs, included


def catalog_list(listing: service.Listing) -> CatalogList:
    items, included = _catalog_parts(listing)
    return CatalogList(total=listing.total, items=items, included=included)


def query_list(listing: service.Listing) -> QueryList:
    items, included = _query_parts(listing)
    return QueryList(total=listing.total, items=items, included=included)


# --- catalogs -----------------------------------------------------------------------------------

@catalogs_router.get("/me/catalogs", operation_id="listMyCatalogs", response_model=CatalogList)
def list_my_catalogs(db: Db, principal: CurrentPrincipal, paging: CatalogPaging) -> CatalogList:
    """Catalogs the caller can use through their teams (all of them for organization admins), paged."""
    return catalog_list(service.list_mine(db, principal, service.CATALOGS, paging))


@catalogs_router.get("/data/catalogs", operation_id="listCatalogs", response_model=CatalogList)
def list_catalogs(db: Db, principal: CurrentPrincipal, limit: Limit = 100) -> CatalogList:
    """Every catalog of the organization the caller may view, by name."""
    return catalog_list(service.list_all(db, principal, service.CATALOGS, limit))


@catalogs_router.post("/data/catalogs", operation_id="createCatalog", status_code=201, response_model=CatalogView)
def create_catalog(body: CreateCatalogRequest, db: Db, principal: CurrentPrincipal, crypto: Crypto,
                   storage: Storage, ctx: Ctx) -> CatalogView:
    """Register a catalog for teams in which the caller manages catalogs; secrets are write-only.
    A local catalog's warehouseDir must lie below the server's storage root."""
    return catalog_view(service.create_catalog(db, principal, body.model_dump(), crypto, storage, ctx))


@catalogs_router.get("/data/catalogs/{catalog}", operation_id="describeCatalog", response_model=CatalogDescription)
def describe_catalog(catalog: CatalogId, db: Db, principal: CurrentPrincipal) -> CatalogDescription:
    """The catalog with its teams; 404 unless it is shared with one of the caller's teams."""
    item, included = _catalog_parts(service.describe(db, principal, service.CATALOGS, catalog))
    return CatalogDescription(item=item[0], included=included)


@catalogs_router.patch("/data/catalogs/{catalog}", operation_id="updateCatalog", response_model=CatalogView)
def update_catalog(catalog: CatalogId, body: UpdateCatalogRequest, db: Db, principal: CurrentPrincipal,
                   crypto: Crypto, storage: Storage, ctx: Ctx) -> CatalogView:
    """Rename, describe, or change provider settings (merged; omitted secrets are kept)."""
    changes = body.model_dump(include=body.model_fields_set)
    return catalog_view(service.update_catalog(db, principal, catalog, changes, crypto, storage, ctx))


@catalogs_router.delete("/data/catalogs/{catalog}", operation_id="deleteCatalog", response_model=Message)
def delete_catalog(catalog: CatalogId, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, str]:
    """Remove the catalog and its team links; queries that used it keep existing without a catalog."""
    service.delete_resource(db, principal, service.CATALOGS, catalog, ctx)
    return DONE


@catalogs_router.get("/data/catalogs/{catalog}/teams", operation_id="listCatalogTeams",
                     response_model=ResourceTeamList)
def list_catalog_teams(catalog: CatalogId, db: Db, principal: CurrentPrincipal, limit: Limit = 100) -> ResourceTeamList:
    """The teams the catalog is shared with."""
    total, teams = service.list_teams(db, principal, service.CATALOGS, catalog, limit)
    return team_list(total, teams)


@catalogs_router.post("/data/catalogs/{catalog}/teams", operation_id="addCatalogTeams",
                      response_model=CatalogTeamLinks)
def add_catalog_teams(catalog: CatalogId, body: TeamIdsRequest, db: Db, principal: CurrentPrincipal,
                      ctx: Ctx) -> CatalogTeamLinks:
    """Share the catalog with more teams (idempotent)."""
    links = service.add_teams(db, principal, service.CATALOGS, catalog, body.team_ids, ctx)
    return CatalogTeamLinks(items=[CatalogTeamLink.model_validate(x) for x in links])


@catalogs_router.delete("/data/catalogs/{catalog}/teams/{team}", operation_id="removeCatalogTeam",
                        response_model=Message)
def remove_catalog_team(catalog: CatalogId, team: TeamId, db: Db, principal: CurrentPrincipal,
                        ctx: Ctx) -> dict[str, str]:
    """Stop sharing the catalog with a team; the last team cannot be removed (409)."""
    service.remove_team(db, principal, service.CATALOGS, catalog, team, ctx)
    return DONE


@catalogs_router.get("/data/catalogs/{catalog}/queries", operation_id="listCatalogQueries", response_model=QueryList)
def list_catalog_queries(catalog: CatalogId, db: Db, principal: CurrentPrincipal, limit: Limit = 100) -> QueryList:
    """Saved queries (that the caller may view) using this catalog."""
    return query_list(service.list_catalog_queries(db, principal, catalog, limit))


@catalogs_router.get("/data/teams/{team}/catalogs", operation_id="listTeamCatalogs", response_model=CatalogList)
def list_team_catalogs(team: TeamId, db: Db, principal: ViewTeamCatalogs, limit: Limit = 100) -> CatalogList:
    """Catalogs shared with the team."""
    return catalog_list(service.list_for_team(db, principal, service.CATALOGS, team, limit))


# --- queries ------------------------------------------------------------------------------------

@queries_router.get("/me/queries", operation_id="listMyQueries", response_model=QueryList)
def list_my_queries(db: Db, principal: CurrentPrincipal, paging: QueryPaging) -> QueryList:
    """Saved queries the caller can use through their teams, paged (default: by updatedAt)."""
    return query_list(service.list_mine(db, principal, service.QUERIES, paging))


@queries_router.get("/workloads/queries", operation_id="listQueries", response_model=QueryList)
def list_queries(db: Db, principal: CurrentPrincipal, limit: Limit = 100) -> QueryList:
    """Every saved query of the organization the caller may view, with SQL and catalogs."""
    return query_list(service.list_all(db, principal, service.QUERIES, limit))


@queries_router.post("/workloads/queries", operation_id="createQuery", status_code=201, response_model=QueryView)
def create_query(body: CreateQueryRequest, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> QueryView:
    """Save SQL (optionally with a catalog the caller can see and a schema) for teams."""
    return query_view(service.create_query(db, principal, body.model_dump(), ctx))


@queries_router.get("/workloads/queries/{query}", operation_id="describeQuery", response_model=QueryDescription)
def describe_query(query: QueryId, db: Db, principal: CurrentPrincipal) -> QueryDescription:
    """The query with its catalog and teams; 404 unless shared with one of the caller's teams."""
    item, included = _query_parts(service.describe(db, principal, service.QUERIES, query))
    return QueryDescription(item=item[0], included=included)


@queries_router.patch("/workloads/queries/{query}", operation_id="updateQuery", response_model=QueryView)
def update_query(query: QueryId, body: UpdateQueryRequest, db: Db, principal: CurrentPrincipal,
                 ctx: Ctx) -> QueryView:
    """Change the name, description, SQL, catalog (null detaches) or schema."""
    changes = body.model_dump(include=body.model_fields_set)
    return query_view(service.update_query(db, principal, query, changes, ctx))


@queries_router.delete("/workloads/queries/{query}", operation_id="deleteQuery", response_model=Message)
def delete_query(query: QueryId, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, str]:
    """Remove the query and its team links; refused (409) while an active job uses it."""
    service.delete_resource(db, principal, service.QUERIES, query, ctx, jobs_using_query=jobs.active_jobs_using_query)
    return DONE


@queries_router.get("/workloads/queries/{query}/teams", operation_id="listQueryTeams",
                    response_model=ResourceTeamList)
def list_query_teams(query: QueryId, db: Db, principal: CurrentPrincipal, limit: Limit = 100) -> ResourceTeamList:
    """The teams the query is shared with."""
    total, teams = service.list_teams(db, principal, service.QUERIES, query, limit)
    return team_list(total, teams)


@queries_router.post("/workloads/queries/{query}/teams", operation_id="addQueryTeams", response_model=QueryTeamLinks)
def add_query_teams(query: QueryId, body: TeamIdsRequest, db: Db, principal: CurrentPrincipal,
                    ctx: Ctx) -> QueryTeamLinks:
    """Share the query with more teams (idempotent)."""
    links = service.add_teams(db, principal, service.QUERIES, query, body.team_ids, ctx)
    return QueryTeamLinks(items=[QueryTeamLink.model_validate(x) for x in links])


@queries_router.delete("/workloads/queries/{query}/teams/{team}", operation_id="removeQueryTeam",
                       response_model=Message)
def remove_query_team(query: QueryId, team: TeamId, db: Db, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, str]:
    """Stop sharing the query with a team; the last team cannot be removed (409)."""
    service.remove_team(db, principal, service.QUERIES, query, team, ctx)
    return DONE


@queries_router.get("/workloads/teams/{team}/queries", operation_id="listTeamQueries", response_model=QueryList)
def list_team_queries(team: TeamId, db: Db, principal: ViewTeamQueries, limit: Limit = 100) -> QueryList:
    """Saved queries shared with the team."""
    return query_list(service.list_for_team(db, principal, service.QUERIES, team, limit))
