"""Organizations, their role catalogs and their members.

Rules kept here: never leave an organization without an active Owner; only holders of
CanManageOwners grant, remove or otherwise change an Owner; everything is scoped to the
organization the request acts on, so another organization's IDs are simply "not found".
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, delete, exists, func, select
from sqlalchemy.orm import Session

from sailplane.iam.auth import catalog
from sailplane.iam.auth.models import User
from sailplane.iam.auth.principal import Principal
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.errors import ApiError, conflict, forbidden, invalid, not_found
from sailplane.kit.ids import is_valid_id
from sailplane.kit.pagination import PageRequest, count
from sailplane.notifications.security import ROLE_CHANGED, record_security_event
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org import membership
from sailplane.tenancy.org.membership import owner_count, role_ids_of
from sailplane.tenancy.org.models import Member, MemberRole, Organization
from sailplane.tenancy.teams.models import Team, TeamMemberRole
from sailplane.workloads import access

# --- creation (used by signup, the CLI and createUser) ----------------------------------------


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


# --- shared helpers ----------------------------------------------------------------------------


def display_name_expr() -> ColumnElement[str]:
    """The org-scoped display name when set, else the user's own."""
    return func.coalesce(Member.display_name, User.display_name)


def ordered(stmt: Select, pr: PageRequest, key: Any, id_column: Any) -> Select:  # type: ignore[type-arg]
    """Sort on an allow-listed key with the ID as tie-breaker, so pages never overlap."""
    if pr.direction == "desc":
        return stmt.order_by(key.desc(), id_column.desc())
    return stmt.order_by(key, id_column)


def paged(stmt: Select, pr: PageRequest) -> Select:  # type: ignore[type-arg]
    return stmt.offset(pr.offset).limit(pr.limit)


def page_total(db: Session, stmt: Select, pr: PageRequest, returned: int) -> int:  # type: ignore[type-arg]
    """The total matching `stmt`; a short first page already is the total, saving a COUNT query."""
    if pr.offset == 0 and returned < pr.limit:
        return returned
    return count(db, stmt)


def member_status(member: Member, user: User) -> str:
    """The membership's status here, unless the account itself is disabled everywhere."""
    return member.status if member.status != "active" else user.status


def org_member(db: Session, org_id: str, member_id: str) -> tuple[Member, User]:
    row = db.execute(
        select(Member, User).join(User, User.id == Member.user_id)
        .where(Member.id == member_id, Member.organization_id == org_id)
    ).first()
    if row is None:
        raise not_found("member")
    return row[0], row[1]


# --- the organization itself ------------------------------------------------------------------


@dataclass
class OrganizationRecord:
    organization: Organization
    member_count: int
    team_count: int


def describe_organization(db: Session, principal: Principal) -> OrganizationRecord:
    org = principal.organization
    members = db.scalar(select(func.count()).select_from(Member).where(Member.organization_id == org.id)) or 0
    teams = db.scalar(select(func.count()).select_from(Team).where(Team.organization_id == org.id)) or 0
    return OrganizationRecord(org, members, teams)


def update_organization(db: Session, principal: Principal, changes: dict[str, Any],
                        ctx: RequestContext) -> OrganizationRecord:
    """`changes` holds only the fields the caller sent (snake_case); description may be None to clear it."""
    org = principal.organization
    if "name" in changes:
        if changes["name"] is None:
            raise invalid("name", "must not be null")
        org.name = changes["name"]
    if "description" in changes:
        org.description = changes["description"]
    if "require_mfa" in changes:
        if changes["require_mfa"] is None:
            raise invalid("requireMfa", "must not be null")
        org.require_mfa = changes["require_mfa"]
    org.updated_by = principal.actor_id
    org.updated_at = utcnow()
    audit.record(db, ctx, principal, "organization.update", "organization", org.id,
                 details={"fields": sorted(changes)})
    db.flush()
    return describe_organization(db, principal)


