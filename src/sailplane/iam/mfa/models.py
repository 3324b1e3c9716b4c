"""TOTP factors, recovery codes, pending sign-in challenges and trusted devices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.clock import utcnow
from sailplane.kit.db import Base, id_column


class TotpFactor(Base):
    """One authenticator per user; the secret is encrypted at rest. Pending until a first code confirms it."""

    __tablename__ = "mfa_totp_factors"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(String(512))
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    # The last accepted 30-second time step: a code for it (or an earlier step) is never accepted again.
    last_used_step: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecoveryCode(Base):
    """Single-use recovery codes; only their hashes are stored."""

    __tablename__ = "mfa_recovery_codes"
    __table_args__ = (Index("ix_mfa_recovery_codes_user_id", "user_id"),)

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MfaChallenge(Base):
    """A first factor that succeeded and now waits for the second; the token's hash only."""

    __tablename__ = "mfa_challenges"
    __table_args__ = (Index("ix_mfa_challenges_user_id", "user_id"),)

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    method: Mapped[str] = mapped_column(String(20))
    # The organization an SSO sign-in is bound to: the login the challenge ends in is bound to it too.
    organization_id: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), default=None)
    device: Mapped[str | None] = mapped_column(String(255), default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class TrustedDevice(Base):
    """A browser or client that passed MFA and asked to be remembered; skips the challenge until it expires."""

    __tablename__ = "mfa_trusted_devices"
    __table_args__ = (Index("ix_mfa_trusted_devices_user_id", "user_id"),)

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(255), default=None)
    ip_address: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(512), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
