"""HTTP routes of provisioned clusters: /infra/clusters (all of the organization's) and
/infra/connections/{connection}/clusters (organization admins only: CanManageInfrastructure; another organization's
cluster is 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from sailplane.data.schemas import ResourceTeamList, TeamIdsRequest, team_list
from sailplane.iam.auth.deps import AppSettings, Db, require
from sailplane.iam.auth.principal import Principal
from sailplane.infra.clusters import health, metrics, sharing, states
from sailplane.infra.clusters import provisioned as service
from sailplane.infra.clusters.kubeconfig import kubeconfig
from sailplane.infra.clusters.models import ProvisionedCluster
from sailplane.infra.clusters.schemas import (
    ClusterHealthView,
    ClusterMetricsView,
    CreateProvisionedClusterRequest,
    ExternalClusterView,
    KubeconfigView,
    ProvisionedClusterDetail,
    ProvisionedClusterIncluded,
    ProvisionedClusterList,
    ProvisionedClusterRef,
    ProvisionedClusterTeamLink,
    ProvisionedClusterTeamLinks,
    UpdateProvisionedClusterRequest,
)
from sailplane.infra.connections import service as connections
from sailplane.infra.connections.router import AwsClient, ConnectionId
from sailplane.infra.operations import service as operations
from sailplane.infra.operations.models import Operation
from sailplane.infra.operations.schemas import OperationView
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.db import after_commit
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import Limit, MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message

router = APIRouter(route_class=JsonRoute, prefix="/infra", tags=["clusters"])
Admin = Annotated[Principal, Depends(require("CanManageInfrastructure"))]
Ctx = Annotated[RequestContext, Depends(request_context)]
Page = Annotated[MarkerPage, Depends(marker_params)]
ClusterId = Annotated[str, Path(alias="cluster", pattern=ID_PATTERN, description="A provisioned cluster's ID.")]
TeamId = Annotated[str, Path(pattern=ID_PATTERN, description="The team ID.")]


def _included(db: Db, principal: Principal, rows: list[ProvisionedCluster]) -> ProvisionedClusterIncluded:
    connection_ids = sorted({r.connection_id for r in rows})
    return ProvisionedClusterIncluded(
        clusters=[service.view(r) for r in rows],
        connections=[connections.view(connections.get(db, principal, c)) for c in connection_ids],
        operations=[operations.view(op) for op in
                    operations.latest(db, principal.organization_id, service.RESOURCE, [r.id for r in rows])])


def _ref(row: ProvisionedCluster) -> ProvisionedClusterRef:
    return ProvisionedClusterRef(id=row.id, connection_id=row.connection_id)


def _listed(db: Db, principal: Principal, page: MarkerPage, connection_id: str | None = None) -> ProvisionedClusterList:
    total, rows, marker = service.list_clusters(db, principal, page, connection_id)
    return ProvisionedClusterList(total=total, items=[_ref(r) for r in rows],
                                  included=_included(db, principal, rows), marker=marker)


def _detail(db: Db, principal: Principal, row: ProvisionedCluster) -> ProvisionedClusterDetail:
    return ProvisionedClusterDetail(item=_ref(row), included=_included(db, principal, [row]))


@router.get("/clusters", operation_id="listProvisionedClusters", response_model=ProvisionedClusterList)
def list_provisioned_clusters(principal: Admin, db: Db, page: Page) -> ProvisionedClusterList:
    """The organization's provisioned clusters across its connections, oldest first (limit + marker);
    `included`: the clusters, their connections and each one's latest operation."""
    return _listed(db, principal, page)


@router.get("/clusters/{cluster}", operation_id="describeProvisionedCluster", response_model=ProvisionedClusterDetail)
def describe_provisioned_cluster(cluster_id: ClusterId, principal: Admin, db: Db) -> ProvisionedClusterDetail:
    return _detail(db, principal, service.get(db, principal, cluster_id))


