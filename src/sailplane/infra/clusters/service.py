"""Which clusters a caller may run workloads on.

Every organization has the built-in cluster `local` (ID `LOCAL`, compute backend `local`: Sail
servers as processes on the control plane's machine). It is shared with all of the organization's
teams, so anyone who works in a team (and organization admins) can use it. The organization's active
provisioned (EKS) clusters (compute backend `kubernetes`) are shared with the teams an organization admin chose
(`clusters.sharing`; a new cluster with none, so organization admins grant teams as in Databricks' "can attach
to"): members of those teams see and name them, organization admins (and CanUseClusters organization-wide) all
of them (`authz.clusters_visible_to`). A cluster the caller cannot see is answered exactly like one that does not
exist (404 here, an unknown `clusterId` in a workload); one they see but that is not shared with the workload's
teams is refused as such; workloads naming a shared one are refused (409) until that compute backend exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.compute.registry import LOCAL_CLUSTER_ID
from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Principal
from sailplane.infra.clusters import sharing, states
from sailplane.infra.clusters.models import ProvisionedCluster
from sailplane.kit.errors import conflict, invalid, not_found
from sailplane.kit.pagination import PageRequest

LOCAL_CLUSTER_NAME = "local"


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    backend: str
    region: str | None
    status: str
    created_at: datetime
    created_by: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None
    external_cluster_id: str | None = None
    connection_id: str | None = None
    network_id: str | None = None
    operation_id: str | None = None


def local_cluster(principal: Principal) -> Cluster:
    """The built-in cluster as this organization sees it (it has existed since the organization did)."""
    org = principal.organization
    return Cluster(id=LOCAL_CLUSTER_ID, name=LOCAL_CLUSTER_NAME, backend="local", region="local", status="active",
                   created_at=org.created_at, updated_at=org.created_at)


KUBERNETES = "kubernetes"


def _provisioned(row: ProvisionedCluster) -> Cluster:
    return Cluster(id=row.id, name=row.name, backend=KUBERNETES, region=row.region, status=row.status,
                   created_at=row.created_at, created_by=row.created_by, updated_at=row.updated_at,
                   updated_by=row.updated_by, external_cluster_id=row.id, connection_id=row.connection_id,
                   network_id=row.network_id)


def provisioned_clusters(db: Session, principal: Principal, cluster_id: str | None = None) -> list[Cluster]:
    """The organization's provisioned clusters in service that the caller may see (shared with a team of theirs;
    organization admins: all)."""
    stmt = select(ProvisionedCluster).where(ProvisionedCluster.organization_id == principal.organization_id,
                                            ProvisionedCluster.status.in_(states.IN_SERVICE))
    visible = authz.clusters_visible_to(principal)
    if visible is not None:
        stmt = stmt.where(visible)
    if cluster_id is not None:
        stmt = stmt.where(ProvisionedCluster.id == cluster_id)
    return [_provisioned(r) for r in db.scalars(stmt.order_by(ProvisionedCluster.id))]


def accessible_clusters(db: Session, principal: Principal) -> list[Cluster]:
    """Clusters shared with a team the caller belongs to (organization admins: all of them)."""
    if not authz.may_use_clusters(principal):
        return []
    return [local_cluster(principal), *provisioned_clusters(db, principal)]


def list_my_clusters(db: Session, principal: Principal, pr: PageRequest) -> tuple[int, list[Cluster]]:
    clusters = sorted(accessible_clusters(db, principal), key=lambda c: (c.name.lower(), c.id),
                      reverse=pr.direction == "desc")
    return len(clusters), clusters[pr.offset: pr.offset + pr.limit]


def describe_my_cluster(db: Session, principal: Principal, cluster_id: str) -> Cluster:
    for cluster in accessible_clusters(db, principal):
        if cluster.id == cluster_id:
            return cluster
    raise not_found("cluster")


def cluster_for_teams(db: Session, principal: Principal, cluster_id: str, team_ids: Iterable[str],
                      field_name: str = "clusterId") -> Cluster:
    """The cluster a workload of these teams (a workload config's team, a job's teams) may target: one the caller
    may see that is shared with at least one of them. Else 422 on `field_name`: an unknown cluster, whether it does
    not exist or the caller may not see it (the same answer), or not shared with the workload's teams. A
    provisioned cluster is then 409: the Kubernetes compute backend is not available yet."""
    teams = list(team_ids)
    if cluster_id == LOCAL_CLUSTER_ID and teams:  # shared with every team of the organization
        return local_cluster(principal)
    found = provisioned_clusters(db, principal, cluster_id) if teams else []
    if not found:
        raise invalid(field_name, f"unknown cluster {cluster_id}")
    if not sharing.shared_with(db, cluster_id, teams):
        whom = "any of the workload's teams" if len(teams) > 1 else "the workload's team"
        raise invalid(field_name, f"the cluster {cluster_id} is not shared with {whom}")
    raise conflict("compute_backend_unavailable", f"The cluster {found[0].name} is a provisioned Kubernetes "
                                                  "cluster: the Kubernetes compute backend is not available "
                                                  "yet. Run workloads on the local cluster for now.")
