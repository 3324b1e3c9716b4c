"""Teams and team membership.

Visibility: Owners/Admins (roles with allTeams) and anyone granted CanViewTeam organization-wide
see every team; everyone else sees the teams they belong to. A member's allTeams role is how the
platform's "automatically added to every team" is modelled: such members are not written into
each team, they see and act in all of them through their organization role.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sailplane.iam.auth import authz, catalog
from sailplane.iam.auth.models import User
from sailplane.iam.auth.principal import Principal
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.errors import conflict, invalid, not_found
from sailplane.kit.pagination import PageRequest
from sailplane.notifications.security import ROLE_CHANGED, record_security_event
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org.models import Member
from sailplane.tenancy.org.service import display_name_expr, ordered, org_member, page_total, paged
from sailplane.tenancy.policies.models import Policy
from sailplane.tenancy.teams import reads
from sailplane.tenancy.teams.models import Team, TeamMemberRole
from sailplane.tenancy.teams.reads import TeamRow
from sailplane.workloads import access


@dataclass
class TeamMemberRecord:
    member: Member
    user: User
    role_ids: list[str]


def _check_team_roles(role_ids: Sequence[str], field: str) -> list[str]:
    unknown = [r for r in role_ids if r not in catalog.TEAM_ROLES]
    if unknown:
        raise invalid(field, f"unknown team role {', '.join(unknown)}")
    return list(dict.fromkeys(role_ids))


def _check_unique_name(db: Session, org_id: str, name: str, exclude: str | None = None) -> None:
    stmt = select(Team.id).where(Team.organization_id == org_id, func.lower(Team.name) == name.lower())
    if exclude is not None:
        stmt = stmt.where(Team.id != exclude)
    if db.scalar(stmt.limit(1)) is not None:
        raise conflict("team_name_taken", "A team with this name already exists in the organization.")


def _visible(principal: Principal, team: Team | None) -> bool:
    return team is not None and team.organization_id == principal.organization_id and principal.can_see_team(team.id)


def get_team(db: Session, principal: Principal, team_id: str) -> Team:
    """The team, if it is in this organization and the caller can see it; else 404."""
    team = db.get(Team, team_id)
    if team is None or not _visible(principal, team):
        raise not_found("team")
    return team


def list_teams(db: Session, principal: Principal, pr: PageRequest) -> tuple[int, Sequence[TeamRow]]:
    """Visible teams as reads.TEAM_COLUMNS rows, and the total.

    One row past the page is read, so the total is known without a COUNT whenever the page is the last one."""
    own_teams = authz.team_filter(principal)
    sees_all = own_teams is None
    params: dict[str, Any] = {"org_id": principal.organization_id, "offset": pr.offset, "limit": pr.limit + 1}
    if own_teams is not None:
        params["team_ids"] = own_teams
    conn = db.connection()
    rows = reads.fetch_page(conn, (sees_all, pr.sort_by, pr.direction), params)
    if len(rows) <= pr.limit and (rows or pr.offset == 0):
        return pr.offset + len(rows), rows
    return conn.execute(reads.COUNTS[sees_all], params).scalar_one(), rows[: pr.limit]


def _team_row(db: Session, org_id: str, team_id: str) -> TeamRow | None:
    return db.connection().execute(reads.ONE_TEAM, {"team_id": team_id, "org_id": org_id}).first()


def describe_team(db: Session, principal: Principal, team_id: str) -> TeamRow:
    """The team as a reads.TEAM_COLUMNS row, in one query; 404 when the caller cannot see it."""
    row = _team_row(db, principal.organization_id, team_id)
    if row is None or not principal.can_see_team(team_id):
        raise not_found("team")
    return row


def create_team(db: Session, principal: Principal, fields: dict[str, Any], ctx: RequestContext) -> TeamRow:
    """The creator (a member, not a service account) joins with the highest team role.

    Answers with the row as stored, read back like describeTeam's, so both render identically."""
    org_id = principal.organization_id
    if fields.get("organization_id") not in (None, org_id):
        raise not_found("organization")
    default_role = fields.get("default_role_id") or catalog.DEFAULT_TEAM_ROLE
    _check_team_roles([default_role], "defaultRoleId")
    _check_unique_name(db, org_id, fields["name"])
    team = Team(
        organization_id=org_id, name=fields["name"], description=fields.get("description"),
        email=_email(fields.get("email")), default_role_id=default_role,
        created_by=principal.actor_id, updated_by=principal.actor_id,
    )
    db.add(team)
    db.flush()
    if principal.member is not None:
        db.add(TeamMemberRole(team_id=team.id, member_id=principal.member.id, role_id=catalog.HIGHEST_TEAM_ROLE,
                              organization_id=org_id))
    audit.record(db, ctx, principal, "team.create", "team", team.id,
                 details={"name": team.name, "defaultRoleId": default_role})
    db.flush()
    row = _team_row(db, org_id, team.id)
    if row is None:  # not after the flush above, within this transaction; narrows the type
        raise not_found("team")
    return row


