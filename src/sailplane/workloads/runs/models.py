"""Job runs: one execution of one version of a job (data only; execution and scheduling live beside it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column


class JobRun(Timestamps, Base):
    """`scheduled_for` is the cron slot a scheduled run belongs to; unique per job, so two scheduler
    processes can never create the same slot twice. `idempotency_key` likewise gives one run per key."""

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job_id", "idempotency_key"),
        UniqueConstraint("job_id", "scheduled_for"),
        Index("ix_job_runs_job_id_id", "job_id", "id"),
        Index("ix_job_runs_org_id_id", "organization_id", "id"),
        Index("ix_job_runs_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    job_version: Mapped[int] = mapped_column(Integer)
    # The states and who may change them: sailplane.workloads.runs.states (which imports this module).
    status: Mapped[str] = mapped_column(String(24), default="pending")
    status_message: Mapped[str | None] = mapped_column(Text, default=None)
    resource_cleanup_mode: Mapped[str] = mapped_column(String(16), default="always")
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    scheduled_for: Mapped[datetime | None] = mapped_column(default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    runner_started_at: Mapped[datetime | None] = mapped_column(default=None)
    runner_completed_at: Mapped[datetime | None] = mapped_column(default=None)
    runner_execution_time_us: Mapped[int | None] = mapped_column(BigInteger, default=None)
    output_path: Mapped[str | None] = mapped_column(Text, default=None)
    snapshot_commit: Mapped[str | None] = mapped_column(String(64), default=None)
    cleaned_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    instance_id: Mapped[str | None] = mapped_column(String(40), default=None)
