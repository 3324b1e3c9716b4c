"""HTTP routes for teams and team membership (/org/teams)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request, Response

from sailplane.iam.auth import catalog
from sailplane.iam.auth.deps import (
    AuthorizationHeader,
    Db,
    OrganizationHeader,
    caller,
    read_session,
    read_team,
    require,
    require_team,
    signed_in,
)
from sailplane.iam.auth.principal import Principal
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import PageRequest, paging
from sailplane.kit.routing import JsonRoute, raw_json
from sailplane.kit.schemas import DONE, Message
from sailplane.tenancy.org.service import member_status
from sailplane.tenancy.teams import service
from sailplane.tenancy.teams.reads import TEAM_VIEW
from sailplane.tenancy.teams.schemas import (
    AddTeamMemberRequest,
    CreateTeamRequest,
    TeamItem,
    TeamList,
    TeamMemberItem,
    TeamMemberList,
    TeamMemberRef,
    TeamMemberRolesRequest,
    TeamRoleRef,
    UpdateTeamRequest,
)

router = APIRouter(route_class=JsonRoute, prefix="/org/teams", tags=["teams"])
Ctx = Annotated[RequestContext, Depends(request_context)]
CreateTeams = Annotated[Principal, Depends(require("CanCreateTeams"))]
ViewTeam = Annotated[Principal, Depends(require_team("CanViewTeam"))]
ManageTeam = Annotated[Principal, Depends(require_team("CanManageTeam"))]
ViewedTeam = Annotated[service.TeamRow, Depends(read_team("CanViewTeam", service.describe_team))]
TeamId = Annotated[str, Path(pattern=ID_PATTERN, description="The team ID.")]
MemberId = Annotated[str, Path(pattern=ID_PATTERN, description="The organization member ID.")]

SORTABLE = ("name", "email")
# A TeamItem's JSON from a teams.reads.TEAM_COLUMNS row: the read routes answer with it pre-encoded
# (validating 100 rows into models only to dump them again was most of listTeams' time).
team_doc = TEAM_VIEW.render

Paging = Annotated[PageRequest, Depends(paging(SORTABLE))]


def team_member_item(record: service.TeamMemberRecord) -> TeamMemberItem:
    m, u = record.member, record.user
    return TeamMemberItem(
        member=TeamMemberRef(id=m.id, user_id=u.id, email=u.email, display_name=m.display_name or u.display_name,
                             status=member_status(m, u)),
        role_ids=record.role_ids,
        roles=[TeamRoleRef(id=r, name=catalog.TEAM_ROLES[r].name) for r in record.role_ids if r in catalog.TEAM_ROLES],
    )


def visible_teams(request: Request, paging: Paging, authorization: AuthorizationHeader = None,
                  organization_id: OrganizationHeader = None) -> tuple[int, Sequence[service.TeamRow]]:
    """CurrentPrincipal, then its page of teams, in one worker-thread hop (as auth.deps.read_team).

    So the page parameters are validated before the token is checked: a bad limit with an invalid token gets
    400; a request with no token at all still gets 401 first (list_teams declares signed_in before this)."""
    with read_session(request) as db:
        return service.list_teams(db, caller(db, authorization, organization_id), paging)


@router.get("", operation_id="listTeams", response_model=TeamList, dependencies=[Depends(signed_in)])
async def list_teams(page: Annotated[tuple[int, Sequence[service.TeamRow]], Depends(visible_teams)]) -> Response:
    """Teams with member counts: every team for org admins (and CanViewTeam holders), else the caller's own."""
    total, rows = page
    return raw_json({"total": total, "items": [team_doc(r) for r in rows]})


@router.post("", operation_id="createTeam", status_code=201, response_model=TeamItem)
def create_team(body: CreateTeamRequest, db: Db, principal: CreateTeams, ctx: Ctx) -> Response:
    """Create a team; the creating member joins it with the highest team role."""
    return raw_json(team_doc(service.create_team(db, principal, body.model_dump(), ctx)), 201)


@router.get("/{team}", operation_id="describeTeam", response_model=TeamItem)
async def describe_team(team: TeamId, found: ViewedTeam) -> Response:
    """One team with its member count; 404 when the caller cannot see it."""
    return raw_json(team_doc(found))


@router.patch("/{team}", operation_id="updateTeam", response_model=TeamItem)
def update_team(team: TeamId, body: UpdateTeamRequest, db: Db, principal: ManageTeam, ctx: Ctx) -> Response:
    """Rename the team or change its description, email or default role (names stay unique)."""
    changes = body.model_dump(include=body.model_fields_set)
    return raw_json(team_doc(service.update_team(db, principal, team, changes, ctx)))


@router.delete("/{team}", operation_id="deleteTeam", response_model=Message)
def delete_team(team: TeamId, db: Db, principal: ManageTeam, ctx: Ctx) -> dict[str, str]:
    """Delete the team and every member assignment; its resources stay reachable only through other teams."""
    service.delete_team(db, principal, team, ctx)
    return DONE


@router.get("/{team}/members", operation_id="listTeamMembers", response_model=TeamMemberList)
def list_team_members(team: TeamId, db: Db, principal: ViewTeam, paging: Paging) -> TeamMemberList:
    """The team's members with their team roles."""
    total, records = service.list_team_members(db, principal, team, paging)
    return TeamMemberList(total=total, items=[team_member_item(r) for r in records])


@router.put("/{team}/members/{member}", operation_id="addTeamMember", response_model=TeamMemberItem)
def add_team_member(team: TeamId, member: MemberId, db: Db, principal: ManageTeam, ctx: Ctx,
                    body: Annotated[AddTeamMemberRequest | None, Body()] = None) -> TeamMemberItem:
    """Add an active member of this organization to the team (or replace their team roles if already in it)."""
    role_ids = body.role_ids if body is not None else None
    return team_member_item(service.add_team_member(db, principal, team, member, role_ids, ctx))


@router.delete("/{team}/members/{member}", operation_id="removeTeamMember", response_model=Message)
def remove_team_member(team: TeamId, member: MemberId, db: Db, principal: ManageTeam, ctx: Ctx) -> dict[str, str]:
    """Take the member out of the team; their organization membership is untouched."""
    service.remove_team_member(db, principal, team, member, ctx)
    return DONE


@router.put("/{team}/members/{member}/roles", operation_id="updateTeamMemberRoles", response_model=Message)
def update_team_member_roles(team: TeamId, member: MemberId, body: TeamMemberRolesRequest, db: Db,
                             principal: ManageTeam, ctx: Ctx) -> dict[str, str]:
    """Replace a team member's roles (at least one); use removeTeamMember to take them out."""
    service.update_team_member_roles(db, principal, team, member, body.role_ids, ctx)
    return DONE
