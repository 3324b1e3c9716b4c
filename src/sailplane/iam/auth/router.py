"""HTTP routes for sign-up, sign-in, sign-out and the permission catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request

from sailplane.iam.auth import catalog, service
from sailplane.iam.auth.deps import AppSettings, Db, current_identity
from sailplane.iam.auth.principal import Identity
from sailplane.iam.auth.schemas import (
    LoginRequest,
    LoginResponse,
    PermissionItem,
    PermissionList,
    SignupRequest,
    SignupResponse,
)
from sailplane.iam.auth.signin import login_outcome
from sailplane.iam.identity import service as identity
from sailplane.iam.identity.router import send_later
from sailplane.iam.mfa.schemas import MfaChallengeResponse
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message

router = APIRouter(route_class=JsonRoute, prefix="/auth", tags=["authentication"])
Ctx = Annotated[RequestContext, Depends(request_context)]


@router.post("/signup", operation_id="signup", status_code=201, response_model=SignupResponse)
def signup(body: SignupRequest, db: Db, settings: AppSettings, ctx: Ctx, request: Request,
           background: BackgroundTasks) -> SignupResponse:
    """Create an account and a new organization whose Owner it is; answers a bearer token and emails a
    link to verify the address."""
    user, org, member, login, token = service.signup(db, settings, body, ctx)
    send_later(background, request.app.state.mailer,
               identity.start_signup_verification(db, settings, user.id))
    return SignupResponse(token=token, login_id=login.id, user_id=user.id, expires_at=login.expires_at,
                          organization_id=org.id, member_id=member.id)


@router.post("/login", operation_id="login", response_model=LoginResponse | MfaChallengeResponse)
def login(body: LoginRequest, db: Db, settings: AppSettings, ctx: Ctx) -> LoginResponse | MfaChallengeResponse:
    """Password sign-in; answers an MFA challenge instead of a token when MFA applies and the device is not
    trusted (send `trustedDeviceToken` from an earlier trusted completeMfaLogin to skip it). Repeated
    failures per account or per IP answer 429 with Retry-After."""
    return login_outcome(service.login(db, settings, body, ctx))


@router.post("/logout", operation_id="logout", response_model=Message)
def logout(db: Db, ctx: Ctx, identity: Annotated[Identity, Depends(current_identity)]) -> dict[str, str]:
    """Revoke the login whose token made this call; the token fails at once afterwards."""
    service.logout(db, identity, ctx)
    return DONE


@router.get("/permissions", operation_id="listPermissions", response_model=PermissionList)
def list_permissions(identity: Annotated[Identity, Depends(current_identity)]) -> PermissionList:
    """Every permission with its description and the object types it applies to."""
    return PermissionList(
        items=[
            PermissionItem(relation=p.relation, description=p.description,
                           valid_object_types=list(p.object_types), system_only=p.system_only)
            for p in catalog.PERMISSIONS
        ]
    )
