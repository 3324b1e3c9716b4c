"""Organization policies: extra permissions granted to one principal (user, team, service account)."""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column


class Policy(Timestamps, Base):
    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("organization_id", "principal_type", "principal_id"),)

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    principal_type: Mapped[str] = mapped_column(String(20))
    principal_id: Mapped[str] = mapped_column(String(20))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
