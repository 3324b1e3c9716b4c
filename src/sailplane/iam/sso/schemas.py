"""Wire shapes for identity provider types and identity providers."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from sailplane.kit.schemas import ApiModel, Name, RequestModel, Timestamp

REQUIRED_SCOPES = ("openid", "email", "profile")
# 232 characters at most, so that the ownership record's name (`_sailplane-challenge.` + domain) fits DNS.
DOMAIN_MAX_LENGTH = 232
DOMAIN_PATH_PATTERN = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
_DOMAIN = re.compile(rf"^(?=.{{1,{DOMAIN_MAX_LENGTH}}}$)([a-z0-9]([a-z0-9-]{{0,61}}[a-z0-9])?\.)+[a-z]{{2,63}}$")
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
ClientId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
ClientSecret = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Scope = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^\S+$")]


def check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be a full URL starting with http:// or https://")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return value.rstrip("/") if parts.path in ("", "/") else value


def check_scopes(value: list[str]) -> list[str]:
    missing = [s for s in REQUIRED_SCOPES if s not in value]
    if missing:
        raise ValueError(f"must include {' '.join(REQUIRED_SCOPES)} (missing: {' '.join(missing)})")
    return list(dict.fromkeys(value))


def check_domains(value: list[str]) -> list[str]:
    cleaned = [d.strip().lower() for d in value]
    bad = [d for d in cleaned if not _DOMAIN.match(d)]
    if bad:
        raise ValueError(f"not a domain name: {bad[0]}")
    return list(dict.fromkeys(cleaned))


IssuerUrl = Annotated[Url, AfterValidator(check_url)]
Scopes = Annotated[list[Scope], Field(max_length=50), AfterValidator(check_scopes)]
Domains = Annotated[list[str], Field(max_length=100), AfterValidator(check_domains)]


class DcrCapability(ApiModel):
    supported: bool
    requires_token: bool
    token_type: str | None


class TypeCapabilities(ApiModel):
    dcr: DcrCapability
    requires_client_secret: bool


class TypeMetadata(ApiModel):
    documentation_url: str
    logo_url: str | None
    setup_complexity: str
    vendor_type: str
    default_issuer: str | None
    issuer_template: str | None


class IdentityProviderType(ApiModel):
    id: str
    name: str
    description: str
    provider_type: str
    capabilities: TypeCapabilities
    metadata: TypeMetadata
    enabled: bool
    visible: bool
    display_order: int
    created_at: Timestamp
    updated_at: Timestamp


class IdentityProviderTypeList(ApiModel):
    items: list[IdentityProviderType]


class CreateIdentityProviderRequest(RequestModel):
    name: Name
    provider_type: str = Field(default="oidc", description="An ID from listIdentityProviderTypes.")
    issuer: IssuerUrl
    client_id: ClientId
    client_secret: ClientSecret | None = Field(default=None, description="Optional: without it PKCE is used.")
    scopes: Scopes = Field(default_factory=lambda: list(REQUIRED_SCOPES))
    email_domains: Domains = Field(default_factory=list,
                                   description="Email domains whose users sign in through this provider, once "
                                               "each is verified (DNS TXT record; see domainVerifications).")


class AutoSetupRequest(RequestModel):
    name: Name
    provider_url: Url = Field(description="The issuer, fully qualified (http:// or https://).")
    provider_type: str = Field(default="oidc", description="An ID from listIdentityProviderTypes.")
    scopes: Scopes = Field(default_factory=lambda: list(REQUIRED_SCOPES))
    email_domains: Domains = Field(default_factory=list)
    initial_access_token: Annotated[str, StringConstraints(min_length=1, max_length=4000)] | None = Field(
        default=None, description="For providers whose registration endpoint needs a bearer token.")

    @field_validator("provider_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)


class UpdateIdentityProviderRequest(RequestModel):
    name: Name | None = None
    issuer: IssuerUrl | None = None
    client_id: ClientId | None = None
    scopes: Scopes | None = None
    email_domains: Domains | None = None
    status: Literal["active", "disabled"] | None = None


class RotateSecretRequest(RequestModel):
    client_secret: ClientSecret | None = Field(description="The new secret; null removes it (PKCE only).")


class DomainVerification(ApiModel):
    """A claimed email domain and the DNS record that proves control of it. It routes sign-in (and keeps
    other organizations from claiming it) only once `status` is verified."""

    domain: str
    status: Literal["pending", "verified"]
    record_type: Literal["TXT"] = "TXT"
    record_name: str = Field(description="Where to publish the TXT record, e.g. _sailplane-challenge.example.com.")
    record_value: str = Field(description="The TXT record's exact value.")
    verified_at: Timestamp | None
    last_checked_at: Timestamp | None
    last_check_error: str | None = Field(description="Why the last check did not verify the domain.")


class IdentityProviderView(ApiModel):
    id: str
    organization_id: str
    name: str
    provider_type: str
    issuer: str
    client_id: str
    has_client_secret: bool
    scopes: list[str]
    email_domains: list[str] = Field(description="The claimed email domains, verified or not.")
    domain_verifications: list[DomainVerification] = Field(
        description="Each claimed domain's status and the TXT record to publish; verify with "
                    "verifyIdentityProviderDomain.")
    status: str
    auto_configured: bool
    redirect_uri: str
    secret_rotated_at: Timestamp | None
    last_tested_at: Timestamp | None
    last_test_ok: bool | None
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class IdentityProviderList(ApiModel):
    items: list[IdentityProviderView]
    marker: str | None = None


class TestCheck(ApiModel):
    name: str
    ok: bool
    message: str


class TestResult(ApiModel):
    ok: bool
    discovery_url: str
    checks: list[TestCheck]
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    jwks_uri: str | None = None
    registration_endpoint: str | None = None
    key_count: int = 0
    tested_at: Timestamp


class ExchangeSsoCodeRequest(RequestModel):
    code: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The one-time code the native client's loopback redirect received.")
    code_verifier: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._~-]{43,128}$")] = Field(
        description="The PKCE verifier (RFC 7636) of the codeChallenge startSsoLogin was given.")
