"""Sign-up, password sign-in and sign-out."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth import throttle
from sailplane.iam.auth.models import Login, User
from sailplane.iam.auth.passwords import check_password_rules, hash_password, verify_password
from sailplane.iam.auth.principal import Identity
from sailplane.iam.auth.schemas import LoginRequest, SignupRequest
from sailplane.iam.auth.signin import Challenge, Issued, issue_login
from sailplane.iam.mfa import service as mfa
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.db import commit_before_raising
from sailplane.kit.errors import ApiError, conflict
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org.models import Member, Organization
from sailplane.tenancy.org.service import create_organization


def normalize_email(email: str) -> str:
    return email.strip().lower()


def signup(db: Session, settings: Settings, body: SignupRequest, ctx: RequestContext) -> tuple[
    User, Organization, Member, Login, str
]:
    email = normalize_email(body.email)
    check_password_rules(body.password)
    if db.scalar(select(User.id).where(User.email == email)) is not None:
        raise conflict("email_taken", "An account with this email already exists; sign in instead.")
    user = User(email=email, display_name=body.display_name, password_hash=hash_password(body.password))
    db.add(user)
    db.flush()
    org, member = create_organization(db, body.organization_name, user)
    user.default_organization_id = org.id
    login, token = issue_login(db, settings, user, ctx, method="password")
    audit.record(db, ctx, None, "auth.signup", "user", user.id, organization_id=org.id,
                 actor_type="member", actor_id=member.id)
    db.flush()
    return user, org, member, login, token


def login(db: Session, settings: Settings, body: LoginRequest, ctx: RequestContext) -> Issued | Challenge:
    email = normalize_email(body.email)
    throttle.check_not_locked(db, email, ctx.ip_address)
    user = db.scalar(select(User).where(User.email == email))
    ok = verify_password(user.password_hash if user else None, body.password)
    if not ok or user is None:
        throttle.record_failure(db, settings, email, ctx.ip_address)
        audit.record(db, ctx, None, "auth.login", "user", user.id if user else None,
                     organization_id=user.default_organization_id if user else None,
                     outcome="failure", details={"reason": "invalid_credentials"})
        commit_before_raising(db)
        raise ApiError(401, "invalid_credentials", "The email or password is incorrect.")
    if user.status != "active":
        commit_before_raising(db)
        raise ApiError(403, "account_deactivated", "This account is deactivated; contact your administrator.")
    throttle.record_success(db, email)
    outcome = mfa.begin_login(db, settings, user, ctx, method="password", device=body.device_name,
                          trusted_device_token=body.trusted_device_token)
    audit.record(db, ctx, None, "auth.login", "user", user.id, organization_id=user.default_organization_id,
                 actor_type="user", actor_id=user.id, details={"mfaChallenge": isinstance(outcome, Challenge)})
    db.flush()
    return outcome


def logout(db: Session, identity: Identity, ctx: RequestContext) -> None:
    if identity.login is None:
        raise ApiError(400, "not_a_login", "API keys are not signed out; revoke the key with revokeApiKey.")
    login_row = db.get(Login, identity.login.id)
    if login_row is not None and login_row.revoked_at is None:
        login_row.revoked_at = utcnow()
    assert identity.user is not None
    audit.record(db, ctx, None, "auth.logout", "login", identity.login.id,
                 organization_id=identity.user.default_organization_id, actor_type="user",
                 actor_id=identity.user.id)
    db.flush()
