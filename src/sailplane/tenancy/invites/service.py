"""Invitations: a pending, single-use token that lets one email address join an organization.

The token (20 Crockford base32 characters, 100 random bits) exists in clear only in the email; the
database keeps its SHA-256. Accepting claims the invitation with a conditional update
(status 'pending' -> 'accepted'), so of two concurrent accepts exactly one wins. An expired
invitation answers 409 invite_expired (a state conflict, like a used one: 409 invite_used).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth import catalog
from sailplane.iam.auth.models import Login, User
from sailplane.iam.auth.passwords import check_password_rules, hash_password
from sailplane.iam.auth.principal import Identity, Principal
from sailplane.iam.auth.service import normalize_email
from sailplane.iam.auth.signin import issue_login
from sailplane.iam.mfa.service import org_requires_mfa
from sailplane.kit.clock import iso, utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import token_hash
from sailplane.kit.db import commit_before_raising
from sailplane.kit.errors import ApiError, conflict, forbidden, invalid, not_found, unauthorized
from sailplane.kit.ids import ALPHABET
from sailplane.kit.pagination import PageRequest
from sailplane.notifications.mailer.service import Mailer
from sailplane.notifications.security import INVITATION_ACCEPTED, INVITATION_CREATED, record_security_event
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.invites.models import Invitation
from sailplane.tenancy.invites.schemas import AcceptInvitationRequest, CreateInvitationRequest, InvitationStatus
from sailplane.tenancy.org.models import Member, Organization
from sailplane.tenancy.org.service import add_member, ordered, page_total, paged
from sailplane.tenancy.service_accounts.models import ServiceAccount
from sailplane.tenancy.teams.models import Team, TeamMemberRole

TOKEN_LENGTH = 20  # 20 x 5 bits = 100 bits, and it still matches ^[A-Z0-9]{1,20}$ so it can be a path segment


def new_token() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(TOKEN_LENGTH))


def status_of(invitation: Invitation, now: datetime | None = None) -> InvitationStatus:
    if invitation.status == "accepted":
        return "accepted"
    return "expired" if invitation.expires_at <= (now or utcnow()) else "pending"


# --- creating ------------------------------------------------------------------------------


def _check_roles(principal: Principal, role_ids: list[str]) -> None:
    for role_id in role_ids:
        if role_id not in catalog.ORG_ROLES:
            raise invalid("roleIds", f"unknown organization role {role_id}")
    if catalog.OWNER in role_ids and not principal.has("CanManageOwners"):
        raise forbidden("Only an Owner can invite another Owner.")
    # Inviting with a role grants it: beyond Member that needs the permission that manages roles,
    # so a policy granting CanInviteMembers alone cannot be used to hand out Admin.
    if any(r != catalog.MEMBER for r in role_ids) and not principal.has("CanManageUsers"):
        raise forbidden("Inviting with a role other than Member needs the CanManageUsers permission.")


def _check_teams(db: Session, principal: Principal, team_ids: list[str]) -> None:
    if not team_ids:
        return
    found = set(db.scalars(
        select(Team.id).where(Team.organization_id == principal.organization_id, Team.id.in_(team_ids))
    ))
    for team_id in team_ids:
        if team_id not in found or not principal.can_see_team(team_id):
            raise invalid("teamIds", f"unknown team {team_id}")
    for team_id in team_ids:
        if not principal.has("CanManageTeam", team_id):
            raise forbidden(f"Adding members to team {team_id} needs the CanManageTeam permission there.")


def _is_member(db: Session, org_id: str, email: str) -> bool:
    return db.scalar(
        select(Member.id).join(User, User.id == Member.user_id)
        .where(Member.organization_id == org_id, User.email == email)
    ) is not None


def create_invitation(
    db: Session, settings: Settings, principal: Principal, body: CreateInvitationRequest, ctx: RequestContext
) -> tuple[Invitation, str]:
    """Validate, store the hashed token and flush; returns the invitation and its clear token."""
    email = normalize_email(body.email)
    role_ids = list(dict.fromkeys(body.role_ids or [catalog.MEMBER]))
    team_ids = list(dict.fromkeys(body.team_ids or []))
    _check_roles(principal, role_ids)
    _check_teams(db, principal, team_ids)
    if _is_member(db, principal.organization_id, email):
        raise conflict("already_member", "A member of this organization already uses this email.")
    token = new_token()
    now = utcnow()
    invitation = Invitation(
        organization_id=principal.organization_id, email=email, role_ids=role_ids, team_ids=team_ids,
        token_hash=token_hash(token), status="pending", expires_at=now + timedelta(seconds=settings.invite_ttl_seconds),
        created_at=now, updated_at=now, created_by=principal.actor_id, updated_by=principal.actor_id,
    )
    db.add(invitation)
    db.flush()
    audit.record(db, ctx, principal, "invitation.create", "invitation", invitation.id,
                 details={"email": email, "roleIds": role_ids, "teamIds": team_ids})
    # With the invitation, so no event is lost; if the email then fails the invitation is withdrawn (audited as
    # invitation.withdraw) and the event may already have gone out.
    record_security_event(db, principal.organization_id, INVITATION_CREATED, actor_id=principal.actor_id,
                          team_ids=team_ids, data={"invitation": {
                              "id": invitation.id, "email": email, "roleIds": role_ids, "teamIds": team_ids,
                              "expiresAt": iso(invitation.expires_at)}})
    db.flush()
    return invitation, token


def _one_line(value: str) -> str:
    return " ".join(value.split())


def send_invitation_email(
    mailer: Mailer, settings: Settings, invitation: Invitation, token: str, organization_name: str, inviter: str
) -> None:
    org_name, inviter = _one_line(organization_name), _one_line(inviter)
    link = f"{settings.public_url}/invites/{token}"
    body = (
        f"{inviter} invited you to join the organization \"{org_name}\" on Sailplane.\n\n"
        f"Accept the invitation:\n{link}\n\n"
        f"Or accept it with the invitation code {token} (POST /api/v1/invites/{token}/accept).\n"
        f"The invitation expires at {iso(invitation.expires_at)}. If you did not expect it, ignore this email.\n"
    )
    mailer.send(invitation.email, f"{inviter} invited you to {org_name} on Sailplane", body)


def withdraw_unsent(db: Session, principal: Principal, invitation_id: str, ctx: RequestContext) -> None:
    """The email could not be sent: remove the invitation, so nothing half-done remains."""
    db.rollback()
    db.execute(delete(Invitation).where(Invitation.id == invitation_id, Invitation.status == "pending"))
    audit.record(db, ctx, principal, "invitation.withdraw", "invitation", invitation_id,
                 outcome="failure", details={"reason": "mail_delivery_failed"})
    commit_before_raising(db)


def inviter_name(principal: Principal) -> str:
    if principal.member is not None:
        user = principal.user
        return principal.member.display_name or (user.display_name if user else "A member")
    account = principal.identity.service_account
    return account.name if account else "An administrator"


# --- managing: list, resend, revoke ----------------------------------------------------------


def search(db: Session, principal: Principal, page: PageRequest,
           state: InvitationStatus | None) -> tuple[int, list[Invitation]]:
    """The organization's invitations, a page at a time; `state` is the status as answered (expiry included)."""
    stmt = select(Invitation).where(Invitation.organization_id == principal.organization_id)
    now = utcnow()
    if state == "accepted":
        stmt = stmt.where(Invitation.status == "accepted")
    elif state == "pending":
        stmt = stmt.where(Invitation.status == "pending", Invitation.expires_at > now)
    elif state == "expired":
        stmt = stmt.where(Invitation.status == "pending", Invitation.expires_at <= now)
    column = Invitation.email if page.sort_by == "email" else Invitation.created_at
    rows = list(db.scalars(paged(ordered(stmt, page, column, Invitation.id), page)))
    return page_total(db, stmt, page, len(rows)), rows