# --- role catalogs ----------------------------------------------------------------------------

# The catalogs are defined by the platform, not by any member: their records carry this fixed
# timestamp and a null createdBy/updatedBy.
PLATFORM_TIMESTAMP = datetime(2024, 1, 1, tzinfo=UTC)

RoleKind = Literal["organization", "team"]


@dataclass
class RoleRecord:
    role: catalog.Role
    member_count: int
    permissions: list[str]
    bundles: list[tuple[str, list[str]]] = field(default_factory=list)


def _role_catalog(kind: RoleKind) -> dict[str, catalog.Role]:
    return catalog.ORG_ROLES if kind == "organization" else catalog.TEAM_ROLES


def _role_permissions(kind: RoleKind, role: catalog.Role) -> tuple[list[str], list[tuple[str, list[str]]]]:
    if kind == "organization":
        perms = catalog.org_role_permissions(role.id)
        bundles = [(b, sorted(catalog.BUNDLES[b])) for b in role.bundles]
    else:
        perms = catalog.team_role_permissions(role.id)
        bundles = [(b, sorted(set(catalog.BUNDLES[b]) & catalog.TEAM_SCOPED)) for b in role.bundles]
    return sorted(perms), bundles


def _role_member_counts(db: Session, kind: RoleKind, org_id: str) -> dict[str, int]:
    """Organization roles: members holding it here. Team roles: team-member assignments here."""
    table: Any = MemberRole if kind == "organization" else TeamMemberRole
    rows = db.execute(
        select(table.role_id, func.count()).where(table.organization_id == org_id).group_by(table.role_id)
    ).all()
    return {role_id: n for role_id, n in rows}


def list_roles(db: Session, principal: Principal, kind: RoleKind, search: str | None,
               pr: PageRequest) -> tuple[int, list[RoleRecord]]:
    roles = list(_role_catalog(kind).values())
    if search:
        needle = search.strip().lower()
        roles = [r for r in roles if needle in r.name.lower() or needle in r.description.lower()]
    roles.sort(key=lambda r: (r.name.lower(), r.id), reverse=pr.direction == "desc")
    counts = _role_member_counts(db, kind, principal.organization_id)
    window = roles[pr.offset: pr.offset + pr.limit]
    records = []
    for role in window:
        perms, bundles = _role_permissions(kind, role)
        records.append(RoleRecord(role, counts.get(role.id, 0), perms, bundles))
    return len(roles), records


def describe_role(db: Session, principal: Principal, kind: RoleKind, role_id: str) -> RoleRecord:
    role = _role_catalog(kind).get(role_id)
    if role is None:
        raise not_found("role")
    perms, bundles = _role_permissions(kind, role)
    count_ = _role_member_counts(db, kind, principal.organization_id).get(role.id, 0)
    return RoleRecord(role, count_, perms, bundles)


# --- members ----------------------------------------------------------------------------------


@dataclass
class MemberRecord:
    member: Member
    user: User
    role_ids: list[str]
    teams: list[tuple[Team, list[str]]]


@dataclass(frozen=True)
class MemberFilter:
    query: str | None = None
    role_id: str | None = None
    team_id: str | None = None
    status: str | None = None


_FILTER_KEYS = {"query", "roleId", "teamId", "status"}


def _bad_filter(message: str) -> ApiError:
    return ApiError(400, "invalid_filter", f"filter: {message}", field_errors={"filter": message})


