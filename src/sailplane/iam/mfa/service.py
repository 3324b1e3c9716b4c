"""TOTP enrollment and verification, recovery codes, the sign-in challenge and trusted devices.

Every sign-in method (password, one-time code, SSO) ends in `begin_login`: it answers a bearer token,
or an MFA challenge when the account has a confirmed factor or one of its organizations requires MFA
and the device is not trusted. `complete_login` exchanges the challenge and a code for the token. An
SSO sign-in is bound to its identity provider's organization; the challenge carries that binding, so
the login it ends in is bound too (the second factor never widens the scope).
"""

from __future__ import annotations

import hmac
import io
import secrets
import time
from datetime import timedelta

import pyotp
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth import throttle
from sailplane.iam.auth.models import Login, User
from sailplane.iam.auth.principal import Principal
from sailplane.iam.auth.signin import Challenge, Issued, issue_login
from sailplane.iam.mfa.models import MfaChallenge, RecoveryCode, TotpFactor, TrustedDevice
from sailplane.iam.mfa.schemas import CompleteMfaLoginRequest
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import Encryptor, random_token, token_hash
from sailplane.kit.db import commit_before_raising
from sailplane.kit.errors import ApiError, conflict, not_found
from sailplane.tenancy.accounts.service import require_user
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org import membership
from sailplane.tenancy.org.models import Member, Organization

ISSUER = "Sailplane"
STEP_SECONDS = 30
CHALLENGE_TTL = timedelta(minutes=5)
CHALLENGE_MAX_FAILURES = 5
TRUSTED_DEVICE_TTL = timedelta(days=30)
RECOVERY_CODE_COUNT = 10
CHALLENGE_PREFIX = "mfa_"
TRUSTED_DEVICE_PREFIX = "std_"
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


# --- helpers ---------------------------------------------------------------------------------


def _encryptor(settings: Settings) -> Encryptor:
    return Encryptor(settings.secret_key)


def _throttle_key(user_id: str) -> str:
    return f"mfa:{user_id}"


def confirmed_factor(db: Session, user_id: str) -> TotpFactor | None:
    return db.scalar(select(TotpFactor).where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)))


def org_requires_mfa(db: Session, user_id: str, organization_id: str | None = None) -> bool:
    """Whether an organization of the user requires MFA; with `organization_id` (a bound login), that one."""
    stmt = (
        select(Organization.id).join(Member, Member.organization_id == Organization.id)
        .where(Member.user_id == user_id, Member.status == "active", Organization.require_mfa.is_(True))
    )
    if organization_id is not None:
        stmt = stmt.where(Organization.id == organization_id)
    return db.scalar(stmt.limit(1)) is not None


def _normalize_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _replace_recovery_codes(db: Session, user_id: str) -> list[str]:
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        db.add(RecoveryCode(user_id=user_id, code_hash=token_hash(_normalize_recovery(code))))
    return codes


