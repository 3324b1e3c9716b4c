"""Which clusters a caller may run workloads on.

Every organization has the built-in cluster `local` (ID `LOCAL`, compute backend `local`: Sail
servers as processes on the control plane's machine). It is shared with all of the organization's
teams, so anyone who works in a team (and organization admins) can use it. Provisioned and
registered Kubernetes clusters join this list when the infrastructure domain lands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sailplane.compute.registry import LOCAL_CLUSTER_ID
from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Principal
from sailplane.kit.errors import not_found
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


def accessible_clusters(principal: Principal) -> list[Cluster]:
    """Clusters shared with a team the caller belongs to (organization admins: all of them)."""
    return [local_cluster(principal)] if authz.may_use_clusters(principal) else []


def list_my_clusters(principal: Principal, pr: PageRequest) -> tuple[int, list[Cluster]]:
    clusters = sorted(accessible_clusters(principal), key=lambda c: (c.name.lower(), c.id),
                      reverse=pr.direction == "desc")
    return len(clusters), clusters[pr.offset: pr.offset + pr.limit]


def describe_my_cluster(principal: Principal, cluster_id: str) -> Cluster:
    for cluster in accessible_clusters(principal):
        if cluster.id == cluster_id:
            return cluster
    raise not_found("cluster")


def cluster_for_teams(principal: Principal, cluster_id: str, team_ids: Iterable[str]) -> Cluster | None:
    """The cluster a workload of these teams (a workload config's team, a job's teams) may target:
    one of the organization's clusters shared with at least one of them; None otherwise, which
    callers answer as an unknown `clusterId` (422), whether it does not exist or is not shared."""
    teams = list(team_ids)
    if cluster_id == LOCAL_CLUSTER_ID and teams:  # shared with every team of the organization
        return local_cluster(principal)
    return None
