"""Wire shapes of /me/clusters (the seeded normalized envelope)."""

from __future__ import annotations

from typing import Any

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


class ClusterIncluded(ApiModel):
    clusters: list[ClusterView]
    connections: list[dict[str, Any]]
    networks: list[dict[str, Any]]
    external_clusters: list[dict[str, Any]]


class MyClusterList(ApiModel):
    total: int
    items: list[ClusterRef]
    included: ClusterIncluded


class MyClusterDetail(ApiModel):
    item: ClusterRef
    included: ClusterIncluded