def _own(db: Session, principal: Principal, invitation_id: str) -> Invitation:
    invitation = db.scalar(select(Invitation).where(
        Invitation.id == invitation_id, Invitation.organization_id == principal.organization_id))
    if invitation is None:
        raise not_found("invitation")
    return invitation


def renew(db: Session, settings: Settings, principal: Principal, invitation_id: str,
          ctx: RequestContext) -> tuple[Invitation, str]:
    """A new token and expiry for an unaccepted invitation (the old link stops working); flushed, not sent.
    Resending hands out the invitation's roles and teams again, so it needs what creating it needed."""
    invitation = _own(db, principal, invitation_id)
    if status_of(invitation) == "accepted":
        raise conflict("invite_used", "This invitation was already accepted.")
    _check_roles(principal, list(invitation.role_ids or []))
    _check_teams(db, principal, [t for t in invitation.team_ids or []
                                 if db.get(Team, t) is not None])  # teams deleted since then are skipped on accept
    token = new_token()
    now = utcnow()
    invitation.token_hash = token_hash(token)
    invitation.expires_at = now + timedelta(seconds=settings.invite_ttl_seconds)
    invitation.updated_at = now
    invitation.updated_by = principal.actor_id
    db.flush()
    audit.record(db, ctx, principal, "invitation.resend", "invitation", invitation.id,
                 details={"email": invitation.email})
    return invitation, token


