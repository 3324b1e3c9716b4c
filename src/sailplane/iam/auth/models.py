"""Global identities and their login tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column


class User(Timestamps, Base):
    """One person across organizations; email is stored lowercased and unique."""

    __tablename__ = "users"

    id: Mapped[str] = id_column()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    account_type: Mapped[str] = mapped_column(String(20), default="managed")
    status: Mapped[str] = mapped_column(String(20), default="active")
    email_verified_at: Mapped[datetime | None] = mapped_column(default=None)
    default_organization_id: Mapped[str | None] = mapped_column(String(20), default=None)
    preferences: Mapped[str] = mapped_column(String(4000), default="{}")


class Login(Base):
    """A bearer token issued at sign-in; only its SHA-256 is stored."""

    __tablename__ = "logins"
    __table_args__ = (Index("ix_logins_user_id", "user_id"),)

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    method: Mapped[str] = mapped_column(String(20), default="password")
    # "full", or "mfa_enrollment": signed in to an organization that requires MFA before any authenticator
    # exists; such a login may only enroll one (and read /me, sign out) until enrollment completes.
    scope: Mapped[str] = mapped_column(String(20), default="full")
    # Set for a login obtained through an organization's identity provider: that provider vouches for the
    # person in its own organization only, so the login acts only there (see auth.principal).
    organization_id: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), default=None)
    ip_address: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(512), default=None)
    device: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class AuthThrottle(Base):
    """Failure counters per account and per IP, in the database so every replica sees them."""

    __tablename__ = "auth_throttles"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
