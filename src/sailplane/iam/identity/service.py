"""One-time sign-in codes, email verification, extra addresses and password reset.

The public requests (a code, a reset link) answer the same whether or not the address belongs to an
account: the work that differs (sending the email) happens after the response, and failures of the
follow-up step look the same for unknown and known addresses. Codes and links expire, are single
use and only their hashes are stored (short codes with a key, so a database copy cannot be
brute-forced offline).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth import throttle
from sailplane.iam.auth.models import Login, User
from sailplane.iam.auth.passwords import check_password_rules, hash_password
from sailplane.iam.auth.principal import Principal
from sailplane.iam.auth.service import normalize_email
from sailplane.iam.auth.signin import Challenge, Issued
from sailplane.iam.identity.models import EmailToken, LoginCode, UserEmail
from sailplane.iam.mfa.service import begin_login
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import random_token, token_hash
from sailplane.kit.db import commit_before_raising
from sailplane.kit.errors import ApiError, conflict, not_found
from sailplane.kit.pagination import MarkerPage, apply_marker, split_marker
from sailplane.tenancy.accounts.service import require_user
from sailplane.tenancy.audit import service as audit

LOGIN_CODE_DIGITS = 8
LOGIN_CODE_TTL = timedelta(minutes=10)
LOGIN_CODE_MAX_FAILURES = 5
VERIFY_TTL = timedelta(hours=24)
RESET_TTL = timedelta(hours=1)
VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
BAD_CODE = "The code is not valid (wrong, expired or already used)."
BAD_LINK = "The link is not valid (wrong, expired or already used); request a new one."


@dataclass
class Outgoing:
    """An email to send after the response: the address, subject and body."""

    to: str
    subject: str
    body: str


def _code_hash(settings: Settings, email: str, code: str) -> str:
    key = hashlib.sha256(("sailplane-login-code:" + settings.secret_key).encode()).digest()
    return hmac.new(key, f"{email}:{code}".encode(), hashlib.sha256).hexdigest()


def _throttle_key(email: str) -> str:
    return f"code:{email}"


def _user_by_email(db: Session, email: str) -> User | None:
    return db.scalar(select(User).where(User.email == email))


def user_for_email(db: Session, email: str) -> User | None:
    """The account an address signs in to: the account whose primary address it is, else the account that
    verified it as an added address. An added address that is not verified belongs to nobody yet."""
    user = _user_by_email(db, email)
    if user is not None:
        return user
    return db.scalar(select(User).join(UserEmail, UserEmail.user_id == User.id)
                     .where(UserEmail.email == email, UserEmail.verified_at.is_not(None)))


def _anonymous_audit(db: Session, ctx: RequestContext, action: str, user: User | None, *, outcome: str = "success",
                     details: dict[str, object] | None = None) -> None:
    audit.record(db, ctx, None, action, "user", user.id if user else None,
                 organization_id=user.default_organization_id if user else None,
                 actor_type="user" if user else None, actor_id=user.id if user else None,
                 outcome=outcome, details=details)


# --- one-time sign-in code -------------------------------------------------------------------


def request_login_code(db: Session, settings: Settings, raw_email: str, ctx: RequestContext) -> Outgoing | None:
    """A new code for an active account, sent to the address asked for: the primary address or any verified
    added one (earlier unused codes for that address stop working). Nothing for unknown addresses, and an
    added address that is not verified yet counts as unknown."""
    email = normalize_email(raw_email)
    user = user_for_email(db, email)
    if user is None or user.status != "active":
        _anonymous_audit(db, ctx, "auth.login_code.request", user, outcome="failure",
                         details={"reason": "unknown_or_inactive_account"})
        db.flush()
        return None
    now = utcnow()
    db.execute(update(LoginCode).where(LoginCode.email == email, LoginCode.used_at.is_(None)).values(used_at=now))
    code = "".join(secrets.choice("0123456789") for _ in range(LOGIN_CODE_DIGITS))
    db.add(LoginCode(user_id=user.id, email=email, code_hash=_code_hash(settings, email, code), created_at=now,
                     expires_at=now + LOGIN_CODE_TTL))
    _anonymous_audit(db, ctx, "auth.login_code.request", user)
    db.flush()
    minutes = int(LOGIN_CODE_TTL.total_seconds() // 60)
    return Outgoing(email, "Your Sailplane sign-in code",
                    f"Your Sailplane sign-in code is {code}\n\nIt expires in {minutes} minutes and works once. "
                    "If you did not ask for it, ignore this email.\n")


def verify_login_code(db: Session, settings: Settings, raw_email: str, code: str, ctx: RequestContext, *,
                      device: str | None, trusted_device_token: str | None) -> Issued | Challenge:
    email = normalize_email(raw_email)
    throttle.check_not_locked(db, _throttle_key(email), ctx.ip_address)
    now = utcnow()
    row = db.scalar(
        select(LoginCode).where(LoginCode.email == email, LoginCode.used_at.is_(None), LoginCode.expires_at > now)
        .order_by(LoginCode.created_at.desc()).limit(1)
    )
    matches = row is not None and hmac.compare_digest(row.code_hash, _code_hash(settings, email, code))
    owner = user_for_email(db, email)
    user = db.get(User, row.user_id) if row is not None else owner
    if matches and (owner is None or row is None or owner.id != row.user_id):
        matches = False  # the address left the account after the code was sent: no sign-in
    if row is None or not matches:
        if row is not None:
            row.failures += 1
            if row.failures >= LOGIN_CODE_MAX_FAILURES:
                row.used_at = now  # too many guesses: this code is spent
        throttle.record_failure(db, settings, _throttle_key(email), ctx.ip_address)
        _anonymous_audit(db, ctx, "auth.login_code.verify", user, outcome="failure", details={"reason": "invalid_code"})
        commit_before_raising(db)
        raise ApiError(401, "invalid_code", BAD_CODE)
    claimed = db.execute(
        update(LoginCode).where(LoginCode.id == row.id, LoginCode.used_at.is_(None)).values(used_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not claimed or user is None:
        db.rollback()
        raise ApiError(401, "invalid_code", BAD_CODE)
    if user.status != "active":
        commit_before_raising(db)
        raise ApiError(403, "account_deactivated", "This account is deactivated; contact your administrator.")
    throttle.record_success(db, _throttle_key(email))
    if email == user.email and user.email_verified_at is None:
        user.email_verified_at = now  # receiving the code proves the mailbox
    outcome = begin_login(db, settings, user, ctx, method="login_code", device=device,
                          trusted_device_token=trusted_device_token)
    _anonymous_audit(db, ctx, "auth.login_code.verify", user, details={"mfaChallenge": isinstance(outcome, Challenge),
                                                                      "primaryEmail": email == user.email})
    db.flush()
    return outcome


# --- emailed links ---------------------------------------------------------------------------


def _new_link(db: Session, user: User, email: str, purpose: str, ttl: timedelta) -> str:
    token = random_token("")
    db.add(EmailToken(user_id=user.id, purpose=purpose, email=email, token_hash=token_hash(token),
                      expires_at=utcnow() + ttl))
    return token


def _claim_link(db: Session, token: str, purpose: str) -> tuple[EmailToken | None, User | None]:
    """The link's row when it is valid and now spent (else None), and its user for the audit trail."""
    row = db.scalar(select(EmailToken).where(EmailToken.token_hash == token_hash(token)))
    if row is None or row.purpose != purpose:
        return None, None
    user = db.get(User, row.user_id)
    if row.used_at is not None or row.expires_at <= utcnow():
        return None, user
    claimed = db.execute(
        update(EmailToken).where(EmailToken.id == row.id, EmailToken.used_at.is_(None)).values(used_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    return (row if claimed else None), user


def verification_email(settings: Settings, db: Session, user: User, email: str) -> Outgoing:
    """Create a verification link for one of the user's addresses (the caller commits)."""
    token = _new_link(db, user, email, VERIFY_EMAIL, VERIFY_TTL)
    link = f"{settings.public_url}/verify-email?token={token}"
    return Outgoing(email, "Verify your email address for Sailplane",
                    f"Confirm that {email} is yours by opening this link:\n\n{link}\n\n"
                    f"Or send this token to verifyEmail: {token}\n\nThe link expires in 24 hours and works once.\n")


def start_signup_verification(db: Session, settings: Settings, user_id: str) -> Outgoing | None:
    user = db.get(User, user_id)
    if user is None or user.email_verified_at is not None:
        return None
    outgoing = verification_email(settings, db, user, user.email)
    db.flush()
    return outgoing


def verify_email(db: Session, token: str, ctx: RequestContext) -> tuple[str, datetime]:
    row, user = _claim_link(db, token, VERIFY_EMAIL)
    if row is None or user is None:
        db.rollback()
        _anonymous_audit(db, ctx, "auth.email.verify", user, outcome="failure", details={"reason": "invalid_token"})
        commit_before_raising(db)
        raise ApiError(400, "invalid_token", BAD_LINK, field_errors={"token": "is not valid"})
    now = utcnow()
    if row.email == user.email:
        user.email_verified_at = user.email_verified_at or now
        verified_at = user.email_verified_at
    else:
        extra = db.scalar(select(UserEmail).where(UserEmail.user_id == user.id, UserEmail.email == row.email))
        if extra is None:
            db.rollback()
            raise ApiError(400, "invalid_token", BAD_LINK, field_errors={"token": "is not valid"})
        if _taken_by_other(db, user.id, row.email):
            db.rollback()
            raise conflict("email_taken", "Another account has verified this address in the meantime.")
        extra.verified_at = extra.verified_at or now
        verified_at = extra.verified_at
    _anonymous_audit(db, ctx, "auth.email.verify", user, details={"primary": row.email == user.email})
    db.flush()
    return row.email, verified_at


# --- the caller's addresses ------------------------------------------------------------------


def _taken_by_other(db: Session, user_id: str, email: str) -> bool:
    primary = db.scalar(select(User.id).where(User.email == email, User.id != user_id))
    verified = db.scalar(select(UserEmail.id).where(UserEmail.email == email, UserEmail.user_id != user_id,
                                                    UserEmail.verified_at.is_not(None)))
    return primary is not None or verified is not None


def list_emails(db: Session, principal: Principal, page: MarkerPage) -> tuple[User, list[UserEmail], str | None]:
    """The primary address comes first on the first page and counts against the limit."""
    user = require_user(principal)
    limit = page.limit - 1 if page.marker is None else page.limit
    if limit < 0:
        return user, [], None
    inner = MarkerPage(limit=limit, marker=page.marker)
    rows = list(db.scalars(apply_marker(select(UserEmail).where(UserEmail.user_id == user.id), UserEmail.id, inner)))
    items, marker = split_marker(rows, inner)
    if limit == 0 and rows:
        marker = "0"  # the page held only the primary address; "0" sorts before every ID
    return user, items, marker


def add_email(db: Session, settings: Settings, principal: Principal, raw_email: str,
              ctx: RequestContext) -> tuple[UserEmail, Outgoing]:
    user = require_user(principal)
    email = normalize_email(raw_email)
    if email == user.email or db.scalar(select(UserEmail.id).where(UserEmail.user_id == user.id,
                                                                    UserEmail.email == email)):
        raise conflict("email_exists", "This address is already on your account.")
    if _taken_by_other(db, user.id, email):
        raise conflict("email_taken", "This address belongs to another account.")
    row = UserEmail(user_id=user.id, email=email, created_by=principal.actor_id, updated_by=principal.actor_id)
    db.add(row)
    db.flush()
    outgoing = verification_email(settings, db, user, email)
    audit.record(db, ctx, principal, "user.email.add", "user_email", row.id, details={"email": email})
    db.flush()
    return row, outgoing


def remove_email(db: Session, principal: Principal, raw_email: str, ctx: RequestContext) -> None:
    user = require_user(principal)
    email = normalize_email(raw_email)
    if email == user.email:
        raise conflict("primary_email", "The primary address cannot be removed.")
    row = db.scalar(select(UserEmail).where(UserEmail.user_id == user.id, UserEmail.email == email))
    if row is None:
        raise not_found("email address")
    db.execute(delete(EmailToken).where(EmailToken.user_id == user.id, EmailToken.email == email))
    db.execute(update(LoginCode).where(LoginCode.user_id == user.id, LoginCode.email == email,
                                       LoginCode.used_at.is_(None)).values(used_at=utcnow()))
    db.delete(row)
    audit.record(db, ctx, principal, "user.email.remove", "user_email", row.id, details={"email": email})
    db.flush()


# --- password reset --------------------------------------------------------------------------


def request_password_reset(db: Session, settings: Settings, raw_email: str, ctx: RequestContext) -> Outgoing | None:
    email = normalize_email(raw_email)
    user = _user_by_email(db, email)
    if user is None or user.status != "active" or user.account_type == "external":
        _anonymous_audit(db, ctx, "auth.password.forgot", user, outcome="failure",
                         details={"reason": "no_resettable_account"})
        db.flush()
        return None
    token = _new_link(db, user, email, RESET_PASSWORD, RESET_TTL)
    _anonymous_audit(db, ctx, "auth.password.forgot", user)
    db.flush()
    link = f"{settings.public_url}/reset-password?token={token}"
    return Outgoing(user.email, "Reset your Sailplane password",
                    f"Someone (hopefully you) asked to reset the password of this account. Open this link to "
                    f"choose a new one:\n\n{link}\n\nOr send this token to resetPassword: {token}\n\n"
                    "The link expires in 1 hour and works once. If you did not ask, ignore this email.\n")


def reset_password(db: Session, token: str, new_password: str, ctx: RequestContext) -> None:
    """A new password from an emailed link; every login of the account ends."""
    check_password_rules(new_password, "newPassword")
    row, user = _claim_link(db, token, RESET_PASSWORD)
    if row is None or user is None or user.status != "active" or row.email != user.email:
        db.rollback()
        _anonymous_audit(db, ctx, "auth.password.reset", user, outcome="failure", details={"reason": "invalid_token"})
        commit_before_raising(db)
        raise ApiError(400, "invalid_token", BAD_LINK, field_errors={"token": "is not valid"})
    now = utcnow()
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    user.email_verified_at = user.email_verified_at or now
    db.execute(update(Login).where(Login.user_id == user.id, Login.revoked_at.is_(None)).values(revoked_at=now))
    db.execute(update(EmailToken).where(EmailToken.user_id == user.id, EmailToken.purpose == RESET_PASSWORD,
                                        EmailToken.used_at.is_(None)).values(used_at=now))
    throttle.record_success(db, user.email)
    _anonymous_audit(db, ctx, "auth.password.reset", user)
    db.flush()

