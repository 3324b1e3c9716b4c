"""HTTP routes for the organization itself (/org), its role catalogs and its members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from sailplane.iam.auth.deps import CurrentPrincipal, Db, require
from sailplane.iam.auth.principal import Principal
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import PageRequest, paging
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message
from sailplane.tenancy.org import service
from sailplane.tenancy.org.schemas import (
    MemberItem,
    MemberList,
    MemberRolesRequest,
    MemberTeamRef,
    MemberView,
    OrganizationView,
    PermissionBundleView,
    RoleDetail,
    RoleItem,
    RoleList,
    RoleView,
    UpdateMemberRequest,
    UpdateOrganizationRequest,
)

router = APIRouter(route_class=JsonRoute, prefix="/org")
Ctx = Annotated[RequestContext, Depends(request_context)]
ManageOrganization = Annotated[Principal, Depends(require("CanManageOrganization"))]
ViewMembers = Annotated[Principal, Depends(require("CanViewMembers"))]
ManageUsers = Annotated[Principal, Depends(require("CanManageUsers"))]
RoleId = Annotated[str, Path(pattern=ID_PATTERN, description="The role ID.")]
MemberId = Annotated[str, Path(pattern=ID_PATTERN, description="The organization member ID.")]
Search = Annotated[
    str | None,
    Query(max_length=255, description="Matches role names and descriptions, case-insensitively."),
]
MemberFilterQuery = Annotated[
    str | None,
    Query(
        alias="filter", max_length=2000,
        description='Free text matching name or email, or a JSON object such as '
                    '{"query": "ann", "roleId": "ADMIN", "teamId": "A1B2C3", "status": "active"}.',
    ),
]


RolePaging = Annotated[PageRequest, Depends(paging(("name",)))]
MemberPaging = Annotated[PageRequest, Depends(paging(("name", "email")))]


# --- organization -----------------------------------------------------------------------------


def organization_view(record: service.OrganizationRecord) -> OrganizationView:
    org = record.organization
    return OrganizationView(
        id=org.id, name=org.name, description=org.description, require_mfa=org.require_mfa,
        member_count=record.member_count, team_count=record.team_count, created_at=org.created_at,
        created_by=org.created_by, updated_at=org.updated_at, updated_by=org.updated_by,
    )


@router.get("", operation_id="describeOrganization", response_model=OrganizationView, tags=["organization"])
def describe_organization(db: Db, principal: CurrentPrincipal) -> OrganizationView:
    """The organization this request acts on, with its member and team counts."""
    return organization_view(service.describe_organization(db, principal))


@router.patch("", operation_id="updateOrganization", response_model=OrganizationView, tags=["organization"])
def update_organization(body: UpdateOrganizationRequest, db: Db, principal: ManageOrganization,
                        ctx: Ctx) -> OrganizationView:
    """Rename the organization or change its description and MFA requirement."""
    changes = body.model_dump(include=body.model_fields_set)
    return organization_view(service.update_organization(db, principal, changes, ctx))


# --- roles ------------------------------------------------------------------------------------


def role_view(principal: Principal, record: service.RoleRecord) -> RoleView:
    """Catalog roles belong to the platform: a fixed timestamp, and nobody as creator/updater."""
    role = record.role
    return RoleView(
        id=role.id, organization_id=principal.organization_id, name=role.name, description=role.description,
        all_teams=role.all_teams, break_glass=role.break_glass, created_at=service.PLATFORM_TIMESTAMP,
        created_by=None, updated_at=service.PLATFORM_TIMESTAMP, updated_by=None,
    )


def role_list(principal: Principal, total: int, records: list[service.RoleRecord]) -> RoleList:
    return RoleList(total=total, items=[
        RoleItem(role=role_view(principal, r), member_count=r.member_count, permission_count=len(r.permissions))
        for r in records
    ])


def role_detail(principal: Principal, record: service.RoleRecord) -> RoleDetail:
    return RoleDetail(
        role=role_view(principal, record), member_count=record.member_count, permissions=record.permissions,
        permission_bundles=[PermissionBundleView(name=n, permissions=p) for n, p in record.bundles],
    )


@router.get("/roles", operation_id="listOrganizationRoles", response_model=RoleList, tags=["roles"])
def list_organization_roles(db: Db, principal: CurrentPrincipal, paging: RolePaging,
                            search: Search = None) -> RoleList:
    """The platform's fixed organization roles, with how many members hold each here."""
    total, records = service.list_roles(db, principal, "organization", search, paging)
    return role_list(principal, total, records)


