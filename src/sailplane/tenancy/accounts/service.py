"""The caller's own account, and the organization-admin operations on user accounts.

An admin of one organization manages a user's membership there; the global identity (profile,
password) is theirs to change only while that organization is the user's only one, so no
organization can take over an account that others rely on.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sailplane.iam.auth import catalog
from sailplane.iam.auth.models import Login, User
from sailplane.iam.auth.passwords import check_password_rules, hash_password, verify_password
from sailplane.iam.auth.principal import Principal
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.db import commit_before_raising
from sailplane.kit.errors import ApiError, conflict, forbidden, invalid, not_found
from sailplane.kit.input import within_bounds
from sailplane.kit.pagination import MarkerPage, apply_marker, split_marker
from sailplane.notifications.security import USER_CREATED, record_security_event
from sailplane.tenancy.accounts.schemas import CreateUserRequest, UpdateMeRequest, UpdateUserRequest
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org import membership
from sailplane.tenancy.org.membership import owner_count, role_ids_of
from sailplane.tenancy.org.models import Member, MemberRole, Organization
from sailplane.tenancy.org.service import add_member
from sailplane.tenancy.teams.models import Team
from sailplane.workloads import access


def require_user(principal: Principal) -> User:
    if principal.user is None:
        raise ApiError(400, "not_a_user", "This operation is for user accounts, not API keys.")
    return principal.user


def preferences_of(user: User) -> dict[str, Any]:
    try:
        value = json.loads(user.preferences or "{}")
    except (ValueError, RecursionError):
        return {}
    return value if within_bounds(value) else {}  # also for values stored before the bounds existed


def memberships(db: Session, user_id: str) -> list[tuple[Member, Organization, list[str]]]:
    rows = db.execute(
        select(Member, Organization)
        .join(Organization, Organization.id == Member.organization_id)
        .where(Member.user_id == user_id, Member.status == "active")
        .order_by(Member.created_at)
    ).all()
    result = []
    for member, org in rows:
        roles = sorted(db.scalars(select(MemberRole.role_id).where(MemberRole.member_id == member.id)))
        result.append((member, org, roles))
    return result


def update_me(db: Session, principal: Principal, body: UpdateMeRequest, ctx: RequestContext) -> User:
    user = require_user(principal)
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.preferences is not None:
        encoded = json.dumps(body.preferences)
        if len(encoded) > 4000:
            raise invalid("preferences", "must encode to at most 4000 characters of JSON")
        user.preferences = encoded
    if body.default_organization_id is not None:
        member_orgs = {m.organization_id for m, _o, _r in memberships(db, user.id)}
        if body.default_organization_id not in member_orgs:
            raise invalid("defaultOrganizationId", "you are not a member of that organization")
        user.default_organization_id = body.default_organization_id
    user.updated_by = principal.actor_id
    audit.record(db, ctx, principal, "user.update_self", "user", user.id)
    db.flush()
    return user


def list_logins(db: Session, principal: Principal) -> list[Login]:
    """The caller's active logins; a login bound to an organization (SSO) sees only those bound to it."""
    user = require_user(principal)
    now = utcnow()
    stmt = select(Login).where(Login.user_id == user.id, Login.revoked_at.is_(None), Login.expires_at > now)
    if principal.bound_organization_id is not None:
        stmt = stmt.where(Login.organization_id == principal.bound_organization_id)
    return list(db.scalars(stmt.order_by(Login.created_at.desc())))


def revoke_login(db: Session, principal: Principal, login_id: str, ctx: RequestContext) -> None:
    user = require_user(principal)
    login = db.get(Login, login_id)
    bound = principal.bound_organization_id
    if login is None or login.user_id != user.id or login.revoked_at is not None \
            or (bound is not None and login.organization_id != bound):
        raise not_found("login")
    login.revoked_at = utcnow()
    audit.record(db, ctx, principal, "login.revoke", "login", login.id)
    db.flush()


def my_teams(db: Session, principal: Principal) -> list[tuple[Team, list[str]]]:
    if principal.member is None:
        return []
    teams = db.scalars(
        select(Team).where(Team.id.in_(principal.team_ids), Team.organization_id == principal.organization_id)
        .order_by(Team.name)
    )
    return [(t, sorted(principal.team_roles[t.id])) for t in teams]


# --- organization admin operations on users -------------------------------------------------


def list_users(db: Session, principal: Principal, page: MarkerPage) -> tuple[list[tuple[User, Member]], str | None]:
    stmt = (
        select(User, Member).join(Member, Member.user_id == User.id)
        .where(Member.organization_id == principal.organization_id)
    )
    rows = [(u, m) for u, m in db.execute(apply_marker(stmt, User.id, page)).all()]
    return split_marker(rows, page, key=lambda r: r[0].id)


