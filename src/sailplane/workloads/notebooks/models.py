"""Notebooks, the teams they are shared with, and the previous revisions of their source.

The marimo source (`.py` text) lives in the database, so it survives stop/start, a server restart
and a move to another node; every replacement keeps the previous text as a revision.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.clock import utcnow
from sailplane.kit.db import Base, Timestamps, id_column

DEFAULT_IDLE_TIMEOUT_SECONDS = 3600
DEFAULT_DETACHED_TIMEOUT_SECONDS = 14400


class Notebook(Timestamps, Base):
    __tablename__ = "notebooks"
    __table_args__ = (
        Index("ix_notebooks_org_id", "organization_id", "id"),
        Index("ix_notebooks_member", "member_id"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    member_id: Mapped[str] = mapped_column(String(20))  # the owner (kept when they leave: admins still see it)
    workload_config_id: Mapped[str] = mapped_column(ForeignKey("workload_configs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(2000), default=None)
    # The states and who may change them: sailplane.workloads.notebooks.states (which imports this module).
    status: Mapped[str] = mapped_column(String(20), default="stopped")
    status_message: Mapped[str | None] = mapped_column(String(2000), default=None)
    idle_timeout_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_IDLE_TIMEOUT_SECONDS)
    detached_timeout_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_DETACHED_TIMEOUT_SECONDS)
    last_active_at: Mapped[datetime | None] = mapped_column(default=None)
    session_id: Mapped[str | None] = mapped_column(String(20), default=None)
    # The marimo server while the notebook is live: which node's compute backend owns it, the backend's
    # opaque reference, where the proxy reaches it, and its access token (encrypted with kit.crypto;
    # only the proxy sends it, the browser never sees it).
    node: Mapped[str | None] = mapped_column(String(255), default=None)
    server_ref: Mapped[str | None] = mapped_column(String(255), default=None)
    server_host: Mapped[str | None] = mapped_column(String(255), default=None)
    server_port: Mapped[int | None] = mapped_column(Integer, default=None)
    server_secret: Mapped[str | None] = mapped_column(String(512), default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    # The kernel (marimo server) and who edits in it: `kernel_generation` counts the kernels handed over from one
    # editor to another (a cookie carries the generation it was issued for); `kernel_editor` is the holder
    # ("member:<id>" or "service_account:<id>") whose edit session the current kernel is (None: nobody has edited
    # in it yet); `kernel_handover_to` a holder the proxy asked the controller to hand a new kernel to.
    kernel_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    kernel_editor: Mapped[str | None] = mapped_column(String(64), default=None)
    kernel_handover_to: Mapped[str | None] = mapped_column(String(64), default=None)
    detached_at: Mapped[datetime | None] = mapped_column(default=None)  # since when no browser is attached
    source: Mapped[str] = mapped_column(Text)
    source_updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_updated_by: Mapped[str | None] = mapped_column(String(20), default=None)


class NotebookTeam(Timestamps, Base):
    __tablename__ = "notebook_teams"
    __table_args__ = (Index("ix_notebook_teams_team_id", "team_id"),)

    notebook_id: Mapped[str] = mapped_column(ForeignKey("notebooks.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)


class NotebookRevision(Base):
    """A source the notebook had before a replacement (or a restore); newest first by ID."""

    __tablename__ = "notebook_revisions"
    __table_args__ = (Index("ix_notebook_revisions_notebook_id", "notebook_id", "id"),)

    id: Mapped[str] = id_column()
    notebook_id: Mapped[str] = mapped_column(ForeignKey("notebooks.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(20), default=None)


class NotebookOpenToken(Base):
    """An open URL's token (`jti`) once redeemed: the URL is single use on every node. Rows past their
    `expires_at` prove nothing any more (the token itself is refused as expired) and are swept on open."""

    __tablename__ = "notebook_open_tokens"
    __table_args__ = (Index("ix_notebook_open_tokens_expires_at", "expires_at"),)

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    notebook_id: Mapped[str] = mapped_column(ForeignKey("notebooks.id", ondelete="CASCADE"))
    member_id: Mapped[str] = mapped_column(String(20))  # who it was issued to (member or service account)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime] = mapped_column(default=utcnow)
