"""Teams: the unit of membership, permission and resource ownership."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column


class Team(Timestamps, Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(2000), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    default_role_id: Mapped[str] = mapped_column(String(20))


class TeamMemberRole(Base):
    """A member belongs to a team while they hold at least one team role in it."""

    __tablename__ = "team_member_roles"
    __table_args__ = (Index("ix_team_member_roles_member_id", "member_id"),)

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