def revoke(db: Session, principal: Principal, invitation_id: str, ctx: RequestContext) -> None:
    """Withdraw an unaccepted invitation: its link answers 404 from now on."""
    invitation = _own(db, principal, invitation_id)
    if status_of(invitation) == "accepted":
        raise conflict("invite_used", "This invitation was already accepted; remove the member instead.")
    db.delete(invitation)
    db.flush()
    audit.record(db, ctx, principal, "invitation.revoke", "invitation", invitation_id,
                 details={"email": invitation.email})


# --- describing ----------------------------------------------------------------------------


def find(db: Session, token: str) -> Invitation:
    invitation = db.scalar(select(Invitation).where(Invitation.token_hash == token_hash(token)))
    if invitation is None:
        raise not_found("invitation")
    return invitation


@dataclass(frozen=True)
class Described:
    invitation: Invitation
    organization: Organization
    invited_by: str | None


def describe(db: Session, token: str) -> Described:
    invitation = find(db, token)
    organization = db.get(Organization, invitation.organization_id)
    if organization is None:
        raise not_found("invitation")
    return Described(invitation, organization, _creator_name(db, invitation.created_by))


def _creator_name(db: Session, actor_id: str | None) -> str | None:
    if actor_id is None:
        return None
    row = db.execute(select(Member, User).join(User, User.id == Member.user_id).where(Member.id == actor_id)).first()
    if row is not None:
        return row[0].display_name or row[1].display_name
    account = db.get(ServiceAccount, actor_id)
    return account.name if account else None


# --- accepting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    invitation: Invitation
    member: Member
    user: User
    login: Login | None = None
    token: str | None = None
    mfa_enrollment_required: bool = False


def _check_open(invitation: Invitation, now: datetime) -> None:
    state = status_of(invitation, now)
    if state == "accepted":
        raise conflict("invite_used", "This invitation was already used.")
    if state == "expired":
        raise conflict("invite_expired", "This invitation has expired; ask for a new one.")


