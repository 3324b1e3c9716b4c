"""HTTP routes for one-time code sign-in, email verification, password reset (/auth/...) and the
caller's email addresses (/me/emails)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Request

from sailplane.iam.auth.deps import AccountPrincipal, AppSettings, Db
from sailplane.iam.auth.schemas import LoginResponse
from sailplane.iam.auth.signin import login_outcome
from sailplane.iam.identity import service
from sailplane.iam.identity.schemas import (
    Accepted,
    AddEmailRequest,
    EmailList,
    EmailRequest,
    EmailVerified,
    EmailView,
    ResetPasswordRequest,
    TokenRequest,
    VerifyLoginCodeRequest,
)
from sailplane.iam.mfa.schemas import MfaChallengeResponse
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message
from sailplane.notifications.mailer.service import Mailer

log = logging.getLogger("sailplane.iam.identity")
auth_router = APIRouter(route_class=JsonRoute, prefix="/auth", tags=["authentication"])
me_router = APIRouter(route_class=JsonRoute, prefix="/me", tags=["users"])
Ctx = Annotated[RequestContext, Depends(request_context)]
ACCEPTED = {"message": "If the address belongs to an account, an email is on its way."}


def get_mailer(request: Request) -> Mailer:
    return request.app.state.mailer  # type: ignore[no-any-return]


MailerDep = Annotated[Mailer, Depends(get_mailer)]


def _deliver(mailer: Mailer, outgoing: service.Outgoing) -> None:
    try:
        mailer.send(outgoing.to, outgoing.subject, outgoing.body)
    except Exception as exc:  # noqa: BLE001 - after the response nobody can be told; log without the secret
        log.warning("email not sent (%s): %s", outgoing.subject, type(exc).__name__)


def send_later(background: BackgroundTasks, mailer: Mailer, outgoing: service.Outgoing | None) -> None:
    """Mail goes out after the response, so known and unknown addresses take the same time to answer."""
    if outgoing is not None:
        background.add_task(_deliver, mailer, outgoing)


@auth_router.post("/login/code", operation_id="requestLoginCode", status_code=202, response_model=Accepted)
def request_login_code(body: EmailRequest, db: Db, settings: AppSettings, ctx: Ctx, mailer: MailerDep,
                       background: BackgroundTasks) -> dict[str, str]:
    """Email a one-time sign-in code. Always 202 with the same body, so it reveals no accounts."""
    send_later(background, mailer, service.request_login_code(db, settings, body.email, ctx))
    return ACCEPTED


@auth_router.post("/login/code/verify", operation_id="verifyLoginCode",
                  response_model=LoginResponse | MfaChallengeResponse)
def verify_login_code(body: VerifyLoginCodeRequest, db: Db, settings: AppSettings,
                      ctx: Ctx) -> LoginResponse | MfaChallengeResponse:
    """Exchange the emailed code for a bearer token (or an MFA challenge when MFA applies). Wrong, expired
    or reused codes answer 401; repeated failures 429."""
    outcome = service.verify_login_code(db, settings, body.email, body.code, ctx, device=body.device_name,
                                        trusted_device_token=body.trusted_device_token)
    return login_outcome(outcome)


@auth_router.post("/email/verify", operation_id="verifyEmail", response_model=EmailVerified)
def verify_email(body: TokenRequest, db: Db, ctx: Ctx) -> EmailVerified:
    """Confirm an address with the token from the verification email (single use, expires in 24 hours)."""
    email, verified_at = service.verify_email(db, body.token, ctx)
    return EmailVerified(email=email, verified_at=verified_at)


@auth_router.post("/password/forgot", operation_id="requestPasswordReset", status_code=202, response_model=Accepted)
def request_password_reset(body: EmailRequest, db: Db, settings: AppSettings, ctx: Ctx, mailer: MailerDep,
                           background: BackgroundTasks) -> dict[str, str]:
    """Email a password reset link. Always 202 with the same body (no account enumeration)."""
    send_later(background, mailer, service.request_password_reset(db, settings, body.email, ctx))
    return ACCEPTED


@auth_router.post("/password/reset", operation_id="resetPassword", response_model=Message)
def reset_password(body: ResetPasswordRequest, db: Db, ctx: Ctx) -> dict[str, str]:
    """Set a new password with the token from the reset email (single use, 1 hour); ends every login."""
    service.reset_password(db, body.token, body.new_password, ctx)
    return DONE


@me_router.get("/emails", operation_id="listMyEmails", response_model=EmailList)
def list_my_emails(db: Db, principal: AccountPrincipal,
                   page: Annotated[MarkerPage, Depends(marker_params)]) -> EmailList:
    """The primary address (first) and the added ones, each with its verification status. Account-wide:
    403 `organization_bound_login` through an SSO login while the account also belongs to other organizations."""
    user, rows, marker = service.list_emails(db, principal, page)
    items = [EmailView(id=r.id, email=r.email, primary=False, verified=r.verified_at is not None,
                       verified_at=r.verified_at, created_at=r.created_at) for r in rows]
    if page.marker is None and page.limit > 0:
        items.insert(0, EmailView(id=None, email=user.email, primary=True, verified=user.email_verified_at is not None,
                                  verified_at=user.email_verified_at, created_at=user.created_at))
    return EmailList(items=items, marker=marker)


@me_router.post("/emails", operation_id="addMyEmail", status_code=201, response_model=EmailView)
def add_my_email(body: AddEmailRequest, db: Db, settings: AppSettings, principal: AccountPrincipal, ctx: Ctx,
                 mailer: MailerDep, background: BackgroundTasks) -> EmailView:
    """Add an address to the account; it stays unverified until the link in the email sent to it is used.
    Account-wide: 403 `organization_bound_login` through an SSO login while the account also belongs to other
    organizations."""
    row, outgoing = service.add_email(db, settings, principal, body.email, ctx)
    send_later(background, mailer, outgoing)
    return EmailView(id=row.id, email=row.email, primary=False, verified=False, verified_at=None,
                     created_at=row.created_at)


@me_router.delete("/emails/{email}", operation_id="removeMyEmail", response_model=Message)
def remove_my_email(email: Annotated[str, Path(min_length=3, max_length=320, description="The address.")], db: Db,
                    principal: AccountPrincipal, ctx: Ctx) -> dict[str, str]:
    """Remove an added address; the primary address cannot be removed. Account-wide:
    403 `organization_bound_login` through an SSO login while the account also belongs to other organizations."""
    service.remove_email(db, principal, email, ctx)
    return DONE
