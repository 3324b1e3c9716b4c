"""Catalogs and saved queries: shared resources that belong to teams.

Visibility: organization admins (roles with allTeams) and holders of the organization-wide view
permission see every catalog/query of the organization; everyone else sees those shared with a
team in which they hold the view permission (every team role includes it). Anything else is 404.
Managing needs the manage permission organization-wide or in one of the resource's teams (403).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from sailplane.data import providers
from sailplane.data.models import Catalog, CatalogTeam, Query, QueryTeam
from sailplane.data.providers import LocalStorage, StorageError
from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Principal
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import Encryptor
from sailplane.kit.errors import conflict, forbidden, invalid, not_found
from sailplane.kit.pagination import PageRequest, count
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org.service import ordered, page_total, paged
from sailplane.tenancy.teams.models import Team
from sailplane.tenancy.teams.service import get_team, with_member_counts

MAX_SQL_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Kind:
    """What differs between the two shared resource kinds."""

    model: type[Catalog] | type[Query]
    link: type[CatalogTeam] | type[QueryTeam]
    link_key: str  # the link's column naming the resource
    view: str
    manage: str
    what: str

    def link_col(self) -> Any:
        return getattr(self.link, self.link_key)


CATALOGS = Kind(Catalog, CatalogTeam, "catalog_id", "CanViewCatalogs", "CanManageCatalogs", "catalog")
QUERIES = Kind(Query, QueryTeam, "query_id", "CanViewQueries", "CanManageQueries", "query")


@dataclass
class Listing:
    """Records in order, each with its team IDs, plus the teams (and catalogs) they reference."""

    total: int
    records: list[Any]
    team_ids: dict[str, list[str]]
    teams: list[Team] = field(default_factory=list)
    catalogs: list[Catalog] = field(default_factory=list)


QueryUsageCheck = Callable[[Session, Principal, str], Sequence[str | None]]
"""Keys of the active jobs that run a saved query, None for each job the caller may not see (its key is not
theirs to learn): jobs.service.active_jobs_using_query, which deleteQuery passes in (jobs builds on data)."""


# --- visibility and permissions ---------------------------------------------------------------

def _visible_stmt(principal: Principal, kind: Kind) -> Select[Any]:
    return select(kind.model).where(kind.model.organization_id == principal.organization_id,
                                    authz.shared_with_visible_team(principal, kind.view, kind.model.id,
                                                                   kind.link_col(), kind.link.team_id))


def _team_ids(db: Session, kind: Kind, ids: Iterable[str]) -> dict[str, list[str]]:
    wanted = list(dict.fromkeys(ids))
    result: dict[str, list[str]] = {i: [] for i in wanted}
    if wanted:
        rows = db.execute(select(kind.link_col(), kind.link.team_id).where(kind.link_col().in_(wanted))
                          .order_by(kind.link.created_at, kind.link.team_id))
        for resource_id, team_id in rows:
            result[resource_id].append(team_id)
    return result


def find_visible(db: Session, principal: Principal, kind: Kind, resource_id: str) -> Any | None:
    """The catalog or query if the caller may see it, else None: a reference to it elsewhere (a
    job's `config.sql.queryId`, a query's `catalogId`) is then answered as unknown (422)."""
    return db.scalar(_visible_stmt(principal, kind).where(kind.model.id == resource_id))


def shared_with(db: Session, kind: Kind, resource_id: str, team_ids: Iterable[str]) -> bool:
    """Whether the catalog or query is shared with at least one of the teams (a job's teams)."""
    teams = list(team_ids)
    if not teams:
        return False
    found = db.scalar(select(kind.link.team_id).where(kind.link_col() == resource_id,
                                                       kind.link.team_id.in_(teams)).limit(1))
    return found is not None


def _get(db: Session, principal: Principal, kind: Kind, resource_id: str, *, lock: bool = False) -> Any:
    stmt = _visible_stmt(principal, kind).where(kind.model.id == resource_id)
    if lock:
        stmt = stmt.with_for_update()
    record = db.scalar(stmt)
    if record is None:
        raise not_found(kind.what)
    return record


def _can_manage(principal: Principal, kind: Kind, team_ids: Iterable[str]) -> bool:
    return authz.may_in_any(principal, kind.manage, team_ids)


def _require_manage(db: Session, principal: Principal, kind: Kind, resource_id: str) -> list[str]:
    teams = _team_ids(db, kind, [resource_id])[resource_id]
    if not _can_manage(principal, kind, teams):
        raise forbidden(f"This operation needs the {kind.manage} permission in one of the {kind.what}'s teams.")
    return teams


def _check_teams(db: Session, principal: Principal, kind: Kind, team_ids: Sequence[str], *,
                 must_manage: bool) -> list[str]:
    """Teams must be in this organization and visible to the caller, or the caller holds the view or
    manage permission organization-wide (else 422, revealing nothing); with `must_manage`, the caller
    needs the manage permission in each (else 403)."""
    wanted = list(dict.fromkeys(team_ids))
    found = set(db.scalars(select(Team.id).where(Team.organization_id == principal.organization_id,
                                                 Team.id.in_(wanted))))
    unknown = [t for t in wanted
               if t not in found or not authz.may_name_team(principal, kind.view, kind.manage, t)]
    if unknown:
        raise invalid("teamIds", f"unknown team {', '.join(unknown)}")
    if must_manage:
        denied = [t for t in wanted if not principal.has(kind.manage, t)]
        if denied:
            raise forbidden(f"This operation needs the {kind.manage} permission in team {', '.join(denied)}.")
    return wanted


def _check_unique_name(db: Session, kind: Kind, org_id: str, name: str, exclude: str | None = None) -> None:
    stmt = select(kind.model.id).where(kind.model.organization_id == org_id,
                                       func.lower(kind.model.name) == name.lower())
    if exclude is not None:
        stmt = stmt.where(kind.model.id != exclude)
    if db.scalar(stmt.limit(1)) is not None:
        raise conflict(f"{kind.what}_name_taken", f"A {kind.what} with this name already exists in the organization.")


def _touch(record: Any, principal: Principal) -> None:
    record.updated_at = utcnow()
    record.updated_by = principal.actor_id


# --- listings ---------------------------------------------------------------------------------

def _sort_key(kind: Kind, pr: PageRequest) -> Any:
    return kind.model.updated_at if pr.sort_by == "updatedAt" else func.lower(kind.model.name)


def _listing(db: Session, principal: Principal, kind: Kind, records: list[Any], total: int) -> Listing:
    team_ids = _team_ids(db, kind, [r.id for r in records])
    # Team details follow team visibility; the IDs themselves are part of the resource.
    all_teams = sorted({t for ts in team_ids.values() for t in ts if principal.can_see_team(t)})
    teams = list(db.scalars(select(Team).where(Team.id.in_(all_teams)).order_by(Team.id))) if all_teams else []
    catalogs: list[Catalog] = []
    if kind is QUERIES:
        catalog_ids = sorted({r.catalog_id for r in records if r.catalog_id})
        if catalog_ids:
            catalogs = list(db.scalars(_visible_stmt(principal, CATALOGS).where(Catalog.id.in_(catalog_ids))
                                       .order_by(Catalog.id)))
    return Listing(total, records, team_ids, teams, catalogs)


def list_mine(db: Session, principal: Principal, kind: Kind, pr: PageRequest) -> Listing:
    """Page/sort listing (/me/catalogs, /me/queries)."""
    stmt = _visible_stmt(principal, kind)
    records = list(db.scalars(paged(ordered(stmt, pr, _sort_key(kind, pr), kind.model.id), pr)))
    return _listing(db, principal, kind, records, page_total(db, stmt, pr, len(records)))


def _limited(db: Session, principal: Principal, kind: Kind, stmt: Select[Any], limit: int) -> Listing:
    records = list(db.scalars(stmt.order_by(func.lower(kind.model.name), kind.model.id).limit(limit)))
    total = len(records) if len(records) < limit else count(db, stmt)
    return _listing(db, principal, kind, records, total)


def list_all(db: Session, principal: Principal, kind: Kind, limit: int) -> Listing:
    """Every catalog/query of the organization the caller may view, by name."""
    return _limited(db, principal, kind, _visible_stmt(principal, kind), limit)


def list_for_team(db: Session, principal: Principal, kind: Kind, team_id: str, limit: int) -> Listing:
    team = get_team(db, principal, team_id)
    stmt = _visible_stmt(principal, kind).where(
        kind.model.id.in_(select(kind.link_col()).where(kind.link.team_id == team.id)))
    return _limited(db, principal, kind, stmt, limit)


def list_catalog_queries(db: Session, principal: Principal, catalog_id: str, limit: int) -> Listing:
    catalog = _get(db, principal, CATALOGS, catalog_id)
    stmt = _visible_stmt(principal, QUERIES).where(Query.catalog_id == catalog.id)
    return _limited(db, principal, QUERIES, stmt, limit)


def describe(db: Session, principal: Principal, kind: Kind, resource_id: str) -> Listing:
    return _listing(db, principal, kind, [_get(db, principal, kind, resource_id)], 1)


def list_teams(db: Session, principal: Principal, kind: Kind, resource_id: str,
               limit: int) -> tuple[int, list[tuple[Team, int]]]:
    """The resource's teams that the caller can see, by name, each with its member count."""
    record = _get(db, principal, kind, resource_id)
    team_ids = [t for t in _team_ids(db, kind, [record.id])[record.id] if principal.can_see_team(t)]
    return len(team_ids), with_member_counts(db, team_ids, limit)


# --- sharing ----------------------------------------------------------------------------------

def add_teams(db: Session, principal: Principal, kind: Kind, resource_id: str, team_ids: Sequence[str],
              ctx: RequestContext) -> list[Any]:
    """Idempotent: teams already linked keep their link; returns the links of the given teams."""
    record = _get(db, principal, kind, resource_id)
    current = _require_manage(db, principal, kind, record.id)
    wanted = _check_teams(db, principal, kind, team_ids, must_manage=False)
    added = [t for t in wanted if t not in current]
    for team_id in added:
        db.add(kind.link(**{kind.link_key: record.id}, team_id=team_id, organization_id=record.organization_id,
                         created_by=principal.actor_id, updated_by=principal.actor_id))
    if added:
        _touch(record, principal)
    audit.record(db, ctx, principal, f"{kind.what}.add_teams", kind.what, record.id,
                 details={"teamIds": wanted, "added": added})
    db.flush()
    return list(db.scalars(select(kind.link).where(kind.link_col() == record.id, kind.link.team_id.in_(wanted))
                           .order_by(kind.link.created_at, kind.link.team_id)))


def remove_team(db: Session, principal: Principal, kind: Kind, resource_id: str, team_id: str,
                ctx: RequestContext) -> None:
    """A resource always keeps at least one team (409 for the last one)."""
    record = _get(db, principal, kind, resource_id, lock=True)
    current = _require_manage(db, principal, kind, record.id)
    if team_id not in current:
        raise not_found("team")
    if len(current) == 1:
        raise conflict("last_team", f"A {kind.what} must keep at least one team; add another team first.")
    db.execute(delete(kind.link).where(kind.link_col() == record.id, kind.link.team_id == team_id))
    _touch(record, principal)
    audit.record(db, ctx, principal, f"{kind.what}.remove_team", kind.what, record.id, details={"teamId": team_id})
    db.flush()


def _link_new(db: Session, principal: Principal, kind: Kind, record: Any, team_ids: list[str]) -> None:
    for team_id in team_ids:
        db.add(kind.link(**{kind.link_key: record.id}, team_id=team_id, organization_id=record.organization_id,
                         created_by=principal.actor_id, updated_by=principal.actor_id))


def delete_resource(db: Session, principal: Principal, kind: Kind, resource_id: str, ctx: RequestContext, *,
                    jobs_using_query: QueryUsageCheck | None = None) -> None:
    """Delete a catalog or a query. A query is refused (409) while active jobs run it: `jobs_using_query`
    (required for queries) finds them, passed in by the caller since the jobs package builds on this one."""
    record = _get(db, principal, kind, resource_id, lock=True)
    _require_manage(db, principal, kind, record.id)
    if kind is QUERIES:
        if jobs_using_query is None:
            raise TypeError("deleting a query needs jobs_using_query")
        jobs = jobs_using_query(db, principal, record.id)
        if jobs:
            shown = [key for key in jobs if key is not None][:10]
            hidden = sum(key is None for key in jobs)
            names = ", ".join([*shown, *([f"{hidden} job(s) you cannot see"] if hidden else [])])
            raise conflict("query_in_use", f"The query is used by active jobs: {names}.")
    else:
        # Queries that used the catalog stay, without a catalog (the database does this too).
        db.execute(update(Query).where(Query.catalog_id == record.id).values(catalog_id=None))
    db.execute(delete(kind.link).where(kind.link_col() == record.id))
    db.delete(record)
    audit.record(db, ctx, principal, f"{kind.what}.delete", kind.what, record.id, details={"name": record.name})
    db.flush()


# --- catalogs ---------------------------------------------------------------------------------

def _store_secrets(catalog: Catalog, secrets: dict[str, str], encryptor: Encryptor) -> None:
    catalog.secret_config = encryptor.encrypt(json.dumps(secrets)) if secrets else None
    catalog.secret_fields = sorted(secrets)


def catalog_secrets(catalog: Catalog, encryptor: Encryptor) -> dict[str, str]:
    if not catalog.secret_config:
        return {}
    value = json.loads(encryptor.decrypt(catalog.secret_config))
    return {str(k): str(v) for k, v in value.items()}


def _check_storage(db: Session, provider: str, config: dict[str, Any], storage: LocalStorage,
                   exclude: str | None = None) -> None:
    """A local catalog's warehouse lies below the storage root, and no other catalog's warehouse
    (of any organization) is the same directory or inside or around it: the directory is the
    catalog's data, so sharing it would bypass the catalog's teams."""
    if provider != "local":
        return
    field_name = "providerConfig.warehouseDir"
    try:
        path = storage.confine(str(config["warehouseDir"]))
    except StorageError as exc:
        raise invalid(field_name, str(exc)) from None
    stmt = select(Catalog.provider_config).where(Catalog.provider == "local")
    if exclude is not None:
        stmt = stmt.where(Catalog.id != exclude)
    for other in db.scalars(stmt):
        raw = (other or {}).get("warehouseDir")
        if raw and providers.overlap(path, Path(str(raw)).resolve()):
            raise invalid(field_name, "is, contains or lies inside the warehouse directory of another catalog")


def create_catalog(db: Session, principal: Principal, fields: dict[str, Any], encryptor: Encryptor,
                   storage: LocalStorage, ctx: RequestContext) -> Catalog:
    config, secrets = providers.parse_config(fields["provider"], fields["provider_config"])
    team_ids = _check_teams(db, principal, CATALOGS, fields["team_ids"], must_manage=True)
    _check_storage(db, fields["provider"], config, storage)
    _check_unique_name(db, CATALOGS, principal.organization_id, fields["name"])
    catalog = Catalog(organization_id=principal.organization_id, name=fields["name"],
                      description=fields.get("description"), provider=fields["provider"], provider_config=config,
                      status="active", created_by=principal.actor_id, updated_by=principal.actor_id)
    _store_secrets(catalog, secrets, encryptor)
    db.add(catalog)
    db.flush()
    _link_new(db, principal, CATALOGS, catalog, team_ids)
    audit.record(db, ctx, principal, "catalog.create", "catalog", catalog.id,
                 details={"name": catalog.name, "provider": catalog.provider, "teamIds": team_ids})
    db.flush()
    return catalog


def update_catalog(db: Session, principal: Principal, catalog_id: str, changes: dict[str, Any],
                   encryptor: Encryptor, storage: LocalStorage, ctx: RequestContext) -> Catalog:
    """`changes` holds only the fields sent. providerConfig is merged into the current one."""
    catalog: Catalog = _get(db, principal, CATALOGS, catalog_id, lock=True)
    _require_manage(db, principal, CATALOGS, catalog.id)
    if "name" in changes:
        if changes["name"] is None:
            raise invalid("name", "must not be null")
        _check_unique_name(db, CATALOGS, catalog.organization_id, changes["name"], exclude=catalog.id)
    config_fields: list[str] = []
    if changes.get("provider_config") is not None:
        patch = changes["provider_config"]
        merged = {**catalog.provider_config, **catalog_secrets(catalog, encryptor), **patch}
        merged = {k: v for k, v in merged.items() if v is not None}
        config, secrets = providers.parse_config(catalog.provider, merged)
        _check_storage(db, catalog.provider, config, storage, exclude=catalog.id)
        catalog.provider_config = config
        _store_secrets(catalog, secrets, encryptor)
        config_fields = sorted(patch)
    elif "provider_config" in changes:
        raise invalid("providerConfig", "must not be null")
    if "name" in changes:
        catalog.name = changes["name"]
    if "description" in changes:
        catalog.description = changes["description"]
    _touch(catalog, principal)
    audit.record(db, ctx, principal, "catalog.update", "catalog", catalog.id,
                 details={"fields": sorted(changes), "providerConfigFields": config_fields})
    db.flush()
    return catalog


def sail_catalog_settings(catalog: Catalog, encryptor: Encryptor) -> dict[str, str]:
    """The Sail settings (`SAIL_CATALOG__*` environment names) that make this catalog Sail's
    default catalog. Contains decrypted secrets: pass only to the compute instance, never log it."""
    return sail_catalogs_settings([catalog], encryptor)


def sail_catalogs_settings(catalogs: Sequence[Catalog], encryptor: Encryptor,
                           default: str | None = None) -> dict[str, str]:
    """Several catalogs in one Sail instance (`catalog.list`); `default` names the default catalog
    (else the first), whose default database becomes Sail's default database."""
    return providers.sail_settings_for(
        ((c.name, c.provider, c.provider_config, catalog_secrets(c, encryptor)) for c in catalogs),
        default=default)


def sail_spark_conf(catalog: Catalog, storage: LocalStorage | None = None) -> dict[str, str]:
    """Spark session configuration for a session or run whose default catalog is this one
    (a local catalog's warehouse directory); set it on the SparkSession that connects to Sail.
    With `storage`, a local catalog's directory is checked against the storage root again (a
    StorageError if it is not below it, e.g. a catalog saved before the rule or a moved root)
    and given with its symlinks resolved."""
    config = dict(catalog.provider_config or {})
    if storage is not None and catalog.provider == "local":
        config["warehouseDir"] = str(storage.confine(str(config.get("warehouseDir") or "")))
    return providers.spark_conf_for(catalog.provider, config)


# --- queries ----------------------------------------------------------------------------------

def _check_sql(sql: str) -> None:
    if not sql.strip():
        raise invalid("sql", "must not be blank")
    if len(sql.encode()) > MAX_SQL_BYTES:
        raise invalid("sql", "must be at most 1 MB")


def _check_catalog(db: Session, principal: Principal, catalog_id: str | None) -> None:
    if catalog_id is not None and find_visible(db, principal, CATALOGS, catalog_id) is None:
        raise invalid("catalogId", f"unknown catalog {catalog_id}")


def create_query(db: Session, principal: Principal, fields: dict[str, Any], ctx: RequestContext) -> Query:
    _check_sql(fields["sql"])
    _check_catalog(db, principal, fields.get("catalog_id"))
    team_ids = _check_teams(db, principal, QUERIES, fields["team_ids"], must_manage=True)
    _check_unique_name(db, QUERIES, principal.organization_id, fields["name"])
    query = Query(organization_id=principal.organization_id, name=fields["name"],
                  description=fields.get("description"), sql=fields["sql"], catalog_id=fields.get("catalog_id"),
                  schema_name=fields.get("schema_"), created_by=principal.actor_id, updated_by=principal.actor_id)
    db.add(query)
    db.flush()
    _link_new(db, principal, QUERIES, query, team_ids)
    audit.record(db, ctx, principal, "query.create", "query", query.id,
                 details={"name": query.name, "catalogId": query.catalog_id, "teamIds": team_ids})
    db.flush()
    return query


def update_query(db: Session, principal: Principal, query_id: str, changes: dict[str, Any],
                 ctx: RequestContext) -> Query:
    query: Query = _get(db, principal, QUERIES, query_id, lock=True)
    _require_manage(db, principal, QUERIES, query.id)
    for required in ("name", "sql"):
        if required in changes and changes[required] is None:
            raise invalid(required, "must not be null")
    if "sql" in changes:
        _check_sql(changes["sql"])
    if "name" in changes:
        _check_unique_name(db, QUERIES, query.organization_id, changes["name"], exclude=query.id)
    if changes.get("catalog_id") is not None:
        _check_catalog(db, principal, changes["catalog_id"])
    for attr, column in (("name", "name"), ("description", "description"), ("sql", "sql"),
                         ("catalog_id", "catalog_id"), ("schema_", "schema_name")):
        if attr in changes:
            setattr(query, column, changes[attr])
    _touch(query, principal)
    audit.record(db, ctx, principal, "query.update", "query", query.id,
                 details={"fields": sorted("schema" if f == "schema_" else f for f in changes)})
    db.flush()
    return query