def _claim(db: Session, invitation: Invitation, now: datetime) -> None:
    """The single-use guarantee: only one transaction can move this row out of 'pending'."""
    result = db.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.status == "pending")
        .values(status="accepted", accepted_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        raise conflict("invite_used", "This invitation was already used.")


def _join(db: Session, invitation: Invitation, user: User) -> Member:
    role_ids = [r for r in invitation.role_ids or [] if r in catalog.ORG_ROLES] or [catalog.MEMBER]
    member = add_member(db, invitation.organization_id, user, role_ids, created_by=None)
    teams = db.scalars(select(Team).where(
        Team.organization_id == invitation.organization_id, Team.id.in_(invitation.team_ids or [])
    ))
    for team in teams:  # teams deleted since the invitation was sent are skipped
        db.add(TeamMemberRole(team_id=team.id, member_id=member.id, role_id=team.default_role_id,
                              organization_id=invitation.organization_id))
    db.execute(
        update(Invitation).where(Invitation.id == invitation.id)
        .values(accepted_by=member.id, updated_by=member.id).execution_options(synchronize_session=False)
    )
    if user.default_organization_id is None:
        user.default_organization_id = invitation.organization_id
    return member


def accept(
    db: Session, settings: Settings, token: str, identity: Identity | None, body: AcceptInvitationRequest,
    ctx: RequestContext,
) -> Accepted:
    invitation = find(db, token)
    now = utcnow()
    signup_fields = sorted(k for k in ("display_name", "password") if getattr(body, k) is not None)
    if identity is not None:
        if signup_fields:
            raise invalid("body", "you are signed in: accept without signup fields, or sign out to create an account")
        if identity.user is None:
            raise forbidden("API keys cannot accept invitations; sign in as the invited user.")
        if identity.login is not None and identity.login.organization_id is not None:
            # An SSO login is vouched for by one organization's identity provider; joining another
            # organization is the account's business (see auth.deps.check_account_wide).
            raise ApiError(403, "organization_bound_login",
                           "This login came through an organization's identity provider and acts only there: "
                           "sign in with your password or a one-time code to accept the invitation.")
        user = identity.user
        if user.email != invitation.email:
            raise forbidden("This invitation was sent to another email address.")
        _check_open(invitation, now)
        if _is_member(db, invitation.organization_id, invitation.email):
            raise conflict("already_member", "You are already a member of this organization.")
        _claim(db, invitation, now)
        member = _join(db, invitation, user)
        _record(db, ctx, invitation, member, user, new_account=False)
        db.flush()
        return Accepted(invitation, member, user)

    if not signup_fields:
        raise unauthorized("Sign in to accept the invitation, or send displayName and password to create an account.")
    if body.display_name is None:
        raise invalid("displayName", "is required to create an account")
    if body.password is None:
        raise invalid("password", "is required to create an account")
    _check_open(invitation, now)
    if db.scalar(select(User.id).where(User.email == invitation.email)) is not None:
        raise conflict("account_exists",
                       "An account with this email already exists; sign in and accept the invitation.")
    check_password_rules(body.password)
    password_hash = hash_password(body.password)
    _claim(db, invitation, now)
    user = User(email=invitation.email, display_name=body.display_name, password_hash=password_hash,
                email_verified_at=now, default_organization_id=invitation.organization_id)
    db.add(user)
    db.flush()
    member = _join(db, invitation, user)
    user.created_by = user.updated_by = member.id
    # A new account has no authenticator yet: where the organization requires MFA, its first login can only
    # enroll one, as a password sign-in would give it (mfa.service.begin_login).
    enroll = org_requires_mfa(db, user.id, invitation.organization_id)
    login, clear = issue_login(db, settings, user, ctx, method="invitation",
                               scope="mfa_enrollment" if enroll else "full")
    _record(db, ctx, invitation, member, user, new_account=True)
    db.flush()
    return Accepted(invitation, member, user, login, clear, mfa_enrollment_required=enroll)


def _record(db: Session, ctx: RequestContext, invitation: Invitation, member: Member, user: User, *,
            new_account: bool) -> None:
    audit.record(db, ctx, None, "invitation.accept", "invitation", invitation.id,
                 organization_id=invitation.organization_id, actor_type="member", actor_id=member.id,
                 details={"userId": user.id, "memberId": member.id, "roleIds": list(invitation.role_ids or []),
                          "teamIds": list(invitation.team_ids or []), "newAccount": new_account})
    record_security_event(db, invitation.organization_id, INVITATION_ACCEPTED, actor_id=member.id,
                          member_id=member.id, team_ids=list(invitation.team_ids or []), data={"invitation": {
                              "id": invitation.id, "email": invitation.email, "memberId": member.id,
                              "userId": user.id, "roleIds": list(invitation.role_ids or []),
                              "teamIds": list(invitation.team_ids or []), "newAccount": new_account}})


def mail_failure() -> ApiError:
    return ApiError(503, "mail_unavailable", "The invitation email could not be sent; try again later.",
                    retryable=True, retry_after=30)
