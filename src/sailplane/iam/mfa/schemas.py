"""Wire shapes for MFA enrollment, sign-in challenges and trusted devices."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from sailplane.iam.auth.schemas import LoginResponse
from sailplane.kit.schemas import ApiModel, RequestModel, Timestamp

TotpCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=6, max_length=6, pattern=r"^[0-9]{6}$")]
RecoveryCodeText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
OpaqueToken = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class MfaFactor(ApiModel):
    type: Literal["totp"]
    status: Literal["pending", "active"]
    created_at: Timestamp
    confirmed_at: Timestamp | None


class MfaStatus(ApiModel):
    enabled: bool = Field(description="True when a confirmed factor exists.")
    required: bool = Field(description="True when one of the caller's organizations requires MFA.")
    factors: list[MfaFactor]
    recovery_codes_remaining: int


class TotpEnrollment(ApiModel):
    secret: str = Field(description="Base32 secret; shown only in this response.")
    otpauth_uri: str
    qr_code_svg: str = Field(description="The otpauth URI as a QR code, an SVG document.")
    issuer: str
    account_name: str


class CodeRequest(RequestModel):
    code: TotpCode


class RecoveryCodes(ApiModel):
    recovery_codes: list[str] = Field(description="Single-use codes; shown only in this response.")


class MfaChallengeResponse(ApiModel):
    mfa_required: Literal[True] = True
    challenge_token: str = Field(description="Send it to completeMfaLogin with a code; short-lived.")
    expires_at: Timestamp
    methods: list[str]
    enrollment_required: bool = Field(
        default=False, description="The organization requires MFA and the account has no factor yet."
    )


class CompleteMfaLoginRequest(RequestModel):
    challenge_token: OpaqueToken
    code: TotpCode | None = None
    recovery_code: RecoveryCodeText | None = None
    trust_device: bool = False
    device_name: Annotated[str, StringConstraints(max_length=255)] | None = None

    @model_validator(mode="after")
    def one_factor(self) -> CompleteMfaLoginRequest:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("send exactly one of code and recoveryCode")
        return self


class MfaLoginResponse(LoginResponse):
    trusted_device_token: str | None = Field(
        default=None,
        description="With trustDevice: send it as trustedDeviceToken on later sign-ins to skip the MFA challenge; "
                    "shown only in this response.",
    )
    trusted_device_id: str | None = None


class TrustedDeviceView(ApiModel):
    id: str
    name: str | None
    ip_address: str | None
    user_agent: str | None
    created_at: Timestamp
    expires_at: Timestamp
    last_used_at: Timestamp | None


class TrustedDeviceList(ApiModel):
    items: list[TrustedDeviceView]
    total: int
