"""Job definitions: a job, its numbered versions (published ones and at most one draft), and the
teams it is shared with. The job row points at its current (published) version and its draft."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column

ACTIVE, PAUSED = "active", "paused"
JOB_STATUSES = (ACTIVE, PAUSED)
DRAFT, PUBLISHED = "draft", "published"


class Job(Timestamps, Base):
    """`next_run_at` is set only while the job is active and its current version has a cron schedule
    (the scheduler's index). `lock_version` is the optimistic-concurrency counter shown as `version`."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("organization_id", "job_key"),)

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[str] = mapped_column(String(20))
    job_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    draft_version: Mapped[int | None] = mapped_column(Integer, default=None)
    next_run_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    last_scheduled_at: Mapped[datetime | None] = mapped_column(default=None)
    latest_run_id: Mapped[str | None] = mapped_column(String(20), default=None)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)


class JobVersion(Timestamps, Base):
    """One configuration snapshot. Published versions never change their execution settings."""

    __tablename__ = "job_versions"
    __table_args__ = (UniqueConstraint("job_id", "version"),)

    id: Mapped[str] = id_column()
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    based_on_version: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(16), default=PUBLISHED)
    job_type: Mapped[str] = mapped_column(String(16))
    cluster_id: Mapped[str] = mapped_column(String(20))
    member_id: Mapped[str] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timeout_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    source_config: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    depends_on: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    cron_expression: Mapped[str | None] = mapped_column(String(128), default=None)
    cron_timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    concurrency_policy: Mapped[str] = mapped_column(String(16), default="skip")
    max_concurrent_runs: Mapped[int] = mapped_column(Integer, default=1)
    missed_schedule_policy: Mapped[str] = mapped_column(String(16), default="latest")


class JobTeam(Timestamps, Base):
    __tablename__ = "job_teams"
    __table_args__ = (Index("ix_job_teams_team_id", "team_id"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