def _matching_step(secret: str, code: str, last_step: int) -> int | None:
    """The time step (now, or one either side for clock drift) whose code this is, if not used yet."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(time.time()) // STEP_SECONDS
    for step in (now_step - 1, now_step, now_step + 1):
        if step > last_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _use_totp(db: Session, settings: Settings, factor: TotpFactor, code: str) -> bool:
    """Accept a code once: the step is claimed by a conditional update, so a replay (even concurrent) fails."""
    step = _matching_step(_encryptor(settings).decrypt(factor.secret_encrypted), code, factor.last_used_step)
    if step is None:
        return False
    claimed = db.execute(
        update(TotpFactor).where(TotpFactor.id == factor.id, TotpFactor.last_used_step < step)
        .values(last_used_step=step)
    ).rowcount  # type: ignore[attr-defined]
    return bool(claimed)


def _use_recovery_code(db: Session, user_id: str, code: str) -> bool:
    digest = token_hash(_normalize_recovery(code))
    row = db.scalar(select(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.code_hash == digest,
                                               RecoveryCode.used_at.is_(None)))
    if row is None:
        return False
    claimed = db.execute(
        update(RecoveryCode).where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None)).values(used_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    return bool(claimed)


def _fail(db: Session, settings: Settings, ctx: RequestContext, principal: Principal | None, user: User,
          action: str, reason: str, message: str) -> ApiError:
    """Count the failure, audit it and commit both (they outlive the error); the caller raises the returned error."""
    throttle.record_failure(db, settings, _throttle_key(user.id), ctx.ip_address)
    if principal is not None:
        audit.record(db, ctx, principal, action, "user", user.id, outcome="failure", details={"reason": reason})
    else:
        audit.record(db, ctx, None, action, "user", user.id, organization_id=user.default_organization_id,
                     actor_type="user", actor_id=user.id, outcome="failure", details={"reason": reason})
    commit_before_raising(db)
    return ApiError(400, reason, message, field_errors={"code": "is not valid"} if reason == "invalid_code" else None)


def _check_code(db: Session, settings: Settings, principal: Principal, user: User, code: str,
                action: str, ctx: RequestContext) -> TotpFactor:
    throttle.check_not_locked(db, _throttle_key(user.id), ctx.ip_address)
    factor = confirmed_factor(db, user.id)
    if factor is None:
        raise conflict("mfa_not_enrolled", "No authenticator is enrolled.")
    if not _use_totp(db, settings, factor, code):
        raise _fail(db, settings, ctx, principal, user, action, "invalid_code",
                    "The code is not valid (wrong, expired or already used).")
    throttle.record_success(db, _throttle_key(user.id))
    return factor


# --- the caller's own MFA --------------------------------------------------------------------


def status(db: Session, principal: Principal) -> tuple[TotpFactor | None, int, bool]:
    user = require_user(principal)
    factor = db.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id))
    remaining = db.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0
    return factor, remaining, org_requires_mfa(db, user.id, principal.bound_organization_id)


def start_enrollment(db: Session, settings: Settings, principal: Principal,
                     ctx: RequestContext) -> tuple[str, str, str, str]:
    """A new pending secret (replacing any earlier pending one); answers secret, URI, SVG and account name."""
    user = require_user(principal)
    existing = db.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id))
    if existing is not None and existing.confirmed_at is not None:
        raise conflict("mfa_already_enrolled", "An authenticator is already enrolled; remove it first.")
    secret = pyotp.random_base32()
    if existing is None:
        existing = TotpFactor(user_id=user.id, secret_encrypted="")
        db.add(existing)
    existing.secret_encrypted = _encryptor(settings).encrypt(secret)
    existing.last_used_step = 0
    existing.created_at = utcnow()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    import segno  # only enrolment draws a QR code

    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False)
    audit.record(db, ctx, principal, "mfa.totp.enroll_start", "user", user.id)
    db.flush()
    return secret, uri, buffer.getvalue().decode(), user.email


def confirm_enrollment(db: Session, settings: Settings, principal: Principal, code: str,
                       ctx: RequestContext) -> list[str]:
    user = require_user(principal)
    throttle.check_not_locked(db, _throttle_key(user.id), ctx.ip_address)
    factor = db.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id))
    if factor is None:
        raise conflict("mfa_enrollment_not_started", "Start an enrollment with startTotpEnrollment first.")
    if factor.confirmed_at is not None:
        raise conflict("mfa_already_enrolled", "The authenticator is already confirmed.")
    if not _use_totp(db, settings, factor, code):
        raise _fail(db, settings, ctx, principal, user, "mfa.totp.confirm", "invalid_code",
                    "The code is not valid (wrong, expired or already used).")
    throttle.record_success(db, _throttle_key(user.id))
    factor.confirmed_at = utcnow()
    codes = _replace_recovery_codes(db, user.id)
    if principal.identity.login is not None and principal.identity.login.scope != "full":
        # The enrollment-only login has now proven a second factor: it becomes a full login.
        db.execute(update(Login).where(Login.id == principal.identity.login.id).values(scope="full"))
    audit.record(db, ctx, principal, "mfa.totp.confirm", "user", user.id)
    db.flush()
    return codes


def remove_totp(db: Session, settings: Settings, principal: Principal, code: str, ctx: RequestContext) -> None:
    user = require_user(principal)
    factor = _check_code(db, settings, principal, user, code, "mfa.totp.remove", ctx)
    db.delete(factor)
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.execute(update(TrustedDevice).where(TrustedDevice.user_id == user.id, TrustedDevice.revoked_at.is_(None))
               .values(revoked_at=utcnow()))
    audit.record(db, ctx, principal, "mfa.totp.remove", "user", user.id)
    db.flush()


def regenerate_recovery_codes(db: Session, settings: Settings, principal: Principal, code: str,
                              ctx: RequestContext) -> list[str]:
    user = require_user(principal)
    _check_code(db, settings, principal, user, code, "mfa.recovery_codes.regenerate", ctx)
    codes = _replace_recovery_codes(db, user.id)
    audit.record(db, ctx, principal, "mfa.recovery_codes.regenerate", "user", user.id)
    db.flush()
    return codes


# --- sign-in ---------------------------------------------------------------------------------


def _trusted(db: Session, user_id: str, token: str | None) -> TrustedDevice | None:
    if not token:
        return None
    device = db.scalar(select(TrustedDevice).where(TrustedDevice.token_hash == token_hash(token)))
    now = utcnow()
    if device is None or device.user_id != user_id or device.revoked_at is not None or device.expires_at <= now:
        return None
    device.last_used_at = now
    return device


def begin_login(db: Session, settings: Settings, user: User, ctx: RequestContext, *, method: str,
                device: str | None, trusted_device_token: str | None,
                organization_id: str | None = None) -> Issued | Challenge:
    """After a first factor succeeded: the token, or a challenge. The caller audits (its unit of work commits).

    `organization_id` binds the login (and the challenge on the way) to that organization: an SSO
    sign-in, for which only that organization's MFA requirement counts."""
    enrolled = confirmed_factor(db, user.id) is not None
    required = enrolled or org_requires_mfa(db, user.id, organization_id)
    if required and not enrolled:
        # The organization requires MFA and there is no authenticator to challenge: a login that can only
        # enroll one (getMyMfa, startTotpEnrollment, confirmTotpEnrollment), so nobody is locked out.
        login_row, token = issue_login(db, settings, user, ctx, method=method, device=device, scope="mfa_enrollment",
                                       organization_id=organization_id)
        return Issued(user=user, login=login_row, token=token, mfa_enrollment_required=True)
    if required and _trusted(db, user.id, trusted_device_token) is None:
        token = random_token(CHALLENGE_PREFIX)
        expires = utcnow() + CHALLENGE_TTL
        db.add(MfaChallenge(user_id=user.id, token_hash=token_hash(token), method=method, device=device,
                            organization_id=organization_id, expires_at=expires))
        return Challenge(user=user, token=token, expires_at=expires, enrollment_required=not enrolled)
    login_row, token = issue_login(db, settings, user, ctx, method=method, device=device,
                                   organization_id=organization_id)
    return Issued(user=user, login=login_row, token=token)