@router.delete("/clusters/{cluster}", operation_id="deleteProvisionedClusterRecord", response_model=Message)
def delete_provisioned_cluster_record(cluster_id: ClusterId, principal: Admin, db: Db, ctx: Ctx) -> dict[str, str]:
    """Forget a cluster once nothing of it is left in the account: destroyed, or never provisioned. 409 otherwise
    (a failed cluster may still have infrastructure: destroy it first)."""
    service.delete_record(db, principal, cluster_id, ctx)
    return DONE


@router.get("/clusters/{cluster}/teams", operation_id="listProvisionedClusterTeams", response_model=ResourceTeamList)
def list_provisioned_cluster_teams(cluster_id: ClusterId, principal: Admin, db: Db,
                                   limit: Limit = 100) -> ResourceTeamList:
    """The teams the cluster is shared with: their members see it in listMyClusters and may run workloads on it."""
    total, teams = sharing.list_teams(db, principal, cluster_id, limit)
    return team_list(total, teams)


@router.post("/clusters/{cluster}/teams", operation_id="addProvisionedClusterTeams",
             response_model=ProvisionedClusterTeamLinks)
def add_provisioned_cluster_teams(cluster_id: ClusterId, body: TeamIdsRequest, principal: Admin, db: Db,
                                  ctx: Ctx) -> ProvisionedClusterTeamLinks:
    """Share the cluster with more teams (idempotent); 422 naming `teamIds` for a team not of the organization."""
    links = sharing.add_teams(db, principal, cluster_id, body.team_ids, ctx)
    return ProvisionedClusterTeamLinks(items=[ProvisionedClusterTeamLink.model_validate(x) for x in links])


@router.delete("/clusters/{cluster}/teams/{team}", operation_id="removeProvisionedClusterTeam",
               response_model=Message)
def remove_provisioned_cluster_team(cluster_id: ClusterId, team: TeamId, principal: Admin, db: Db,
                                    ctx: Ctx) -> dict[str, str]:
    """Stop sharing the cluster with a team (404 when it is not shared with it); a cluster may be shared with no
    team (organization admins still use it)."""
    sharing.remove_team(db, principal, cluster_id, team, ctx)
    return DONE


@router.get("/connections/{connection}/clusters", operation_id="listConnectionClusters",
            response_model=ProvisionedClusterList)
def list_connection_clusters(connection_id: ConnectionId, principal: Admin, db: Db,
                             page: Page) -> ProvisionedClusterList:
    """The connection's provisioned clusters, oldest first (limit + marker)."""
    return _listed(db, principal, page, connection_id)


@router.post("/connections/{connection}/clusters", operation_id="createProvisionedCluster",
             response_model=ExternalClusterView, status_code=201)
def create_provisioned_cluster(connection_id: ConnectionId, body: CreateProvisionedClusterRequest, principal: Admin,
                               db: Db, ctx: Ctx, settings: AppSettings, aws: AwsClient) -> ExternalClusterView:
    """Record an EKS cluster in an active network of a verified connection (`pending`): provisionCluster builds
    it. The config is checked first (422 naming the field): a supported `kubernetesVersion`, node group sizes
    with minSize ≤ desiredSize ≤ maxSize, instance types the region offers, IPv4 `publicAccessCidrs`."""
    return service.view(service.create(db, principal, connection_id, body, ctx, settings, aws))


@router.get("/connections/{connection}/clusters/{cluster}", operation_id="describeConnectionCluster",
            response_model=ProvisionedClusterDetail)
def describe_connection_cluster(connection_id: ConnectionId, cluster_id: ClusterId, principal: Admin,
                                db: Db) -> ProvisionedClusterDetail:
    return _detail(db, principal, service.get_in(db, principal, connection_id, cluster_id))


@router.post("/connections/{connection}/clusters/{cluster}", operation_id="updateProvisionedCluster",
             response_model=ExternalClusterView)
