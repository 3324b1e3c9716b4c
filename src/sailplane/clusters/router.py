"""HTTP routes for /me/clusters: the clusters the caller can run workloads on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from sailplane.auth.deps import CurrentPrincipal
from sailplane.clusters import service
from sailplane.clusters.schemas import ClusterIncluded, ClusterRef, ClusterView, MyClusterDetail, MyClusterList
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import Limit, Page, SortDirection, page_request

router = APIRouter(prefix="/me/clusters", tags=["clusters"])
ClusterId = Annotated[str, Path(pattern=ID_PATTERN, description="A cluster ID.")]


def _view(cluster: service.Cluster) -> ClusterView:
    return ClusterView(
        id=cluster.id, name=cluster.name, created_at=cluster.created_at, created_by=cluster.created_by,
        updated_at=cluster.updated_at, updated_by=cluster.updated_by,
        external_cluster_id=cluster.external_cluster_id, region=cluster.region,
        connection_id=cluster.connection_id, network_id=cluster.network_id, external_status=cluster.status,
        operation_id=cluster.operation_id,
    )


def _included(clusters: list[service.Cluster]) -> ClusterIncluded:
    return ClusterIncluded(clusters=[_view(c) for c in clusters], connections=[], networks=[], external_clusters=[])


def _ref(cluster: service.Cluster) -> ClusterRef:
    return ClusterRef(id=cluster.id, external_cluster_id=cluster.external_cluster_id,
                      connection_id=cluster.connection_id)


@router.get("", operation_id="listMyClusters", response_model=MyClusterList)
def list_my_clusters(
    principal: CurrentPrincipal,
    limit: Limit = 100,
    page: Page = 1,
    sort_by: Annotated[str | None, Query(alias="sortBy", description="The field to sort by: name.")] = None,
    sort_direction: Annotated[SortDirection, Query(alias="sortDirection")] = "asc",
) -> MyClusterList:
    """The clusters shared with the caller's teams, so they know where sessions and jobs can run."""
    pr = page_request(page, limit, sort_by, sort_direction, ("name",))
    total, clusters = service.list_my_clusters(principal, pr)
    return MyClusterList(total=total, items=[_ref(c) for c in clusters], included=_included(clusters))


@router.get("/{cluster}", operation_id="describeMyCluster", response_model=MyClusterDetail)
def describe_my_cluster(cluster: ClusterId, principal: CurrentPrincipal) -> MyClusterDetail:
    """One cluster the caller can use; 404 when it does not exist or is not shared with their teams."""
    found = service.describe_my_cluster(principal, cluster)
    return MyClusterDetail(item=_ref(found), included=_included([found]))
