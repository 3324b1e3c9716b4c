"""The one sign-in flow: a first factor, then the MFA step, then a login.

A first factor (password: auth.service.login; one-time code: identity.service; SSO: sso.login) hands
the user to mfa.service.begin_login, which answers an `Issued` login or a `Challenge`;
mfa.service.complete_login turns a challenge into `Issued`. `issue_login` is the last step of every
path (signup and a new account made by accepting an invitation call it directly) and `login_outcome`
the sign-in routes' one HTTP answer.

This module imports no service, so every step (auth, identity, invites, mfa, sso and their routers)
can import it without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth.models import Login, User
from sailplane.iam.auth.principal import LOGIN_PREFIX
from sailplane.iam.auth.schemas import LoginResponse
from sailplane.iam.mfa.schemas import MfaChallengeResponse
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import random_token, token_hash


@dataclass
class Issued:
    """A completed sign-in: the login row and its clear token (the only time it exists)."""

    user: User
    login: Login
    token: str
    trusted_device_token: str | None = None
    trusted_device_id: str | None = None
    mfa_enrollment_required: bool = False


@dataclass
class Challenge:
    """The first factor passed; a second is needed."""

    user: User
    token: str
    expires_at: datetime
    enrollment_required: bool


def issue_login(
    db: Session, settings: Settings, user: User, ctx: RequestContext, *, method: str, device: str | None = None,
    scope: str = "full", organization_id: str | None = None,
) -> tuple[Login, str]:
    """Create a login row and return it with the clear token (the only time it exists).

    `organization_id` binds the login to one organization (sign-in through that organization's identity
    provider): it then acts only there."""
    token = random_token(LOGIN_PREFIX)
    now = utcnow()
    login = Login(
        user_id=user.id,
        token_hash=token_hash(token),
        method=method,
        ip_address=ctx.ip_address,
        user_agent=ctx.user_agent,
        device=device,
        scope=scope,
        organization_id=organization_id,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.login_ttl_seconds),
    )
    db.add(login)
    return login, token


def login_outcome(outcome: Issued | Challenge) -> LoginResponse | MfaChallengeResponse:
    """A bearer token, or (MFA applies and the device is not trusted) a challenge for completeMfaLogin."""
    if isinstance(outcome, Challenge):
        return MfaChallengeResponse(challenge_token=outcome.token, expires_at=outcome.expires_at,
                                    methods=[] if outcome.enrollment_required else ["totp", "recovery_code"],
                                    enrollment_required=outcome.enrollment_required)
    user, login_row = outcome.user, outcome.login
    return LoginResponse(token=outcome.token, login_id=login_row.id, user_id=user.id,
                         expires_at=login_row.expires_at, must_change_password=user.must_change_password,
                         mfa_enrollment_required=outcome.mfa_enrollment_required)
