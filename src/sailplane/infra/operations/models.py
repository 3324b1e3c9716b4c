"""The operations table: one row per long-running infrastructure change, and the lease of whoever drives it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column


class Operation(Timestamps, Base):
    """`step_index` is the next step to run (steps before it are done and never run again); `state` is what
    steps hand on to later ones (stack names, client request tokens). `lease_owner`/`lease_expires_at`: the
    runner that drives it now (`infra.operations.runner`); `not_before`: when a waiting step looks again."""

    __tablename__ = "operations"
    __table_args__ = (
        Index("ix_operations_status_not_before", "status", "not_before"),
        Index("ix_operations_resource", "organization_id", "resource_type", "resource_id"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    member_id: Mapped[str | None] = mapped_column(String(20), default=None)
    operation: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # operations.runner owns its changes
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(20))
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    not_before: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
