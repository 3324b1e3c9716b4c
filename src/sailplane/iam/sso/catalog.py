"""The fixed catalog of identity provider types (all OIDC); only enabled and visible ones are listed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

CATALOG_DATE = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ProviderType:
    id: str
    name: str
    description: str
    vendor_type: str
    dcr_supported: bool
    dcr_requires_token: bool
    requires_client_secret: bool
    documentation_url: str
    setup_complexity: str
    display_order: int
    default_issuer: str | None = None
    issuer_template: str | None = None
    enabled: bool = True
    visible: bool = True
    scopes: tuple[str, ...] = field(default=("openid", "email", "profile"))


TYPES: tuple[ProviderType, ...] = (
    ProviderType("okta", "Okta", "Okta Workforce Identity (OIDC app integration).", "okta", False, True, True,
                 "https://developer.okta.com/docs/guides/implement-grant-type/authcode/main/", "medium", 1,
                 issuer_template="https://{domain}.okta.com"),
    ProviderType("entra-id", "Microsoft Entra ID", "Microsoft Entra ID (Azure AD) app registration.", "microsoft",
                 False, False, True,
                 "https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc", "medium", 2,
                 issuer_template="https://login.microsoftonline.com/{tenantId}/v2.0"),
    ProviderType("google-workspace", "Google Workspace", "Google Workspace accounts through Google's OIDC.",
                 "google", False, False, True, "https://developers.google.com/identity/openid-connect/openid-connect",
                 "low", 3, default_issuer="https://accounts.google.com"),
    ProviderType("auth0", "Auth0", "An Auth0 tenant (OIDC application).", "auth0", True, False, True,
                 "https://auth0.com/docs/get-started/applications/dynamic-client-registration", "low", 4,
                 issuer_template="https://{tenant}.auth0.com/"),
    ProviderType("keycloak", "Keycloak", "A Keycloak realm (OIDC client).", "keycloak", True, True, False,
                 "https://www.keycloak.org/docs/latest/securing_apps/#_client_registration", "medium", 5,
                 issuer_template="https://{host}/realms/{realm}"),
    ProviderType("oidc", "Generic OIDC", "Any OpenID Connect provider with discovery.", "generic", True, False, False,
                 "https://openid.net/specs/openid-connect-discovery-1_0.html", "high", 6),
)

BY_ID = {t.id: t for t in TYPES}


def listed() -> list[ProviderType]:
    return sorted((t for t in TYPES if t.enabled and t.visible), key=lambda t: t.display_order)
