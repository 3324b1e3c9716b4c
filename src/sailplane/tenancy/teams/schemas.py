"""Wire shapes for teams and their members (the public docs' `{team{...}, memberCount}` items)."""

from __future__ import annotations

from typing import Annotated

from pydantic import EmailStr, Field

from sailplane.kit.schemas import ApiModel, Description, Name, NotNull, RequestModel, ResourceId, Timestamp

TeamEmail = Annotated[EmailStr, Field(max_length=320)]


class TeamView(ApiModel):
    id: str
    organization_id: str
    name: str
    description: str | None
    email: str | None
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None
    default_role_id: str


class TeamItem(ApiModel):
    team: TeamView
    member_count: int


class TeamList(ApiModel):
    total: int
    items: list[TeamItem]


class CreateTeamRequest(RequestModel):
    organization_id: ResourceId | None = Field(
        default=None, description="Optional; when given it must be the organization this request acts on."
    )
    name: Name
    description: Description | None = None
    email: TeamEmail | None = None
    default_role_id: ResourceId | None = Field(
        default=None, description="The team role new members get when none is given; default TEAMDEVELOPER."
    )


class UpdateTeamRequest(RequestModel):
    name: Annotated[Name | None, NotNull] = None
    description: Description | None = Field(default=None, description="null clears the description.")
    email: TeamEmail | None = Field(default=None, description="null clears the team email.")
    default_role_id: Annotated[ResourceId | None, NotNull] = None


class TeamRoleRef(ApiModel):
    id: str
    name: str


class TeamMemberRef(ApiModel):
    id: str
    user_id: str
    email: str
    display_name: str
    status: str


class TeamMemberItem(ApiModel):
    member: TeamMemberRef
    role_ids: list[str]
    roles: list[TeamRoleRef]


class TeamMemberList(ApiModel):
    total: int
    items: list[TeamMemberItem]


class AddTeamMemberRequest(RequestModel):
    role_ids: list[ResourceId] | None = Field(
        default=None, max_length=20, description="Team roles; omitted or empty means the team's defaultRoleId."
    )


class TeamMemberRolesRequest(RequestModel):
    role_ids: list[ResourceId] = Field(min_length=1, max_length=20, description="Replaces the member's team roles.")
