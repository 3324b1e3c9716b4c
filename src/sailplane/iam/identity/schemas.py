"""Wire shapes for one-time codes, email verification, extra addresses and password reset."""

from __future__ import annotations

from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints

from sailplane.iam.auth.schemas import Password
from sailplane.kit.schemas import ApiModel, RequestModel, Timestamp

EmailText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
LinkToken = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LoginCodeText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=6, max_length=8,
                                                 pattern=r"^[0-9]{6,8}$")]


class EmailRequest(RequestModel):
    email: EmailText


class VerifyLoginCodeRequest(RequestModel):
    email: EmailText
    code: LoginCodeText
    device_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    trusted_device_token: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="From an earlier completeMfaLogin with trustDevice: skips the MFA challenge.")


class TokenRequest(RequestModel):
    token: LinkToken


class ResetPasswordRequest(RequestModel):
    token: LinkToken
    new_password: Password


class AddEmailRequest(RequestModel):
    email: EmailStr


class Accepted(ApiModel):
    message: str = Field(examples=["If the address belongs to an account, an email is on its way."])


class EmailView(ApiModel):
    id: str | None = Field(description="Null for the primary address (it is the account's own email).")
    email: str
    primary: bool
    verified: bool
    verified_at: Timestamp | None
    created_at: Timestamp


class EmailList(ApiModel):
    items: list[EmailView]
    marker: str | None = None


class EmailVerified(ApiModel):
    email: str
    verified_at: Timestamp
