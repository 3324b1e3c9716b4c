"""The provisioned_clusters table: an EKS cluster in a network of a connection's account (a CloudFormation stack);
and provisioned_cluster_teams: the teams a cluster is shared with (whose members may see it and run workloads on it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, UTCDateTime, id_column


class ProvisionedCluster(Timestamps, Base):
    """`kubernetes_version`, `node_group` and `public_access_cidrs` are the `config`; `stack_name`/`project_name`
    the `iacState` (named by the cluster's ID, so a resumed provisioning finds the stack it started);
    `cluster_name`/`cluster_arn` the `providerMetadata`. `status` changes only through `clusters.states`."""

    __tablename__ = "provisioned_clusters"
    __table_args__ = (
        UniqueConstraint("connection_id", "name"),
        Index("ix_provisioned_clusters_org_id", "organization_id", "id"),
        Index("ix_provisioned_clusters_connection", "connection_id", "id"),
        Index("ix_provisioned_clusters_network", "network_id"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # CASCADE only for an organization's deletion: destroyNetwork and deleteConnection refuse while clusters exist.
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(40))
    kubernetes_version: Mapped[str] = mapped_column(String(10))
    node_group: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    public_access_cidrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    cluster_name: Mapped[str | None] = mapped_column(String(100), default=None)
    cluster_arn: Mapped[str | None] = mapped_column(String(2048), default=None)
    project_name: Mapped[str | None] = mapped_column(String(128), default=None)
    stack_name: Mapped[str | None] = mapped_column(String(128), default=None)
    stack_arn: Mapped[str | None] = mapped_column(String(2048), default=None)
    iac_outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_runner_role_arn: Mapped[str | None] = mapped_column(String(2048), default=None)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    status_message: Mapped[str | None] = mapped_column(String(2000), default=None)
    last_health_status: Mapped[str | None] = mapped_column(String(20), default=None)
    last_health_message: Mapped[str | None] = mapped_column(String(2000), default=None)
    last_health_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True), default=None)


class ProvisionedClusterTeam(Timestamps, Base):
    """A team the cluster is shared with. A team's or a cluster's deletion takes its rows (ON DELETE CASCADE, as
    catalog_teams and notebook_teams; deleteProvisionedClusterRecord also deletes them explicitly)."""

    __tablename__ = "provisioned_cluster_teams"
    __table_args__ = (Index("ix_provisioned_cluster_teams_team_id", "team_id"),)

    cluster_id: Mapped[str] = mapped_column(ForeignKey("provisioned_clusters.id", ondelete="CASCADE"),
                                            primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
