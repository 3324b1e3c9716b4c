"""HTTP routes for MFA: the caller's enrollment (/me/mfa), trusted devices, the sign-in second step
(/auth/login/mfa) and the admin reset (/users/{user}/reset-mfa)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from sailplane.iam.auth.deps import AccountAnyScopePrincipal, AccountPrincipal, AppSettings, Db, require
from sailplane.iam.auth.principal import Principal
from sailplane.iam.mfa import service
from sailplane.iam.mfa.schemas import (
    CodeRequest,
    CompleteMfaLoginRequest,
    MfaFactor,
    MfaLoginResponse,
    MfaStatus,
    RecoveryCodes,
    TotpEnrollment,
    TrustedDeviceList,
    TrustedDeviceView,
)
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message

me_router = APIRouter(route_class=JsonRoute, prefix="/me", tags=["mfa"])
auth_router = APIRouter(route_class=JsonRoute, prefix="/auth", tags=["authentication"])
users_router = APIRouter(route_class=JsonRoute, prefix="/users", tags=["users"])
Ctx = Annotated[RequestContext, Depends(request_context)]
ManageUsers = Annotated[Principal, Depends(require("CanManageUsers"))]
# Enrollment routes also serve the enrollment-only login of an organization that requires MFA. All of
# /me/mfa and /me/trusted-devices is account-wide: see auth.deps.check_account_wide.
EnrollingPrincipal = AccountAnyScopePrincipal


@me_router.get("/mfa", operation_id="getMyMfa", response_model=MfaStatus)
def get_my_mfa(db: Db, principal: EnrollingPrincipal) -> MfaStatus:
    """Enrolled factors, recovery codes left, and whether an organization of the caller requires MFA (for an
    SSO login: its organization). Account-wide, like every /me/mfa and /me/trusted-devices route:
    403 `organization_bound_login` through an SSO login while the account also belongs to other organizations."""
    factor, remaining, required = service.status(db, principal)
    factors = []
    if factor is not None:
        factors.append(MfaFactor(type="totp", status="active" if factor.confirmed_at else "pending",
                                 created_at=factor.created_at, confirmed_at=factor.confirmed_at))
    return MfaStatus(enabled=bool(factor and factor.confirmed_at), required=required, factors=factors,
                     recovery_codes_remaining=remaining)


@me_router.post("/mfa/totp", operation_id="startTotpEnrollment", status_code=201, response_model=TotpEnrollment)
def start_totp_enrollment(db: Db, settings: AppSettings, principal: EnrollingPrincipal, ctx: Ctx) -> TotpEnrollment:
    """A new authenticator secret, as text, otpauth URI and QR code (SVG); pending until confirmTotpEnrollment."""
    secret, uri, svg, account = service.start_enrollment(db, settings, principal, ctx)
    return TotpEnrollment(secret=secret, otpauth_uri=uri, qr_code_svg=svg, issuer=service.ISSUER,
                          account_name=account)


@me_router.post("/mfa/totp/verify", operation_id="confirmTotpEnrollment", response_model=RecoveryCodes)
def confirm_totp_enrollment(body: CodeRequest, db: Db, settings: AppSettings, principal: EnrollingPrincipal,
                            ctx: Ctx) -> RecoveryCodes:
    """The first code from the authenticator turns MFA on; answers the recovery codes, this one time only."""
    return RecoveryCodes(recovery_codes=service.confirm_enrollment(db, settings, principal, body.code, ctx))


@me_router.delete("/mfa/totp", operation_id="removeTotp", response_model=Message)
def remove_totp(body: CodeRequest, db: Db, settings: AppSettings, principal: AccountPrincipal,
                ctx: Ctx) -> dict[str, str]:
    """Turn MFA off; needs a current code (body `{code}`), so a stolen session alone cannot do it.
    Recovery codes and trusted devices go with it."""
    service.remove_totp(db, settings, principal, body.code, ctx)
    return DONE


@me_router.post("/mfa/recovery-codes", operation_id="regenerateRecoveryCodes", response_model=RecoveryCodes)
def regenerate_recovery_codes(body: CodeRequest, db: Db, settings: AppSettings, principal: AccountPrincipal,
                              ctx: Ctx) -> RecoveryCodes:
    """New recovery codes (needs a current code); the old ones stop working at once."""
    return RecoveryCodes(recovery_codes=service.regenerate_recovery_codes(db, settings, principal, body.code, ctx))


@me_router.get("/trusted-devices", operation_id="listMyTrustedDevices", response_model=TrustedDeviceList)
def list_my_trusted_devices(db: Db, principal: AccountPrincipal) -> TrustedDeviceList:
    """Devices that skip the MFA challenge until they expire (unexpired, unrevoked only)."""
    items = [TrustedDeviceView.model_validate(d) for d in service.list_trusted_devices(db, principal)]
    return TrustedDeviceList(items=items, total=len(items))


@me_router.delete("/trusted-devices/{trustedDeviceId}", operation_id="revokeMyTrustedDevice", response_model=Message)
def revoke_my_trusted_device(
    device_id: Annotated[str, Path(alias="trustedDeviceId", pattern=ID_PATTERN)], db: Db,
    principal: AccountPrincipal, ctx: Ctx,
) -> dict[str, str]:
    """Forget a trusted device: its next sign-in gets the MFA challenge again."""
    service.revoke_trusted_device(db, principal, device_id, ctx)
    return DONE


@auth_router.post("/login/mfa", operation_id="completeMfaLogin", response_model=MfaLoginResponse)
def complete_mfa_login(body: CompleteMfaLoginRequest, db: Db, settings: AppSettings, ctx: Ctx) -> MfaLoginResponse:
    """Second step of a sign-in: the challenge token plus a TOTP code or a recovery code answers the bearer
    token. With `trustDevice` it also answers a `trustedDeviceToken` to send on later sign-ins."""
    issued = service.complete_login(db, settings, body, ctx)
    return MfaLoginResponse(
        token=issued.token, login_id=issued.login.id, user_id=issued.user.id, expires_at=issued.login.expires_at,
        must_change_password=issued.user.must_change_password, trusted_device_token=issued.trusted_device_token,
        trusted_device_id=issued.trusted_device_id,
    )


@users_router.post("/{user}/reset-mfa", operation_id="resetUserMfa", response_model=Message)
def reset_user_mfa(user: Annotated[str, Path(pattern=ID_PATTERN, description="A user ID.")], db: Db,
                   principal: ManageUsers, ctx: Ctx) -> dict[str, str]:
    """Admin: delete the user's authenticator and recovery codes (they re-enroll) and end every login."""
    service.reset_user_mfa(db, principal, user, ctx)
    return DONE
