"""Wire shapes of /me/clusters (the seeded normalized envelope)."""

from __future__ import annotations

from pydantic import Field

from sailplane.infra.connections.schemas import ConnectionView
from sailplane.infra.networks.schemas import IacState, NetworkView
from sailplane.kit.schemas import ApiModel, Timestamp


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
