"""HTTP routes for /me/clusters: the clusters the caller can run workloads on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy import select

from sailplane.iam.auth.deps import CurrentPrincipal, Db
from sailplane.infra.clusters import provisioned, service
from sailplane.infra.clusters.models import ProvisionedCluster
from sailplane.infra.clusters.schemas import ClusterIncluded, ClusterRef, ClusterView, MyClusterDetail, MyClusterList
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import PageRequest, paging
from sailplane.kit.routing import JsonRoute

router = APIRouter(route_class=JsonRoute, prefix="/me/clusters", tags=["clusters"])
Paging = Annotated[PageRequest, Depends(paging(("name",)))]
ClusterId = Annotated[str, Path(pattern=ID_PATTERN, description="A cluster ID.")]


def _view(cluster: service.Cluster) -> ClusterView:
    return ClusterView(
        id=cluster.id, name=cluster.name, created_at=cluster.created_at, created_by=cluster.created_by,
        updated_at=cluster.updated_at, updated_by=cluster.updated_by,
        external_cluster_id=cluster.external_cluster_id, region=cluster.region,
        connection_id=cluster.connection_id, network_id=cluster.network_id, external_status=cluster.status,
        operation_id=cluster.operation_id,
    )


def _included(db: Db, clusters: list[service.Cluster]) -> ClusterIncluded:
    """The provisioned ones' records too (`externalClusters`); connections and networks are left out: they are
    organization-admin territory and carry nothing a workload needs."""
    ids = [c.external_cluster_id for c in clusters if c.external_cluster_id]
    rows: Iterable[ProvisionedCluster] = db.scalars(select(ProvisionedCluster).where(ProvisionedCluster.id.in_(ids))
                      .order_by(ProvisionedCluster.id)) if ids else []
    return ClusterIncluded(clusters=[_view(c) for c in clusters], connections=[], networks=[],
                           external_clusters=[provisioned.view(r) for r in rows])


def _ref(cluster: service.Cluster) -> ClusterRef:
    return ClusterRef(id=cluster.id, external_cluster_id=cluster.external_cluster_id,
                      connection_id=cluster.connection_id)


@router.get("", operation_id="listMyClusters", response_model=MyClusterList)
def list_my_clusters(principal: CurrentPrincipal, pr: Paging, db: Db) -> MyClusterList:
    """The clusters shared with the caller's teams, so they know where sessions and jobs can run."""
    total, clusters = service.list_my_clusters(db, principal, pr)
    return MyClusterList(total=total, items=[_ref(c) for c in clusters], included=_included(db, clusters))


@router.get("/{cluster}", operation_id="describeMyCluster", response_model=MyClusterDetail)
def describe_my_cluster(cluster: ClusterId, principal: CurrentPrincipal, db: Db) -> MyClusterDetail:
    """One cluster the caller can use; 404 when it does not exist or is not shared with their teams."""
    found = service.describe_my_cluster(db, principal, cluster)
    return MyClusterDetail(item=_ref(found), included=_included(db, [found]))
