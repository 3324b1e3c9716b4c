"""Wire shapes for the caller's own account (/me) and the admin user operations (/users)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import EmailStr, Field, StringConstraints

from sailplane.iam.auth.schemas import Password
from sailplane.kit.input import JsonObject
from sailplane.kit.schemas import ApiModel, Name, RequestModel, ResourceId, Timestamp


class UserView(ApiModel):
    id: str
    email: str
    display_name: str
    account_type: str
    status: str
    email_verified: bool
    must_change_password: bool
    created_at: Timestamp
    updated_at: Timestamp


class OrganizationRef(ApiModel):
    id: str
    name: str
    member_id: str
    role_ids: list[str]


class MeResponse(ApiModel):
    user: UserView
    preferences: dict[str, Any]
    organization_id: str | None = Field(description="The organization this request acted on.")
    member_id: str | None
    role_ids: list[str]
    default_organization_id: str | None = Field(
        description="For a login bound to an organization (signed in through its identity provider), that one.")
    organizations: list[OrganizationRef] = Field(
        description="Every active membership; for a login bound to an organization, only that one.")
    login_organization_id: str | None = Field(
        default=None, description="Set when this login came through an organization's identity provider: the "
                                  "only organization it acts in.")


class UpdateMeRequest(RequestModel):
    display_name: Name | None = None
    preferences: JsonObject | None = Field(default=None, description="Replaces the stored preferences; at most 4000 "
                                                                     "characters as JSON.")
    default_organization_id: ResourceId | None = None


class LoginView(ApiModel):
    id: str
    method: str
    ip_address: str | None
    user_agent: str | None
    device: str | None
    created_at: Timestamp
    expires_at: Timestamp
    last_used_at: Timestamp | None
    current: bool
    organization_id: str | None = Field(
        default=None, description="Set for a login through an organization's identity provider: the only "
                                  "organization it acts in.")


class LoginList(ApiModel):
    items: list[LoginView]
    total: int


class TeamRoleRef(ApiModel):
    id: str
    name: str


class MyTeam(ApiModel):
    team_id: str
    name: str
    description: str | None
    role_ids: list[str]
    roles: list[TeamRoleRef]


class MyTeamList(ApiModel):
    items: list[MyTeam]
    total: int


class OrgUserView(UserView):
    member_id: str
    role_ids: list[str]


class UserList(ApiModel):
    items: list[OrgUserView]
    marker: str | None = None


class CreateUserRequest(RequestModel):
    email: EmailStr
    display_name: Name
    password: Password | None = Field(
        default=None, description="Omit to generate a temporary password that must be changed at first sign-in."
    )
    role_ids: list[ResourceId] | None = Field(default=None, description="Organization roles; default Member.")
    account_type: Literal["managed", "external"] = "managed"


class CreateUserResponse(OrgUserView):
    temporary_password: str | None = Field(default=None, description="Shown only in this response.")


class UpdateUserRequest(RequestModel):
    display_name: Name | None = None
    status: Literal["active", "deactivated"] | None = None
    account_type: Literal["managed", "external"] | None = None


class ChangePasswordRequest(RequestModel):
    current_password: Password
    new_password: Password


class ResetPasswordResponse(ApiModel):
    temporary_password: str = Field(description="Shown only in this response; must be changed at next sign-in.")


UserIdPath = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,20}$")]