def _email(value: str | None) -> str | None:
    return value.strip().lower() if value else None


def update_team(db: Session, principal: Principal, team_id: str, changes: dict[str, Any],
                ctx: RequestContext) -> TeamRow:
    """`changes` holds only the fields sent; description and email may be null to clear them."""
    team = get_team(db, principal, team_id)
    if "name" in changes:
        if changes["name"] is None:
            raise invalid("name", "must not be null")
        _check_unique_name(db, team.organization_id, changes["name"], exclude=team.id)
    if "default_role_id" in changes:
        if changes["default_role_id"] is None:
            raise invalid("defaultRoleId", "must not be null")
        _check_team_roles([changes["default_role_id"]], "defaultRoleId")
    if "name" in changes:
        team.name = changes["name"]
    if "description" in changes:
        team.description = changes["description"]
    if "email" in changes:
        team.email = _email(changes["email"])
    if "default_role_id" in changes:
        team.default_role_id = changes["default_role_id"]
    team.updated_by = principal.actor_id
    team.updated_at = utcnow()
    audit.record(db, ctx, principal, "team.update", "team", team.id, details={"fields": sorted(changes)})
    db.flush()
    return describe_team(db, principal, team.id)


def delete_team(db: Session, principal: Principal, team_id: str, ctx: RequestContext) -> None:
    """Member assignments and the team's own organization policy go with it."""
    team = get_team(db, principal, team_id)
    db.execute(delete(TeamMemberRole).where(TeamMemberRole.team_id == team.id))
    db.execute(delete(Policy).where(Policy.organization_id == team.organization_id,
                                    Policy.principal_type == "team", Policy.principal_id == team.id))
    db.delete(team)
    audit.record(db, ctx, principal, "team.delete", "team", team.id, details={"name": team.name})
    db.flush()


def with_member_counts(db: Session, team_ids: Sequence[str], limit: int | None = None) -> list[tuple[Team, int]]:
    """These teams by name, each with its member count: the team list of a shared resource (listCatalogTeams,
    listJobTeams, listProvisionedClusterTeams, a notebook listing's included teams)."""
    if not team_ids:
        return []
    members = (select(func.count(func.distinct(TeamMemberRole.member_id)))
               .where(TeamMemberRole.team_id == Team.id).correlate(Team).scalar_subquery())
    rows = db.execute(select(Team, members).where(Team.id.in_(team_ids))
                      .order_by(func.lower(Team.name), Team.id).limit(limit)).all()
    return [(team, int(n or 0)) for team, n in rows]


# --- team members -----------------------------------------------------------------------------


def _team_member_rows(db: Session, team_id: str, member_ids: Sequence[str]) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    if member_ids:
        for member_id, role_id in db.execute(
            select(TeamMemberRole.member_id, TeamMemberRole.role_id)
            .where(TeamMemberRole.team_id == team_id, TeamMemberRole.member_id.in_(member_ids))
        ):
            roles.setdefault(member_id, []).append(role_id)
    return {k: sorted(v) for k, v in roles.items()}