def complete_login(db: Session, settings: Settings, body: CompleteMfaLoginRequest, ctx: RequestContext) -> Issued:
    challenge = db.scalar(select(MfaChallenge).where(MfaChallenge.token_hash == token_hash(body.challenge_token)))
    now = utcnow()
    if challenge is not None:
        # Locked out by earlier failures: say so (429) even for a challenge those failures spent.
        throttle.check_not_locked(db, _throttle_key(challenge.user_id), ctx.ip_address)
    if challenge is None or challenge.used_at is not None or challenge.expires_at <= now:
        audit.record(db, ctx, None, "auth.login.mfa", "mfa_challenge", challenge.id if challenge else None,
                     outcome="failure", details={"reason": "invalid_challenge"})
        commit_before_raising(db)
        raise ApiError(401, "invalid_challenge", "The MFA challenge is not valid or has expired; sign in again.")
    user = db.get(User, challenge.user_id)
    if user is None or user.status != "active":
        raise ApiError(401, "invalid_challenge", "The MFA challenge is not valid or has expired; sign in again.")
    factor = confirmed_factor(db, user.id)
    if factor is None:
        raise conflict("mfa_enrollment_required",
                       "Your organization requires MFA and this account has no authenticator yet.")
    if body.code is not None:
        ok = _use_totp(db, settings, factor, body.code)
        used = "totp"
    else:
        ok = _use_recovery_code(db, user.id, body.recovery_code or "")
        used = "recovery_code"
    if not ok:
        challenge.failures += 1
        if challenge.failures >= CHALLENGE_MAX_FAILURES:
            challenge.used_at = now  # too many guesses on one challenge: it is spent
        error = _fail(db, settings, ctx, None, user, "auth.login.mfa", "invalid_code",
                      "The code is not valid (wrong, expired or already used).")
        error.status = 401
        raise error
    claimed = db.execute(
        update(MfaChallenge).where(MfaChallenge.id == challenge.id, MfaChallenge.used_at.is_(None))
        .values(used_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not claimed:
        db.rollback()
        raise ApiError(401, "invalid_challenge", "The MFA challenge is not valid or has expired; sign in again.")
    throttle.record_success(db, _throttle_key(user.id))
    device_name = body.device_name or challenge.device
    login_row, token = issue_login(db, settings, user, ctx, method=challenge.method, device=device_name,
                                   organization_id=challenge.organization_id)
    issued = Issued(user=user, login=login_row, token=token)
    if body.trust_device:
        device_token = random_token(TRUSTED_DEVICE_PREFIX)
        device = TrustedDevice(user_id=user.id, token_hash=token_hash(device_token), name=device_name,
                               ip_address=ctx.ip_address, user_agent=ctx.user_agent, created_at=now,
                               expires_at=now + TRUSTED_DEVICE_TTL)
        db.add(device)
        db.flush()
        issued.trusted_device_token, issued.trusted_device_id = device_token, device.id
    audit.record(db, ctx, None, "auth.login.mfa", "user", user.id,
                 organization_id=challenge.organization_id or user.default_organization_id,
                 actor_type="user", actor_id=user.id,
                 details={"factor": used, "method": challenge.method, "trustDevice": body.trust_device})
    db.flush()
    return issued


# --- trusted devices -------------------------------------------------------------------------


def list_trusted_devices(db: Session, principal: Principal) -> list[TrustedDevice]:
    user = require_user(principal)
    return list(db.scalars(
        select(TrustedDevice)
        .where(TrustedDevice.user_id == user.id, TrustedDevice.revoked_at.is_(None),
               TrustedDevice.expires_at > utcnow())
        .order_by(TrustedDevice.created_at.desc())
    ))


def revoke_trusted_device(db: Session, principal: Principal, device_id: str, ctx: RequestContext) -> None:
    user = require_user(principal)
    device = db.get(TrustedDevice, device_id)
    if device is None or device.user_id != user.id or device.revoked_at is not None:
        raise not_found("trusted device")
    device.revoked_at = utcnow()
    audit.record(db, ctx, principal, "mfa.trusted_device.revoke", "trusted_device", device.id)
    db.flush()


# --- admin -----------------------------------------------------------------------------------


def reset_user_mfa(db: Session, principal: Principal, user_id: str, ctx: RequestContext) -> None:
    """Delete the factor and recovery codes, forget trusted devices, and end every login of the user."""
    user, member = membership.org_user(db, principal.organization_id, user_id)
    membership.guard_owner(db, principal, member)
    membership.guard_sole_org(db, user, principal.organization_id, "MFA")
    now = utcnow()
    db.execute(delete(TotpFactor).where(TotpFactor.user_id == user.id))
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.execute(delete(MfaChallenge).where(MfaChallenge.user_id == user.id))
    db.execute(update(TrustedDevice).where(TrustedDevice.user_id == user.id, TrustedDevice.revoked_at.is_(None))
               .values(revoked_at=now))
    db.execute(update(Login).where(Login.user_id == user.id, Login.revoked_at.is_(None)).values(revoked_at=now))
    audit.record(db, ctx, principal, "user.reset_mfa", "user", user.id)
    db.flush()