def update_provisioned_cluster(connection_id: ConnectionId, cluster_id: ClusterId,
                               body: UpdateProvisionedClusterRequest, principal: Admin, db: Db, ctx: Ctx,
                               settings: AppSettings, aws: AwsClient, request: Request) -> ExternalClusterView:
    """Rename the cluster; change its config: recorded while it is pending or destroyed; on an active cluster, an
    update operation (`update_cluster`, the cluster `updating` until it ends; find it with getOperation or in the
    cluster's operations) changes it in place: the Kubernetes version one minor version up at a time, the system
    node group's sizes, instance types and disk, the public access ranges. 409 while another operation runs or
    the cluster is provisioning, destroying or failed."""
    row = service.update(db, principal, connection_id, cluster_id, body, ctx, settings, aws)
    if row.status == states.UPDATING:
        _wake(request, db)
    return service.view(row)


def _wake(request: Request, db: Db) -> None:
    """The operation runner acts on a new operation once the request's commit makes it visible, not at its next
    claim tick."""
    runtime = getattr(request.app.state, "operations", None)
    if runtime is not None:
        after_commit(db, runtime.notify)


def _started(request: Request, db: Db, op: Operation) -> OperationView:
    _wake(request, db)
    return operations.view(op)


@router.post("/connections/{connection}/clusters/{cluster}/provision", operation_id="provisionCluster",
             response_model=OperationView, status_code=202)
def provision_cluster(connection_id: ConnectionId, cluster_id: ClusterId, principal: Admin, db: Db, ctx: Ctx,
                      request: Request) -> OperationView:
    """Build the EKS cluster, its system node group, its roles and the job runner's role as a CloudFormation stack
    (`iacState`), as an operation: follow it with getOperation. While one runs, this answers that one."""
    return _started(request, db, service.start_provision(db, principal, connection_id, cluster_id, ctx))


@router.delete("/connections/{connection}/clusters/{cluster}", operation_id="destroyProvisionedCluster",
               response_model=OperationView, status_code=202)
def destroy_provisioned_cluster(connection_id: ConnectionId, cluster_id: ClusterId, principal: Admin, db: Db,
                                ctx: Ctx, request: Request) -> OperationView:
    """Tear the cluster down (DeleteStack through the connection's role), as an operation; the record stays until
    deleteProvisionedClusterRecord."""
    return _started(request, db, service.start_destroy(db, principal, connection_id, cluster_id, ctx))


@router.get("/connections/{connection}/clusters/{cluster}/kubeconfig", operation_id="getProvisionedClusterKubeconfig",
            response_model=KubeconfigView)
def get_provisioned_cluster_kubeconfig(connection_id: ConnectionId, cluster_id: ClusterId, principal: Admin,
                                       db: Db) -> KubeconfigView:
    """A kubeconfig of the active cluster whose user runs `aws eks get-token` with the reader's own AWS identity
    (no secret in it). 409 while the cluster is not active."""
    return kubeconfig(service.get_in(db, principal, connection_id, cluster_id))


@router.get("/connections/{connection}/clusters/{cluster}/health", operation_id="getProvisionedClusterHealth",
            response_model=ClusterHealthView)
def get_provisioned_cluster_health(connection_id: ConnectionId, cluster_id: ClusterId, principal: Admin, db: Db,
                                   settings: AppSettings, aws: AwsClient) -> ClusterHealthView:
    """The active cluster's health now: EKS's status and node groups, and its Kubernetes API (ready, nodes,
    kube-system pods). Recorded as the cluster's lastHealth* fields. 409 while the cluster is not active."""
    return health.check(db, principal, connection_id, cluster_id, settings, aws)


@router.get("/connections/{connection}/clusters/{cluster}/metrics", operation_id="getProvisionedClusterMetrics",
            response_model=ClusterMetricsView)
def get_provisioned_cluster_metrics(
    connection_id: ConnectionId, cluster_id: ClusterId, principal: Admin, db: Db, settings: AppSettings,
    aws: AwsClient,
    period: Annotated[metrics.Period, Query(description="How far back: 1h (5-minute points), 24h (hourly) or 7d "
                                                        "(6-hourly).")] = "1h",
) -> ClusterMetricsView:
    """CPU and memory use of the cluster's nodes (CloudWatch Container Insights in the account), oldest first.
    409 for a cluster that was never provisioned."""
    return metrics.read(db, principal, connection_id, cluster_id, period, settings, aws)
