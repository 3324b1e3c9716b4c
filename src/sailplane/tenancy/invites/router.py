"""HTTP routes for invitations: creating one (organization admins) and the public describe/accept
operations, whose path parameter is the invitation token from the email."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from sailplane.iam.auth.deps import AppSettings, Db, optional_identity, require
from sailplane.iam.auth.principal import Identity, Principal
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.db import checkpoint
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import PageRequest, paging
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message
from sailplane.notifications.mailer.service import Mailer
from sailplane.tenancy.invites import service
from sailplane.tenancy.invites.models import Invitation
from sailplane.tenancy.invites.schemas import (
    AcceptedInvitation,
    AcceptedInvitationWithLogin,
    AcceptInvitationRequest,
    CreateInvitationRequest,
    InvitationDetails,
    InvitationList,
    InvitationStatus,
    InvitationView,
)

log = logging.getLogger("sailplane.tenancy.invites")
org_router = APIRouter(route_class=JsonRoute, prefix="/org/invites", tags=["invitations"])
public_router = APIRouter(route_class=JsonRoute, prefix="/invites", tags=["invitations"])
Ctx = Annotated[RequestContext, Depends(request_context)]
Invite = Annotated[Principal, Depends(require("CanInviteMembers"))]
InvitationId = Annotated[str, Path(alias="invitation", pattern=ID_PATTERN, description="The invitation ID.")]
InvitationPaging = Annotated[PageRequest, Depends(paging(("createdAt", "email")))]
StatusFilter = Annotated[InvitationStatus | None, Query(alias="status", description="Only invitations in this state.")]
InviteToken = Annotated[str, Path(alias="invite", pattern=ID_PATTERN,
                                  description="The invitation token from the invitation email.")]


def get_mailer(request: Request) -> Mailer:
    return request.app.state.mailer  # type: ignore[no-any-return]


def invitation_view(invitation: Invitation) -> InvitationView:
    return InvitationView(
        id=invitation.id, organization_id=invitation.organization_id, email=invitation.email,
        role_ids=list(invitation.role_ids or []), team_ids=list(invitation.team_ids or []),
        status=service.status_of(invitation), expires_at=invitation.expires_at, created_at=invitation.created_at,
        created_by=invitation.created_by, updated_at=invitation.updated_at, updated_by=invitation.updated_by,
    )


@org_router.post("", operation_id="createInvitation", status_code=201, response_model=InvitationView)
def create_invitation(body: CreateInvitationRequest, db: Db, settings: AppSettings, principal: Invite, ctx: Ctx,
                      mailer: Annotated[Mailer, Depends(get_mailer)]) -> InvitationView:
    """Invite an email address to join with the given roles and teams; the link is sent by email only."""
    invitation, token = service.create_invitation(db, settings, principal, body, ctx)
    checkpoint(db)  # the email must only point at a committed invitation, and no transaction waits on the mail server
    try:
        service.send_invitation_email(mailer, settings, invitation, token, principal.organization.name,
                                      service.inviter_name(principal))
    except Exception as exc:  # noqa: BLE001 - any delivery failure: undo, and say so
        log.warning("invitation email not sent: %s", type(exc).__name__)
        service.withdraw_unsent(db, principal, invitation.id, ctx)
        raise service.mail_failure() from exc
    return invitation_view(invitation)


@org_router.get("", operation_id="listInvitations", response_model=InvitationList)
def list_invitations(db: Db, principal: Invite, page: InvitationPaging, state: StatusFilter = None) -> InvitationList:
    """The organization's invitations (pending, expired and accepted), for resending or revoking them."""
    total, rows = service.search(db, principal, page, state)
    return InvitationList(total=total, items=[invitation_view(i) for i in rows])


@org_router.post("/{invitation}/resend", operation_id="resendInvitation", response_model=InvitationView)
def resend_invitation(invitation_id: InvitationId, db: Db, settings: AppSettings, principal: Invite, ctx: Ctx,
                      mailer: Annotated[Mailer, Depends(get_mailer)]) -> InvitationView:
    """Email the invitation again with a new link and a new expiry (the previous link stops working); for an
    invitation not yet accepted, expired or not. 503 `mail_unavailable` when the email could not be sent (resend
    again later: the previous link no longer works)."""
    invitation, token = service.renew(db, settings, principal, invitation_id, ctx)
    checkpoint(db)  # the email must only point at a committed token, and no transaction waits on the mail server
    try:
        service.send_invitation_email(mailer, settings, invitation, token, principal.organization.name,
                                      service.inviter_name(principal))
    except Exception as exc:  # noqa: BLE001 - any delivery failure: say so
        log.warning("invitation email not resent: %s", type(exc).__name__)
        raise service.mail_failure() from exc
    return invitation_view(invitation)


@org_router.delete("/{invitation}", operation_id="revokeInvitation", response_model=Message)
def revoke_invitation(invitation_id: InvitationId, db: Db, principal: Invite, ctx: Ctx) -> dict[str, str]:
    """Withdraw an invitation not yet accepted: its link stops working (404). An accepted one answers 409."""
    service.revoke(db, principal, invitation_id, ctx)
    return DONE


@public_router.get("/{invite}", operation_id="describeInvitation", response_model=InvitationDetails)
def describe_invitation(token: InviteToken, db: Db) -> InvitationDetails:
    """Public: what the invitation link offers (organization, inviter, status), shown before accepting."""
    found = service.describe(db, token)
    invitation = found.invitation
    return InvitationDetails(
        id=invitation.id, organization_id=invitation.organization_id, organization_name=found.organization.name,
        email=invitation.email, role_ids=list(invitation.role_ids or []), status=service.status_of(invitation),
        expires_at=invitation.expires_at, invited_by=found.invited_by,
    )


@public_router.post("/{invite}/accept", operation_id="acceptInvitation",
                    response_model=AcceptedInvitationWithLogin | AcceptedInvitation)
def accept_invitation(
    token: InviteToken, db: Db, settings: AppSettings, ctx: Ctx,
    identity: Annotated[Identity | None, Depends(optional_identity)],
    body: AcceptInvitationRequest | None = None,
) -> AcceptedInvitationWithLogin | AcceptedInvitation:
    """Join the organization: signed in as the invited email, or anonymously with displayName and password,
    which creates the account (its email counts as verified) and answers a login token too. Single use.
    Not with a login through an organization's identity provider (403 `organization_bound_login`)."""
    accepted = service.accept(db, settings, token, identity, body or AcceptInvitationRequest(), ctx)
    base = AcceptedInvitation(organization_id=accepted.invitation.organization_id, member_id=accepted.member.id,
                              user_id=accepted.user.id)
    if accepted.login is None or accepted.token is None:
        return base
    return AcceptedInvitationWithLogin(**base.model_dump(), token=accepted.token, login_id=accepted.login.id,
                                       expires_at=accepted.login.expires_at,
                                       mfa_enrollment_required=accepted.mfa_enrollment_required)
