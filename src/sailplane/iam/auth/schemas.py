"""Wire shapes for sign-up, sign-in and the permission catalog."""

from __future__ import annotations

from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints

from sailplane.kit.schemas import ApiModel, Name, RequestModel, Timestamp

Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class SignupRequest(RequestModel):
    email: EmailStr
    password: Password
    display_name: Name
    organization_name: Name


class LoginRequest(RequestModel):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
    password: Password
    device_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    trusted_device_token: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="From an earlier completeMfaLogin with trustDevice: skips the MFA challenge.")


class LoginResponse(ApiModel):
    token: str = Field(description="Bearer token; shown only in this response.")
    token_type: str = "Bearer"
    login_id: str
    user_id: str
    expires_at: Timestamp
    must_change_password: bool = False
    mfa_enrollment_required: bool = Field(
        default=False,
        description="The organization requires MFA: this token can only enroll an authenticator (/me/mfa) "
                    "until confirmTotpEnrollment succeeds.",
    )


class SignupResponse(LoginResponse):
    organization_id: str
    member_id: str


class PermissionItem(ApiModel):
    relation: str
    description: str
    valid_object_types: list[str]
    system_only: bool


class PermissionList(ApiModel):
    items: list[PermissionItem]