def list_team_members(db: Session, principal: Principal, team_id: str,
                      pr: PageRequest) -> tuple[int, list[TeamMemberRecord]]:
    team = get_team(db, principal, team_id)
    in_team = select(TeamMemberRole.member_id).where(TeamMemberRole.team_id == team.id)
    stmt = (
        select(Member, User).join(User, User.id == Member.user_id)
        .where(Member.organization_id == team.organization_id, Member.id.in_(in_team))
    )
    key = func.lower(display_name_expr()) if pr.sort_by == "name" else User.email
    rows = db.execute(paged(ordered(stmt, pr, key, Member.id), pr)).all()
    total = page_total(db, stmt, pr, len(rows))
    roles = _team_member_rows(db, team.id, [m.id for m, _u in rows])
    return total, [TeamMemberRecord(m, u, roles.get(m.id, [])) for m, u in rows]


def _team_and_member(db: Session, principal: Principal, team_id: str, member_id: str) -> tuple[Team, Member, User]:
    team = get_team(db, principal, team_id)
    member, user = org_member(db, principal.organization_id, member_id)
    return team, member, user


def _roles_changed(db: Session, principal: Principal, team: Team, member: Member, before: list[str],
                   wanted: list[str]) -> None:
    """A security event when the member's team roles differ from before (joining a team grants roles too)."""
    if sorted(before) != sorted(wanted):
        record_security_event(db, team.organization_id, ROLE_CHANGED, actor_id=principal.actor_id,
                              member_id=member.id, team_ids=(team.id,), data={"roleChange": {
                                  "memberId": member.id, "scope": "team", "teamId": team.id,
                                  "before": sorted(before), "after": sorted(wanted)}})


def _replace_roles(db: Session, team: Team, member: Member, role_ids: list[str]) -> None:
    db.execute(delete(TeamMemberRole).where(TeamMemberRole.team_id == team.id, TeamMemberRole.member_id == member.id))
    for role_id in role_ids:
        db.add(TeamMemberRole(team_id=team.id, member_id=member.id, role_id=role_id,
                              organization_id=team.organization_id))


def add_team_member(db: Session, principal: Principal, team_id: str, member_id: str, role_ids: list[str] | None,
                    ctx: RequestContext) -> TeamMemberRecord:
    """Idempotent: adding someone already in the team replaces their team roles."""
    team, member, user = _team_and_member(db, principal, team_id, member_id)
    if member.status != "active":
        raise not_found("member")
    wanted = _check_team_roles(role_ids or [team.default_role_id], "roleIds")
    before = _team_member_rows(db, team.id, [member.id]).get(member.id, [])
    _replace_roles(db, team, member, wanted)
    audit.record(db, ctx, principal, "team.add_member", "team", team.id,
                 details={"memberId": member.id, "before": before, "roleIds": sorted(wanted)})
    _roles_changed(db, principal, team, member, before, wanted)
    db.flush()
    return TeamMemberRecord(member, user, sorted(wanted))


def remove_team_member(db: Session, principal: Principal, team_id: str, member_id: str, ctx: RequestContext) -> None:
    team, member, _user = _team_and_member(db, principal, team_id, member_id)
    before = _team_member_rows(db, team.id, [member.id]).get(member.id)
    if not before:
        raise not_found("team member")
    _replace_roles(db, team, member, [])
    audit.record(db, ctx, principal, "team.remove_member", "team", team.id,
                 details={"memberId": member.id, "before": before})
    _roles_changed(db, principal, team, member, before, [])  # leaving a team: its roles go
    access.end_lost_sessions(db, ctx, principal, team.organization_id, members=[member.id],
                             why="Closed because its owner was removed from the session's team.")
    db.flush()


def update_team_member_roles(db: Session, principal: Principal, team_id: str, member_id: str, role_ids: list[str],
                             ctx: RequestContext) -> None:
    """Replaces the member's roles in the team; they must already belong to it."""
    team, member, _user = _team_and_member(db, principal, team_id, member_id)
    before = _team_member_rows(db, team.id, [member.id]).get(member.id)
    if not before:
        raise not_found("team member")
    wanted = _check_team_roles(role_ids, "roleIds")
    if not wanted:
        raise invalid("roleIds", "at least one role is required")
    _replace_roles(db, team, member, wanted)
    audit.record(db, ctx, principal, "team.update_member_roles", "team", team.id,
                 details={"memberId": member.id, "before": before, "roleIds": sorted(wanted)})
    _roles_changed(db, principal, team, member, before, wanted)
    db.flush()
