"""An organization's OIDC identity providers; the client secret is encrypted at rest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sailplane.kit.clock import utcnow
from sailplane.kit.db import Base, Timestamps, id_column


class IdentityProvider(Timestamps, Base):
    __tablename__ = "identity_providers"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    provider_type: Mapped[str] = mapped_column(String(40))
    issuer: Mapped[str] = mapped_column(String(2000))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_encrypted: Mapped[str | None] = mapped_column(String(4000), default=None)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The domains as the admin listed them; domain_claims holds the same set with their verification.
    email_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="active")
    auto_configured: Mapped[bool] = mapped_column(Boolean, default=False)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(default=None)
    last_tested_at: Mapped[datetime | None] = mapped_column(default=None)
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean, default=None)
    domain_claims: Mapped[list[IdentityProviderDomain]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin",
        order_by="IdentityProviderDomain.domain")


class IdentityProviderDomain(Base):
    """An email domain claimed by one identity provider, and the proof of control it waits for.

    A claim routes sign-in only once verified: the domain's DNS held the TXT record named by the claim's
    token (sso.dns_proof). Any number of providers, of any organizations, may hold pending claims on a
    domain, so nobody can block its real owner by claiming first; `verified_domain` (the domain once
    verified, else NULL) is unique, so at most one claim per domain is ever verified across all
    organizations, even when two verifications race."""

    __tablename__ = "identity_provider_domains"
    __table_args__ = (UniqueConstraint("identity_provider_id", "domain"),)

    id: Mapped[str] = id_column()
    identity_provider_id: Mapped[str] = mapped_column(
        ForeignKey("identity_providers.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(253), index=True)
    challenge_token: Mapped[str] = mapped_column(String(64))
    verified_domain: Mapped[str | None] = mapped_column(String(253), unique=True, default=None)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    last_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_check_error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SsoLoginState(Base):
    """One started SSO sign-in: the state (hashed), nonce and PKCE verifier (encrypted), single use.

    A sign-in started for a native client (the CLI: RFC 8252, a loopback redirect) also holds that client's
    redirect URI, PKCE challenge and state; once the provider's answer is verified, the browser is sent there
    with a one-time handoff code (hashed here, bound to the user) that only the holder of the client's PKCE
    verifier can exchange for a login."""

    __tablename__ = "sso_login_states"

    id: Mapped[str] = id_column()
    identity_provider_id: Mapped[str] = mapped_column(ForeignKey("identity_providers.id", ondelete="CASCADE"))
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nonce: Mapped[str] = mapped_column(String(200))
    code_verifier_encrypted: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    client_redirect_uri: Mapped[str | None] = mapped_column(String(100), default=None)
    client_code_challenge: Mapped[str | None] = mapped_column(String(64), default=None)
    client_state: Mapped[str | None] = mapped_column(String(200), default=None)
    handoff_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    handoff_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), default=None)
    handoff_used_at: Mapped[datetime | None] = mapped_column(default=None)


class IdentityLink(Base):
    """A user's subject at an identity provider; how a returning SSO user is found."""

    __tablename__ = "identity_links"
    __table_args__ = (UniqueConstraint("identity_provider_id", "subject"),)

    id: Mapped[str] = id_column()
    identity_provider_id: Mapped[str] = mapped_column(ForeignKey("identity_providers.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
