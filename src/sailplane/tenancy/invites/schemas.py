"""Wire shapes for invitations. The invitation token is never part of a response: it travels only
in the email, and is the path parameter of the public describe/accept operations."""

from __future__ import annotations

from typing import Literal

from pydantic import EmailStr, Field

from sailplane.iam.auth.schemas import Password
from sailplane.kit.schemas import ApiModel, Name, RequestModel, ResourceId, Timestamp

InvitationStatus = Literal["pending", "accepted", "expired"]


class CreateInvitationRequest(RequestModel):
    email: EmailStr
    role_ids: list[ResourceId] | None = Field(default=None, max_length=10,
                                              description="Organization roles on joining; default Member.")
    team_ids: list[ResourceId] | None = Field(default=None, max_length=100,
                                              description="Teams of this organization to join, with each team's "
                                                          "default role.")


class InvitationView(ApiModel):
    id: str
    organization_id: str
    email: str
    role_ids: list[str]
    team_ids: list[str]
    status: InvitationStatus
    expires_at: Timestamp
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class InvitationList(ApiModel):
    total: int
    items: list[InvitationView]


class InvitationDetails(ApiModel):
    """What the holder of the invitation link may see before accepting."""

    id: str
    organization_id: str
    organization_name: str
    email: str
    role_ids: list[str]
    status: InvitationStatus
    expires_at: Timestamp
    invited_by: str | None = Field(description="The display name of the member who sent the invitation.")


class AcceptInvitationRequest(RequestModel):
    """Empty when signed in; otherwise the fields that create the invited account."""

    display_name: Name | None = None
    password: Password | None = None


class AcceptedInvitation(ApiModel):
    organization_id: str
    member_id: str
    user_id: str


class AcceptedInvitationWithLogin(AcceptedInvitation):
    token: str = Field(description="Bearer token for the new account; shown only in this response.")
    token_type: str = "Bearer"
    login_id: str
    expires_at: Timestamp
    mfa_enrollment_required: bool = Field(
        default=False,
        description="The organization requires MFA: this token can only enroll an authenticator (/me/mfa) "
                    "until confirmTotpEnrollment succeeds.",
    )
