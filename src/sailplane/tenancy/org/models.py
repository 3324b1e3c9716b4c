"""Organizations (the tenant) and members (a user's link to one organization)."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column


class Organization(Timestamps, Base):
    __tablename__ = "organizations"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(2000), default=None)
    require_mfa: Mapped[bool] = mapped_column(Boolean, default=False)


class Member(Timestamps, Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("organization_id", "user_id"),
        Index("ix_members_user_id", "user_id"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    display_name: Mapped[str | None] = mapped_column(String(255), default=None)
    status: Mapped[str] = mapped_column(String(20), default="active")


class MemberRole(Base):
    """Organization roles come from a fixed catalog; this links a member to role IDs of it."""

    __tablename__ = "member_roles"

    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