def create_user(
    db: Session, principal: Principal, body: CreateUserRequest, ctx: RequestContext
) -> tuple[User, Member, str | None]:
    email = body.email.strip().lower()
    role_ids = list(dict.fromkeys(body.role_ids or [catalog.MEMBER]))
    for role_id in role_ids:
        if role_id not in catalog.ORG_ROLES:
            raise invalid("roleIds", f"unknown organization role {role_id}")
    if catalog.OWNER in role_ids and not principal.has("CanManageOwners"):
        raise forbidden("Only an Owner can create another Owner.")
    if db.scalar(select(User.id).where(User.email == email)) is not None:
        raise conflict("email_taken",
                       "An account with this email already exists; invite it with createInvitation instead.")
    temporary = None
    if body.password is None:
        temporary = secrets.token_urlsafe(12)
        password = temporary
    else:
        check_password_rules(body.password)
        password = body.password
    user = User(
        email=email,
        display_name=body.display_name,
        password_hash=hash_password(password),
        must_change_password=temporary is not None,
        account_type=body.account_type,
        default_organization_id=principal.organization_id,
        created_by=principal.actor_id,
        updated_by=principal.actor_id,
    )
    db.add(user)
    db.flush()
    member = add_member(db, principal.organization_id, user, role_ids, created_by=principal.actor_id)
    audit.record(db, ctx, principal, "user.create", "user", user.id, details={"roleIds": role_ids})
    record_security_event(db, principal.organization_id, USER_CREATED, actor_id=principal.actor_id,
                          member_id=member.id, data={"user": {  # never its password, nor the temporary one
                              "id": user.id, "email": user.email, "displayName": user.display_name,
                              "accountType": user.account_type, "memberId": member.id, "roleIds": role_ids}})
    db.flush()
    return user, member, temporary


def update_user(
    db: Session, principal: Principal, user_id: str, body: UpdateUserRequest, ctx: RequestContext
) -> tuple[User, Member]:
    user, member = membership.org_user(db, principal.organization_id, user_id)
    membership.guard_owner(db, principal, member)
    changes = body.model_dump(exclude_none=True)
    if body.display_name is not None or body.account_type is not None:
        membership.guard_sole_org(db, user, principal.organization_id, "the profile")
        if body.display_name is not None:
            user.display_name = body.display_name
        if body.account_type is not None:
            user.account_type = body.account_type
        user.updated_by = principal.actor_id
    if body.status is not None and body.status != member.status:
        if body.status != "active" and catalog.OWNER in role_ids_of(db, member.id) \
                and owner_count(db, principal.organization_id) <= 1:
            raise conflict("last_owner", "The organization's last Owner cannot be deactivated.")
        member.status = body.status
        member.updated_by = principal.actor_id
    audit.record(db, ctx, principal, "user.update", "user", user.id, details={"fields": sorted(changes)})
    if body.status is not None and body.status != "active":
        db.flush()
        access.end_lost_sessions(db, ctx, principal, principal.organization_id, members=[member.id],
                                 why="Closed because its owner's membership was deactivated.")
    db.flush()
    return user, member


def delete_user(db: Session, principal: Principal, user_id: str, ctx: RequestContext) -> None:
    _user, member = membership.org_user(db, principal.organization_id, user_id)
    membership.remove_membership(db, principal, member, ctx, "user.delete")


def change_password(
    db: Session, principal: Principal, user_id: str, current: str, new: str, ctx: RequestContext
) -> None:
    caller = require_user(principal)
    user, _member = membership.org_user(db, principal.organization_id, user_id)
    if user.id != caller.id:
        raise forbidden("You can change only your own password; admins use resetUserPassword.")
    if not verify_password(user.password_hash, current):
        audit.record(db, ctx, principal, "user.change_password", "user", user.id, outcome="failure")
        commit_before_raising(db)
        raise ApiError(400, "invalid_current_password", "The current password is incorrect.",
                       field_errors={"currentPassword": "is incorrect"})
    check_password_rules(new, "newPassword")
    if new == current:
        raise invalid("newPassword", "must differ from the current password")
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.updated_by = principal.actor_id
    # Every other login ends: a password change is how people lock out a stolen session.
    current_login = principal.identity.login.id if principal.identity.login else None
    db.execute(
        update(Login).where(Login.user_id == user.id, Login.id != current_login, Login.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    audit.record(db, ctx, principal, "user.change_password", "user", user.id)
    db.flush()


def reset_password(db: Session, principal: Principal, user_id: str, ctx: RequestContext) -> str:
    user, member = membership.org_user(db, principal.organization_id, user_id)
    membership.guard_owner(db, principal, member)
    membership.guard_sole_org(db, user, principal.organization_id, "the password")
    if user.account_type == "external":
        raise conflict("external_account", "This account signs in through SSO; it has no password to reset.")
    temporary = secrets.token_urlsafe(12)
    user.password_hash = hash_password(temporary)
    user.must_change_password = True
    user.updated_by = principal.actor_id
    db.execute(update(Login).where(Login.user_id == user.id, Login.revoked_at.is_(None)).values(revoked_at=utcnow()))
    audit.record(db, ctx, principal, "user.reset_password", "user", user.id)
    db.flush()
    return temporary