def parse_member_filter(raw: str | None) -> MemberFilter:
    """Free text matching name or email, or a JSON object {"query", "roleId", "teamId", "status"}."""
    if raw is None or not raw.strip():
        return MemberFilter()
    text = raw.strip()
    if not text.startswith("{"):
        return MemberFilter(query=text)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise _bad_filter("is not a valid JSON object") from None
    if not isinstance(value, dict):
        raise _bad_filter("is not a valid JSON object")
    unknown = sorted(set(value) - _FILTER_KEYS)
    if unknown:
        raise _bad_filter(f"unknown keys {', '.join(unknown)}; allowed: {', '.join(sorted(_FILTER_KEYS))}")
    for key, item in value.items():
        if item is not None and not isinstance(item, str):
            raise _bad_filter(f"{key} must be a string")
    role_id, team_id, status = value.get("roleId"), value.get("teamId"), value.get("status")
    if role_id is not None and role_id not in catalog.ORG_ROLES:
        raise _bad_filter(f"roleId must be one of {', '.join(catalog.ORG_ROLES)}")
    if team_id is not None and not is_valid_id(team_id):
        raise _bad_filter("teamId must match ^[A-Z0-9]{1,20}$")
    if status is not None and status not in ("active", "deactivated"):
        raise _bad_filter("status must be active or deactivated")
    query = value.get("query")
    if query is not None and len(query) > 255:
        raise _bad_filter("query must be at most 255 characters")
    return MemberFilter(query=(query or "").strip() or None, role_id=role_id, team_id=team_id, status=status)


def _records(db: Session, principal: Principal, rows: Sequence[tuple[Member, User]]) -> list[MemberRecord]:
    """Roles and teams for a page of members in two queries. Teams the caller cannot see are left out."""
    ids = [m.id for m, _u in rows]
    roles: dict[str, list[str]] = defaultdict(list)
    teams: dict[str, dict[str, tuple[Team, list[str]]]] = defaultdict(dict)
    if ids:
        for member_id, role_id in db.execute(
            select(MemberRole.member_id, MemberRole.role_id).where(MemberRole.member_id.in_(ids))
        ):
            roles[member_id].append(role_id)
        for member_id, role_id, team in db.execute(
            select(TeamMemberRole.member_id, TeamMemberRole.role_id, Team)
            .join(Team, Team.id == TeamMemberRole.team_id)
            .where(TeamMemberRole.member_id.in_(ids))
        ):
            if principal.can_see_team(team.id):
                teams[member_id].setdefault(team.id, (team, []))[1].append(role_id)
    result = []
    for member, user in rows:
        member_teams = sorted(teams[member.id].values(), key=lambda t: (t[0].name.lower(), t[0].id))
        result.append(MemberRecord(member, user, sorted(roles[member.id]),
                                   [(t, sorted(r)) for t, r in member_teams]))
    return result


def search_members(db: Session, principal: Principal, flt: MemberFilter,
                   pr: PageRequest) -> tuple[int, list[MemberRecord]]:
    """Teams in the results are actual team memberships; Owners and Admins see every team through
    their allTeams role instead of being written into each team."""
    if flt.team_id is not None and not principal.can_see_team(flt.team_id):
        return 0, []
    stmt = (
        select(Member, User).join(User, User.id == Member.user_id)
        .where(Member.organization_id == principal.organization_id)
    )
    if flt.query:
        needle = flt.query.lower()
        stmt = stmt.where(
            func.lower(display_name_expr()).contains(needle, autoescape=True)
            | func.lower(User.email).contains(needle, autoescape=True)
        )
    if flt.role_id:
        stmt = stmt.where(exists().where(MemberRole.member_id == Member.id, MemberRole.role_id == flt.role_id))
    if flt.team_id:
        stmt = stmt.where(exists().where(TeamMemberRole.member_id == Member.id, TeamMemberRole.team_id == flt.team_id))
    if flt.status:
        stmt = stmt.where(Member.status == flt.status)
    key = func.lower(display_name_expr()) if pr.sort_by == "name" else User.email
    rows = db.execute(paged(ordered(stmt, pr, key, Member.id), pr)).all()
    return page_total(db, stmt, pr, len(rows)), _records(db, principal, rows)


def describe_member(db: Session, principal: Principal, member_id: str) -> MemberRecord:
    member, user = org_member(db, principal.organization_id, member_id)
    return _records(db, principal, [(member, user)])[0]


