"""One-time sign-in codes, emailed links (verification, password reset) and a user's extra addresses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.clock import utcnow
from sailplane.kit.db import Base, Timestamps, id_column


class LoginCode(Base):
    """A short numeric code sent by email; stored as a keyed hash, single use, short-lived."""

    __tablename__ = "login_codes"
    __table_args__ = (Index("ix_login_codes_email", "email"),)

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    code_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class EmailToken(Base):
    """The token of an emailed link (verify an address, reset a password); only its SHA-256 is stored."""

    __tablename__ = "email_tokens"
    __table_args__ = (Index("ix_email_tokens_user_id", "user_id"),)

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class UserEmail(Timestamps, Base):
    """An address a user added besides the primary one (users.email); verified by an emailed link."""

    __tablename__ = "user_emails"
    __table_args__ = (UniqueConstraint("user_id", "email"), Index("ix_user_emails_email", "email"))

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
