"""Organizations and their membership rules (never leave an organization without an Owner)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sailplane.auth import catalog
from sailplane.auth.models import User
from sailplane.org.models import Member, MemberRole, Organization


def create_organization(db: Session, name: str, owner: User) -> tuple[Organization, Member]:
    """The first user of a new organization becomes its Owner."""
    org = Organization(name=name)
    db.add(org)
    db.flush()
    member = add_member(db, org.id, owner, [catalog.OWNER], created_by=None)
    org.created_by = org.updated_by = member.id
    return org, member


def add_member(db: Session, org_id: str, user: User, role_ids: list[str], created_by: str | None) -> Member:
    member = Member(organization_id=org_id, user_id=user.id, created_by=created_by, updated_by=created_by)
    db.add(member)
    db.flush()
    if member.created_by is None:
        member.created_by = member.updated_by = member.id
    for role_id in dict.fromkeys(role_ids):
        db.add(MemberRole(member_id=member.id, role_id=role_id, organization_id=org_id))
    return member


def owner_count(db: Session, org_id: str) -> int:
    stmt = (
        select(func.count())
        .select_from(MemberRole)
        .join(Member, Member.id == MemberRole.member_id)
        .where(MemberRole.organization_id == org_id, MemberRole.role_id == catalog.OWNER,
               Member.status == "active")
    )
    return db.scalar(stmt) or 0