def _guard_owner_target(db: Session, principal: Principal, member: Member) -> list[str]:
    """Only holders of CanManageOwners act on an Owner. Returns the member's current roles."""
    current = role_ids_of(db, member.id)
    if catalog.OWNER in current and not principal.has("CanManageOwners"):
        raise forbidden("Only an Owner can change another Owner.")
    return current


def update_member(db: Session, principal: Principal, member_id: str, changes: dict[str, Any],
                  ctx: RequestContext) -> MemberRecord:
    """displayName is the org-scoped display name (null falls back to the user's own); status is
    the membership's status in this organization."""
    member, user = org_member(db, principal.organization_id, member_id)
    current = _guard_owner_target(db, principal, member)
    status = changes.get("status")
    if "status" in changes and status is None:
        raise invalid("status", "must be active or deactivated")
    if status is not None and status != member.status and status != "active" \
            and catalog.OWNER in current and owner_count(db, principal.organization_id) <= 1:
        raise conflict("last_owner", "The organization's last Owner cannot be deactivated.")
    if "display_name" in changes:
        member.display_name = changes["display_name"]
    if status is not None:
        member.status = status
    member.updated_by = principal.actor_id
    member.updated_at = utcnow()
    audit.record(db, ctx, principal, "member.update", "member", member.id,
                 details={"fields": sorted(changes), **({"status": status} if status else {})})
    if status is not None and status != "active":
        db.flush()
        access.end_lost_sessions(db, ctx, principal, principal.organization_id, members=[member.id],
                                 why="Closed because its owner's membership was deactivated.")
    db.flush()
    return describe_member(db, principal, member.id)


def remove_member(db: Session, principal: Principal, member_id: str, ctx: RequestContext) -> None:
    """Roles and team memberships go with the member; the account goes too if it belongs nowhere else."""
    member, _user = org_member(db, principal.organization_id, member_id)
    membership.remove_membership(db, principal, member, ctx, "member.remove")


def update_member_roles(db: Session, principal: Principal, member_id: str, role_ids: list[str],
                        ctx: RequestContext) -> None:
    member, _user = org_member(db, principal.organization_id, member_id)
    wanted = list(dict.fromkeys(role_ids))
    unknown = [r for r in wanted if r not in catalog.ORG_ROLES]
    if unknown:
        raise invalid("roleIds", f"unknown organization role {', '.join(unknown)}")
    if not wanted:
        raise invalid("roleIds", "at least one role is required")
    current = role_ids_of(db, member.id)
    touches_owner = catalog.OWNER in current or catalog.OWNER in wanted
    if touches_owner and not principal.has("CanManageOwners"):
        raise forbidden("Only an Owner can grant, remove or change the Owner role.")
    if catalog.OWNER in current and catalog.OWNER not in wanted and member.status == "active" \
            and owner_count(db, principal.organization_id) <= 1:
        raise conflict("last_owner", "The organization's last Owner must keep the Owner role.")
    db.execute(delete(MemberRole).where(MemberRole.member_id == member.id))
    for role_id in wanted:
        db.add(MemberRole(member_id=member.id, role_id=role_id, organization_id=principal.organization_id))
    member.updated_by = principal.actor_id
    member.updated_at = utcnow()
    audit.record(db, ctx, principal, "member.update_roles", "member", member.id,
                 details={"before": current, "after": sorted(wanted)})
    if sorted(current) != sorted(wanted):
        record_security_event(db, principal.organization_id, ROLE_CHANGED, actor_id=principal.actor_id,
                              member_id=member.id, data={"roleChange": {
                                  "memberId": member.id, "scope": "organization", "before": sorted(current),
                                  "after": sorted(wanted)}})
    db.flush()
    access.end_lost_sessions(db, ctx, principal, principal.organization_id, members=[member.id],
                             why="Closed because its owner's organization roles no longer give access to it.")
    db.flush()
