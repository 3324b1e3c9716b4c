"""Wire shapes of /me/clusters (the seeded normalized envelope) and of provisioned clusters and their requests."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le, Len
from pydantic import Field, StringConstraints

from sailplane.infra.connections.schemas import ConnectionView
from sailplane.infra.networks.schemas import IacState, NetworkView
from sailplane.infra.operations.schemas import OperationView
from sailplane.kit.schemas import ApiModel, Name, NotNull, RequestModel, Timestamp


class ClusterRef(ApiModel):
    id: str
    external_cluster_id: str | None = None
    connection_id: str | None = None


class ClusterView(ApiModel):
    id: str
    name: str
    created_at: Timestamp
    created_by: str | None = None
    updated_at: Timestamp | None = None
    updated_by: str | None = None
    external_cluster_id: str | None = None
    region: str | None = None
    connection_id: str | None = None
    network_id: str | None = None
    external_status: str | None = None
    operation_id: str | None = None


class NodeGroupConfig(ApiModel):
    name: str
    instance_types: list[list[str]]
    min_size: int
    max_size: int
    desired_size: int
    disk_size_gb: int


class ExternalClusterConfig(ApiModel):
    kubernetes_version: str | None = None
    system_node_group: NodeGroupConfig | None = None
    public_access_cidrs: list[str] = Field(default_factory=list)


class ProviderMetadata(ApiModel):
    cluster_name: str | None = None
    cluster_arn: str | None = None


class ExternalClusterView(ApiModel):
    id: str
    connection_id: str
    network_id: str | None = None
    cluster_id: str | None = None
    name: str
    region: str
    status: str
    status_message: str | None = None
    config: ExternalClusterConfig
    provider_metadata: ProviderMetadata | None = None
    iac_state: IacState | None = None
    iac_outputs: dict[str, str] = Field(default_factory=dict)
    job_runner_role_arn: str | None = None
    created_at: Timestamp
    created_by: str | None = None
    updated_at: Timestamp
    updated_by: str | None = None
    last_health_status: str | None = None
    last_health_message: str | None = None
    last_health_check_at: Timestamp | None = None


class ClusterIncluded(ApiModel):
    clusters: list[ClusterView]
    connections: list[ConnectionView]
    networks: list[NetworkView]
    external_clusters: list[ExternalClusterView]


class MyClusterList(ApiModel):
    total: int
    items: list[ClusterRef]
    included: ClusterIncluded


class MyClusterDetail(ApiModel):
    item: ClusterRef
    included: ClusterIncluded


# --- provisioned clusters (/infra/clusters, /infra/connections/{connection}/clusters) ---------------------------

class ProvisionedClusterRef(ApiModel):
    id: str
    connection_id: str


class ProvisionedClusterIncluded(ApiModel):
    clusters: list[ExternalClusterView]
    connections: list[ConnectionView]
    operations: list[OperationView]


class ProvisionedClusterList(ApiModel):
    total: int
    items: list[ProvisionedClusterRef]
    included: ProvisionedClusterIncluded
    marker: str | None = None


class ProvisionedClusterDetail(ApiModel):
    item: ProvisionedClusterRef
    included: ProvisionedClusterIncluded


class NodeGroupInput(RequestModel):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")] = Field(
        default="system", description="The EKS node group's name.")
    instance_types: Annotated[list[Annotated[list[str], Len(min_length=1, max_length=20)]],
                              Len(min_length=1, max_length=5)] = Field(
        description="EC2 instance types of the system nodes (listInstanceTypes), e.g. [[\"m7g.large\"]].")
    min_size: Annotated[int, Ge(0), Le(100)] = 1
    max_size: Annotated[int, Ge(1), Le(100)] = 3
    desired_size: Annotated[int, Ge(0), Le(100)] = 2
    disk_size_gb: Annotated[int, Ge(20), Le(16384)] = 100


class ClusterConfigInput(RequestModel):
    kubernetes_version: str = Field(description="An EKS Kubernetes version Sailplane supports, e.g. 1.35.")
    system_node_group: NodeGroupInput
    public_access_cidrs: Annotated[list[str] | None, NotNull, Len(max_length=40)] = Field(
        default=None, description="IPv4 ranges that may reach the public API endpoint. Default: 0.0.0.0/0.")


class CreateProvisionedClusterRequest(RequestModel):
    connection_id: Annotated[str | None, NotNull] = Field(default=None, description="The path's connection, if given.")
    network_id: str = Field(description="An active network of the connection (the cluster's VPC).")
    name: Name
    region: Annotated[str | None, NotNull] = Field(default=None, description="Default (and only): the network's.")
    config: ClusterConfigInput


class UpdateProvisionedClusterRequest(RequestModel):
    name: Annotated[Name | None, NotNull] = None
    config: Annotated[ClusterConfigInput | None, NotNull] = Field(
        default=None, description="May change only while the cluster is not provisioned (pending or destroyed).")


class KubeconfigView(ApiModel):
    kubeconfig: str = Field(description="A kubeconfig (JSON, which kubectl reads as YAML) whose user runs "
                                        "`aws eks get-token`: no secret is in it.")
    cluster_endpoint: str
    cluster_certificate_authority: str = Field(description="The cluster's CA certificate, base64 (PEM).")


class ProviderHealth(ApiModel):
    status: str | None = Field(default=None, description="The EKS cluster's status (eks:DescribeCluster), e.g. ACTIVE.")


class NodeGroupHealth(ApiModel):
    name: str
    status: str | None = Field(default=None, description="The EKS node group's status, e.g. ACTIVE, DEGRADED.")
    desired_size: int
    ready_nodes: int = Field(description="Nodes of the group whose Ready condition is True (the Kubernetes API).")
    message: str | None = None


class SystemPodHealth(ApiModel):
    name: str
    namespace: str
    ready: bool
    phase: str | None = None
    restart_count: int
    message: str | None = None


class ClusterHealthView(ApiModel):
    status: str = Field(description="healthy (the API server is ready, every node, node group and system pod too), "
                                    "degraded (it answers, but something is not ready) or unhealthy (it does not "
                                    "answer, or EKS does not say ACTIVE).")
    provider_metadata: ProviderHealth
    node_groups: list[NodeGroupHealth]
    system_pods: list[SystemPodHealth]
    total_nodes: int
    ready_nodes: int
    last_checked_at: Timestamp


class MetricPoint(ApiModel):
    timestamp: Timestamp
    value: float


class ClusterMetricsView(ApiModel):
    cpu_utilization: list[MetricPoint] = Field(description="The nodes' average CPU use, percent (Container "
                                                           "Insights node_cpu_utilization), oldest first.")
    memory_utilization: list[MetricPoint] = Field(description="The nodes' average memory use, percent (Container "
                                                              "Insights node_memory_utilization), oldest first.")
    estimated_cost: list[MetricPoint] = Field(description="Empty: Sailplane has no price source yet.")
    active_job_count: list[MetricPoint] = Field(description="Empty: no job runs on a provisioned cluster until the "
                                                            "Kubernetes compute backend exists.")


class ProvisionedClusterTeamLink(ApiModel):
    """A team the cluster is shared with (as catalogs' CatalogTeamLink)."""

    cluster_id: str
    team_id: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class ProvisionedClusterTeamLinks(ApiModel):
    items: list[ProvisionedClusterTeamLink]
