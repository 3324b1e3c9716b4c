"""Wire shapes for the organization, its role catalogs and its members."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sailplane.kit.schemas import ApiModel, Description, Name, NotNull, RequestModel, ResourceId, Timestamp

# --- organization -----------------------------------------------------------------------------


class OrganizationView(ApiModel):
    id: str
    name: str
    description: str | None
    require_mfa: bool
    member_count: int
    team_count: int
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class UpdateOrganizationRequest(RequestModel):
    name: Annotated[Name | None, NotNull] = None
    description: Description | None = Field(default=None, description="null clears the description.")
    require_mfa: Annotated[bool | None, NotNull] = Field(
        default=None, description="Members must enroll MFA to use the organization.")


# --- roles ------------------------------------------------------------------------------------


class RoleView(ApiModel):
    id: str
    organization_id: str
    name: str
    description: str
    all_teams: bool
    break_glass: bool
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class RoleItem(ApiModel):
    role: RoleView
    member_count: int
    permission_count: int


class RoleList(ApiModel):
    total: int
    items: list[RoleItem]


class PermissionBundleView(ApiModel):
    name: str
    permissions: list[str]


class RoleDetail(ApiModel):
    role: RoleView
    member_count: int
    permissions: list[str]
    permission_bundles: list[PermissionBundleView]


# --- members ----------------------------------------------------------------------------------


class MemberView(ApiModel):
    id: str
    organization_id: str
    user_id: str
    email: str
    display_name: str
    status: str
    account_type: str
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class MemberTeamRef(ApiModel):
    id: str
    name: str
    role_ids: list[str]


class MemberItem(ApiModel):
    member: MemberView
    role_ids: list[str]
    teams: list[MemberTeamRef]


class MemberList(ApiModel):
    total: int
    items: list[MemberItem]


class UpdateMemberRequest(RequestModel):
    display_name: Name | None = Field(
        default=None, description="The display name in this organization; null falls back to the user's own."
    )
    status: Annotated[Literal["active", "deactivated"] | None, NotNull] = None


class MemberRolesRequest(RequestModel):
    role_ids: list[ResourceId] = Field(min_length=1, max_length=20, description="Replaces every organization role.")