@router.get("/roles/{role}", operation_id="describeOrganizationRole", response_model=RoleDetail, tags=["roles"])
def describe_organization_role(role: RoleId, db: Db, principal: CurrentPrincipal) -> RoleDetail:
    """One organization role with its permissions and the permission bundles they come from."""
    return role_detail(principal, service.describe_role(db, principal, "organization", role))


@router.get("/team-roles", operation_id="listTeamRoles", response_model=RoleList, tags=["roles"])
def list_team_roles(db: Db, principal: CurrentPrincipal, paging: RolePaging, search: Search = None) -> RoleList:
    """The platform's fixed team roles, with how many team-member assignments use each here."""
    total, records = service.list_roles(db, principal, "team", search, paging)
    return role_list(principal, total, records)


@router.get("/team-roles/{role}", operation_id="describeTeamRole", response_model=RoleDetail, tags=["roles"])
def describe_team_role(role: RoleId, db: Db, principal: CurrentPrincipal) -> RoleDetail:
    """One team role with its (team-scoped) permissions and permission bundles."""
    return role_detail(principal, service.describe_role(db, principal, "team", role))


# --- members ----------------------------------------------------------------------------------


def member_item(record: service.MemberRecord) -> MemberItem:
    m, u = record.member, record.user
    return MemberItem(
        member=MemberView(
            id=m.id, organization_id=m.organization_id, user_id=u.id, email=u.email,
            display_name=m.display_name or u.display_name, status=service.member_status(m, u),
            account_type=u.account_type, created_at=m.created_at, created_by=m.created_by,
            updated_at=m.updated_at, updated_by=m.updated_by,
        ),
        role_ids=record.role_ids,
        teams=[MemberTeamRef(id=t.id, name=t.name, role_ids=r) for t, r in record.teams],
    )


@router.get("/members", operation_id="searchMembers", response_model=MemberList, tags=["members"])
def search_members(db: Db, principal: ViewMembers, paging: MemberPaging,
                   filter_: MemberFilterQuery = None) -> MemberList:
    """Members with their organization roles and the teams (visible to the caller) they belong to."""
    flt = service.parse_member_filter(filter_)
    total, records = service.search_members(db, principal, flt, paging)
    return MemberList(total=total, items=[member_item(r) for r in records])


@router.get("/members/{member}", operation_id="describeMember", response_model=MemberItem, tags=["members"])
def describe_member(member: MemberId, db: Db, principal: ViewMembers) -> MemberItem:
    """One member: profile, organization roles and team memberships."""
    return member_item(service.describe_member(db, principal, member))


@router.patch("/members/{member}", operation_id="updateMember", response_model=MemberItem, tags=["members"])
def update_member(member: MemberId, body: UpdateMemberRequest, db: Db, principal: ManageUsers,
                  ctx: Ctx) -> MemberItem:
    """Set the member's display name here, or (de)activate the membership; the last Owner stays active."""
    changes = body.model_dump(include=body.model_fields_set)
    return member_item(service.update_member(db, principal, member, changes, ctx))


@router.delete("/members/{member}", operation_id="removeMember", response_model=Message, tags=["members"])
def remove_member(member: MemberId, db: Db, principal: ManageUsers, ctx: Ctx) -> dict[str, str]:
    """Remove the member with their roles and team memberships; never the last Owner."""
    service.remove_member(db, principal, member, ctx)
    return DONE


@router.put("/members/{member}/roles", operation_id="updateMemberRoles", response_model=Message, tags=["members"])
def update_member_roles(member: MemberId, body: MemberRolesRequest, db: Db, principal: ManageUsers,
                        ctx: Ctx) -> dict[str, str]:
    """Replace the member's organization roles (at least one); Owner changes need an Owner."""
    service.update_member_roles(db, principal, member, body.role_ids, ctx)
    return DONE
