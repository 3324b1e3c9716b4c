"""Sharing a provisioned cluster with teams (the `provisioned_cluster_teams` rows), as a Databricks admin grants
"can attach to": members of those teams see the cluster in /me/clusters and may name it in their workloads
(`authz.clusters_visible_to`, `service.cluster_for_teams`).

Organization admins grant and revoke (the routes need CanManageInfrastructure, as the rest of /infra); a new
cluster is shared with no team. Adding is idempotent, as addCatalogTeams; unlike a catalog, a cluster may be
shared with no team at all (organization admins still use it). Teams in the request body that are not the
organization's are 422 naming `teamIds`, as for catalogs; another organization's cluster is 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Principal
from sailplane.infra.clusters import provisioned
from sailplane.infra.clusters.models import ProvisionedClusterTeam
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.dialect import dialect_of
from sailplane.kit.errors import invalid, not_found
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.teams.models import Team
from sailplane.tenancy.teams.service import with_member_counts

MANAGE = "CanManageInfrastructure"
Link = ProvisionedClusterTeam


def _team_ids(db: Session, cluster_id: str) -> list[str]:
    return list(db.scalars(select(Link.team_id).where(Link.cluster_id == cluster_id)
                           .order_by(Link.created_at, Link.team_id)))


def shared_with(db: Session, cluster_id: str, team_ids: Iterable[str]) -> bool:
    """Whether the cluster is shared with at least one of the teams (a workload's)."""
    teams = list(team_ids)
    return bool(teams) and db.scalar(select(Link.team_id).where(Link.cluster_id == cluster_id,
                                                                Link.team_id.in_(teams)).limit(1)) is not None


def list_teams(db: Session, principal: Principal, cluster_id: str, limit: int) -> tuple[int, list[tuple[Team, int]]]:
    """The cluster's teams that the caller can see, by name, each with its member count."""
    cluster = provisioned.get(db, principal, cluster_id)
    team_ids = [t for t in _team_ids(db, cluster.id) if principal.can_see_team(t)]
    return len(team_ids), with_member_counts(db, team_ids, limit)


def _check_teams(db: Session, principal: Principal, team_ids: Sequence[str]) -> list[str]:
    """The organization's teams that the caller may name (else 422, revealing nothing), without repeats."""
    wanted = list(dict.fromkeys(team_ids))
    found = set(db.scalars(select(Team.id).where(Team.organization_id == principal.organization_id,
                                                 Team.id.in_(wanted))))
    unknown = [t for t in wanted if t not in found
               or not authz.may_name_team(principal, authz.USE_CLUSTERS, MANAGE, t)]
    if unknown:
        raise invalid("teamIds", f"unknown team {', '.join(unknown)}")
    return wanted


def add_teams(db: Session, principal: Principal, cluster_id: str, team_ids: Sequence[str],
              ctx: RequestContext) -> list[ProvisionedClusterTeam]:
    """Idempotent: teams already linked keep their link (also when two requests add the same team at once);
    returns the links of the given teams."""
    cluster = provisioned.get(db, principal, cluster_id)
    wanted = _check_teams(db, principal, team_ids)
    current = set(_team_ids(db, cluster.id))
    added = [t for t in wanted if t not in current]
    if added:
        now = utcnow()
        db.execute(dialect_of(db).insert_ignoring_duplicates(Link.__table__), [
            {"cluster_id": cluster.id, "team_id": t, "created_at": now, "updated_at": now,
             "created_by": principal.actor_id, "updated_by": principal.actor_id} for t in added])
    audit.record(db, ctx, principal, "cluster.add_teams", provisioned.RESOURCE, cluster.id,
                 details={"teamIds": wanted, "added": added})
    db.flush()
    return list(db.scalars(select(Link).where(Link.cluster_id == cluster.id, Link.team_id.in_(wanted))
                           .order_by(Link.created_at, Link.team_id).execution_options(populate_existing=True)))


def remove_team(db: Session, principal: Principal, cluster_id: str, team_id: str, ctx: RequestContext) -> None:
    """Stop sharing with the team (404 when the cluster is not shared with it); the last team may go too."""
    cluster = provisioned.get(db, principal, cluster_id)
    removed = db.execute(delete(Link).where(Link.cluster_id == cluster.id, Link.team_id == team_id))
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise not_found("team")
    audit.record(db, ctx, principal, "cluster.remove_team", provisioned.RESOURCE, cluster.id,
                 details={"teamId": team_id})
    db.flush()
