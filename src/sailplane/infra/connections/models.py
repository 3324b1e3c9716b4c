"""The connections table: an organization's AWS account, the role Sailplane assumes there, and its state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column


class Connection(Timestamps, Base):
    """`external_id` is kit.crypto.Encryptor ciphertext, decrypted only to assume the role and to fill in the
    template for the organization's admins. `template_version`: the version the deployed stack last said it runs."""

    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        Index("ix_connections_org_id", "organization_id", "id"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(20), default="aws")
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(40))
    role_name: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(512))
    external_id_secret_arn: Mapped[str | None] = mapped_column(String(2048), default=None)
    stack_name: Mapped[str] = mapped_column(String(128))
    stack_arn: Mapped[str | None] = mapped_column(String(2048), default=None)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    status_message: Mapped[str | None] = mapped_column(String(2000), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    template_version: Mapped[str | None] = mapped_column(String(20), default=None)
    template_synced_at: Mapped[datetime | None] = mapped_column(default=None)
    template_sync_message: Mapped[str | None] = mapped_column(String(2000), default=None)
