"""Wire shapes for service accounts and their API keys (the secret appears only in CreatedApiKey)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from sailplane.kit.schemas import ApiModel, Description, Name, NotNull, RequestModel, Timestamp

MAX_KEY_LIFETIME_SECONDS = 10 * 365 * 24 * 3600


class ServiceAccountView(ApiModel):
    id: str
    organization_id: str
    name: str
    description: str | None
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class ServiceAccountList(ApiModel):
    items: list[ServiceAccountView]
    marker: str | None = None


class CreateServiceAccountRequest(RequestModel):
    name: Name
    description: Description | None = None


class UpdateServiceAccountRequest(RequestModel):
    name: Annotated[Name | None, NotNull] = None
    description: Description | None = Field(default=None, description="Send null to clear it.")


ApiKeyStatus = Literal["active", "expired", "revoked"]


class ApiKeyView(ApiModel):
    id: str
    organization_id: str
    service_account_id: str
    name: str
    prefix: str = Field(description="The first characters of the secret, to recognise a key; not usable alone.")
    expires_at: Timestamp | None
    revoked_at: Timestamp | None
    last_used_at: Timestamp | None
    status: ApiKeyStatus
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class ApiKeyList(ApiModel):
    items: list[ApiKeyView]
    marker: str | None = None


class CreatedApiKey(ApiKeyView):
    secret: str = Field(description="The bearer token. Shown only in this response; it cannot be retrieved later.")


class CreateApiKeyRequest(RequestModel):
    name: Name
    expires_at: datetime | None = Field(default=None, description="When the key stops working (future; UTC when "
                                                                   "no offset is given).")
    expires_in_seconds: int | None = Field(default=None, ge=1, le=MAX_KEY_LIFETIME_SECONDS,
                                           description="Alternative to expiresAt: lifetime from now.")

    @model_validator(mode="after")
    def _one_expiry(self) -> CreateApiKeyRequest:
        if self.expires_at is not None and self.expires_in_seconds is not None:
            raise ValueError("give expiresAt or expiresInSeconds, not both")
        return self
