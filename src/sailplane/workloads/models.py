"""Workload configs (compute profiles), compute instances (the API's "workloads") and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column

# What a pending session's `statusMessage` says until its first call (the status stays `pending`, as seeded):
# whether its Sail server is still starting or ready for calls.
SESSION_STARTING = "Starting the session's Sail server; calls wait until it is ready."
SESSION_READY = "The session's Sail server is ready: connect with a session token."
READINESS_MESSAGES = (SESSION_STARTING, SESSION_READY)


class WorkloadConfig(Timestamps, Base):
    """A compute profile of one team. Inline configs (made for one session request) have no name
    and are never listed; they are shared by requests with the same content (`content_hash`)."""

    __tablename__ = "workload_configs"
    __table_args__ = (
        UniqueConstraint("team_id", "name"),
        Index("ix_workload_configs_org_team", "organization_id", "team_id"),
        Index("ix_workload_configs_inline", "team_id", "content_hash"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(255), default=None)
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    workload_type: Mapped[str] = mapped_column(String(40))
    cluster_id: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    endpoint_limits: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))


class ComputeInstance(Timestamps, Base):
    """One running Sail server (a "workload" on the wire). `node` says which control-plane node's
    compute backend owns the process; only that node starts, watches and stops it."""

    __tablename__ = "compute_instances"
    __table_args__ = (
        Index("ix_compute_instances_node_status", "node", "status"),
        Index("ix_compute_instances_config", "workload_config_id", "status"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    workload_config_id: Mapped[str] = mapped_column(ForeignKey("workload_configs.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(String(20))
    backend: Mapped[str] = mapped_column(String(40))
    node: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="provisioning")  # instance_states owns its changes
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    shutdown_policy: Mapped[str] = mapped_column(String(40), default="when_unused")
    ref: Mapped[str | None] = mapped_column(String(255), default=None)  # the backend's, opaque (InstanceHandle.ref)
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    port: Mapped[int | None] = mapped_column(Integer, default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    cleaned_at: Mapped[datetime | None] = mapped_column(default=None)
    last_activity_at: Mapped[datetime | None] = mapped_column(default=None)
    status_message: Mapped[str | None] = mapped_column(String(2000), default=None)


class InteractiveSession(Timestamps, Base):
    """A Spark Connect session: an owner's time-boxed access to one compute instance."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_org_id", "organization_id", "id"),
        Index("ix_sessions_instance_status", "compute_instance_id", "status"),
        Index("ix_sessions_status", "status"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    member_id: Mapped[str | None] = mapped_column(String(20), default=None)
    service_account_id: Mapped[str | None] = mapped_column(String(20), default=None)
    notebook_id: Mapped[str | None] = mapped_column(String(20), default=None)
    workload_config_id: Mapped[str] = mapped_column(ForeignKey("workload_configs.id", ondelete="CASCADE"))
    compute_instance_id: Mapped[str] = mapped_column(ForeignKey("compute_instances.id", ondelete="CASCADE"))
    relaunched_from_id: Mapped[str | None] = mapped_column(String(20), default=None)
    endpoint_type: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(255))
    # The states and who may change them: sailplane.workloads.session_states (which imports this module).
    status: Mapped[str] = mapped_column(String(20), default="pending")
    allow_shared: Mapped[bool] = mapped_column(Boolean, default=False)
    termination_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    status_message: Mapped[str | None] = mapped_column(String(2000), default=None)
    idle_timeout_seconds: Mapped[int] = mapped_column(Integer)
    idle_close_delay_seconds: Mapped[int] = mapped_column(Integer)
    max_duration_seconds: Mapped[int] = mapped_column(Integer)
    session_metadata: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    last_activity_at: Mapped[datetime | None] = mapped_column(default=None)
    idle_since: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    timeout_at: Mapped[datetime]
