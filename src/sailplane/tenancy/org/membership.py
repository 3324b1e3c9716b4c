"""Membership rules shared by the admin operations on users (accounts), members (org) and MFA resets.

They sit below all three services so none of them imports another one for a guard: removing a member
and deleting a user are the same operation, and an admin acts on an Owner's account only as an Owner.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sailplane.iam.auth import catalog
from sailplane.iam.auth.models import User
from sailplane.iam.auth.principal import Principal
from sailplane.kit.context import RequestContext
from sailplane.kit.errors import conflict, forbidden, not_found
from sailplane.notifications.security import MEMBER_REMOVED, record_security_event
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org.models import Member, MemberRole
from sailplane.tenancy.policies.models import Policy
from sailplane.tenancy.teams.models import TeamMemberRole
from sailplane.workloads import access


def owner_count(db: Session, org_id: str) -> int:
    """Active Owners: the last one can be neither removed nor demoted."""
    stmt = (
        select(func.count())
        .select_from(MemberRole)
        .join(Member, Member.id == MemberRole.member_id)
        .where(MemberRole.organization_id == org_id, MemberRole.role_id == catalog.OWNER,
               Member.status == "active")
    )
    return db.scalar(stmt) or 0


def role_ids_of(db: Session, member_id: str) -> list[str]:
    return sorted(db.scalars(select(MemberRole.role_id).where(MemberRole.member_id == member_id)))


def org_user(db: Session, org_id: str, user_id: str) -> tuple[User, Member]:
    """The user with their membership of the organization; 404 for users of other organizations only."""
    row = db.execute(
        select(User, Member).join(Member, Member.user_id == User.id)
        .where(User.id == user_id, Member.organization_id == org_id)
    ).first()
    if row is None:
        raise not_found("user")
    return row[0], row[1]


def other_org_count(db: Session, user_id: str, org_id: str) -> int:
    return db.scalar(
        select(func.count()).select_from(Member).where(Member.user_id == user_id, Member.organization_id != org_id)
    ) or 0


def guard_owner(db: Session, principal: Principal, member: Member) -> None:
    """Only those who may manage owners may act on an Owner's account."""
    if catalog.OWNER in role_ids_of(db, member.id) and not principal.has("CanManageOwners"):
        raise forbidden("Only an Owner can change another Owner's account.")


def guard_sole_org(db: Session, user: User, org_id: str, what: str) -> None:
    """An admin changes a user's global identity (`what`) only while their organization is the user's only one."""
    if other_org_count(db, user.id, org_id):
        raise conflict("user_in_other_organizations",
                       f"The user belongs to other organizations, so {what} is theirs to change.")


def remove_membership(db: Session, principal: Principal, member: Member, ctx: RequestContext, action: str) -> None:
    """Shared by deleteUser and removeMember: roles and team memberships go with the member."""
    guard_owner(db, principal, member)
    is_active_owner = member.status == "active" and catalog.OWNER in role_ids_of(db, member.id)
    if is_active_owner and owner_count(db, principal.organization_id) <= 1:
        raise conflict("last_owner", "The organization's last Owner cannot be removed.")
    user = db.get(User, member.user_id)
    _removed_event(db, principal, member, user, action)
    db.execute(delete(TeamMemberRole).where(TeamMemberRole.member_id == member.id))
    db.execute(delete(MemberRole).where(MemberRole.member_id == member.id))
    # A grant must not outlive the membership: rejoining later starts from the roles given then.
    db.execute(delete(Policy).where(Policy.organization_id == principal.organization_id,
                                    Policy.principal_type == "user", Policy.principal_id == member.user_id))
    db.delete(member)
    db.flush()
    if user is not None:
        if other_org_count(db, user.id, principal.organization_id) == 0:
            db.delete(user)
        elif user.default_organization_id == principal.organization_id:
            user.default_organization_id = None
    audit.record(db, ctx, principal, action, "member", member.id, details={"userId": member.user_id})
    db.flush()
    access.end_lost_sessions(db, ctx, principal, principal.organization_id, members=[member.id],
                             why="Closed because its owner was removed from the organization.")
    db.flush()


def _removed_event(db: Session, principal: Principal, member: Member, user: User | None, action: str) -> None:
    """Recorded before the roles go: the event names what the member could do (and team rules of their teams
    match it)."""
    teams = sorted(set(db.scalars(select(TeamMemberRole.team_id).where(TeamMemberRole.member_id == member.id))))
    record_security_event(db, principal.organization_id, MEMBER_REMOVED, actor_id=principal.actor_id,
                          member_id=member.id, team_ids=teams, data={"member": {
                              "id": member.id, "userId": member.user_id, "email": user.email if user else None,
                              "roleIds": role_ids_of(db, member.id), "teamIds": teams,
                              "userDeleted": action == "user.delete"}})
