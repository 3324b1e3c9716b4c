"""HTTP routes for identity provider types and an organization's identity providers (/auth/idps)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import RedirectResponse
from starlette.convertors import StringConvertor, register_url_convertor

from sailplane.config import Settings
from sailplane.iam.auth.deps import AppSettings, Db, current_identity, require
from sailplane.iam.auth.principal import Identity, Principal
from sailplane.iam.auth.schemas import LoginResponse
from sailplane.iam.auth.signin import login_outcome
from sailplane.iam.mfa.schemas import MfaChallengeResponse
from sailplane.iam.sso import catalog, dns_proof, login, service
from sailplane.iam.sso.models import IdentityProvider, IdentityProviderDomain
from sailplane.iam.sso.schemas import (
    DOMAIN_MAX_LENGTH,
    DOMAIN_PATH_PATTERN,
    AutoSetupRequest,
    CreateIdentityProviderRequest,
    DcrCapability,
    DomainVerification,
    ExchangeSsoCodeRequest,
    IdentityProviderList,
    IdentityProviderType,
    IdentityProviderTypeList,
    IdentityProviderView,
    RotateSecretRequest,
    TestResult,
    TypeCapabilities,
    TypeMetadata,
    UpdateIdentityProviderRequest,
)
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.errors import ApiError
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message

router = APIRouter(route_class=JsonRoute, prefix="/auth", tags=["identity-providers"])
Ctx = Annotated[RequestContext, Depends(request_context)]
ManageIdps = Annotated[Principal, Depends(require("CanManageIdentityProviders"))]
IdpId = Annotated[str, Path(pattern=ID_PATTERN, description="An identity provider ID.")]


class _NotAutoSetup(StringConvertor):
    """`/idps/auto-setup` is a resource of its own (POST only): the `/idps/{idp}` routes never take that segment,
    so another method on it answers 405 naming POST, not as an identity provider called "auto-setup"."""

    regex = "(?!auto-setup$)[^/]+"


register_url_convertor("idp", _NotAutoSetup())


def domain_view(claim: IdentityProviderDomain) -> DomainVerification:
    return DomainVerification(
        domain=claim.domain, status="verified" if claim.verified_at is not None else "pending",
        record_name=dns_proof.record_name(claim.domain), record_value=dns_proof.record_value(claim.challenge_token),
        verified_at=claim.verified_at, last_checked_at=claim.last_checked_at, last_check_error=claim.last_check_error,
    )


def idp_view(settings: Settings, idp: IdentityProvider) -> IdentityProviderView:
    order = {d: i for i, d in enumerate(idp.email_domains or [])}
    claims = sorted(idp.domain_claims, key=lambda c: order.get(c.domain, len(order)))
    return IdentityProviderView(
        id=idp.id, organization_id=idp.organization_id, name=idp.name, provider_type=idp.provider_type,
        issuer=idp.issuer, client_id=idp.client_id, has_client_secret=idp.client_secret_encrypted is not None,
        scopes=list(idp.scopes or []), email_domains=list(idp.email_domains or []),
        domain_verifications=[domain_view(c) for c in claims], status=idp.status,
        auto_configured=idp.auto_configured, redirect_uri=service.redirect_uri(settings),
        secret_rotated_at=idp.secret_rotated_at, last_tested_at=idp.last_tested_at, last_test_ok=idp.last_test_ok,
        created_at=idp.created_at, created_by=idp.created_by, updated_at=idp.updated_at, updated_by=idp.updated_by,
    )


@router.get("/identity-provider-types", operation_id="listIdentityProviderTypes",
            response_model=IdentityProviderTypeList)
def list_identity_provider_types(identity: Annotated[Identity, Depends(current_identity)]) -> IdentityProviderTypeList:
    """The provider types an organization can configure (enabled and visible ones only), in display order."""
    items = [
        IdentityProviderType(
            id=t.id, name=t.name, description=t.description, provider_type="oidc",
            capabilities=TypeCapabilities(
                dcr=DcrCapability(supported=t.dcr_supported, requires_token=t.dcr_requires_token,
                                  token_type="Bearer" if t.dcr_requires_token else None),
                requires_client_secret=t.requires_client_secret),
            metadata=TypeMetadata(documentation_url=t.documentation_url, logo_url=None,
                                  setup_complexity=t.setup_complexity, vendor_type=t.vendor_type,
                                  default_issuer=t.default_issuer, issuer_template=t.issuer_template),
            enabled=t.enabled, visible=t.visible, display_order=t.display_order,
            created_at=catalog.CATALOG_DATE, updated_at=catalog.CATALOG_DATE,
        )
        for t in catalog.listed()
    ]
    return IdentityProviderTypeList(items=items)


@router.get("/idps", operation_id="listIdentityProviders", response_model=IdentityProviderList)
def list_identity_providers(db: Db, settings: AppSettings, principal: ManageIdps,
                            page: Annotated[MarkerPage, Depends(marker_params)]) -> IdentityProviderList:
    """The organization's identity providers (type, status, issuer); never a client secret."""
    rows, marker = service.list_providers(db, principal, page)
    return IdentityProviderList(items=[idp_view(settings, r) for r in rows], marker=marker)


@router.post("/idps", operation_id="createIdentityProvider", status_code=201, response_model=IdentityProviderView)
def create_identity_provider(body: CreateIdentityProviderRequest, db: Db, settings: AppSettings,
                             principal: ManageIdps, ctx: Ctx) -> IdentityProviderView:
    """Manual setup: issuer, client ID, optional client secret (PKCE without), scopes including
    `openid email profile`. The secret is encrypted at rest and never returned. Each of `emailDomains`
    starts pending: `domainVerifications` names the TXT record to publish before verifying it. 409
    `domain_taken` for a domain another provider has verified, or a name already used here."""
    return idp_view(settings, service.create(db, settings, principal, body, ctx))


@router.post("/idps/auto-setup", operation_id="autoSetupIdentityProvider", status_code=201,
             response_model=IdentityProviderView)
def auto_setup_identity_provider(body: AutoSetupRequest, db: Db, settings: AppSettings, principal: ManageIdps,
                                 ctx: Ctx) -> IdentityProviderView:
    """Discover the provider from its URL and register our client there (RFC 7591 Dynamic Client
    Registration). A provider without a registration endpoint, or one that refuses, answers 422 and
    nothing is created; set it up manually then."""
    return idp_view(settings, service.auto_setup(db, settings, principal, body, ctx))


@router.get("/idps/{idp:idp}", operation_id="describeIdentityProvider", response_model=IdentityProviderView)
def describe_identity_provider(idp: IdpId, db: Db, settings: AppSettings,
                               principal: ManageIdps) -> IdentityProviderView:
    """One identity provider's settings; `hasClientSecret` says whether a secret is set, never its value."""
    return idp_view(settings, service.describe(db, principal, idp))


@router.patch("/idps/{idp:idp}", operation_id="updateIdentityProvider", response_model=IdentityProviderView)
def update_identity_provider(idp: IdpId, body: UpdateIdentityProviderRequest, db: Db, settings: AppSettings,
                             principal: ManageIdps, ctx: Ctx) -> IdentityProviderView:
    """Change name, issuer, client ID, scopes, email domains or status; the secret changes with rotate-secret.
    Kept domains keep their verification; added ones start pending; removed ones lose it. 409
    `domain_taken` for a domain another provider has verified."""
    return idp_view(settings, service.update(db, principal, idp, body, ctx))


@router.delete("/idps/{idp:idp}", operation_id="deleteIdentityProvider", response_model=Message)
def delete_identity_provider(idp: IdpId, db: Db, principal: ManageIdps, ctx: Ctx) -> dict[str, str]:
    """Remove an identity provider; its users can no longer sign in through it."""
    service.delete(db, principal, idp, ctx)
    return DONE


@router.post("/idps/{idp}/rotate-secret", operation_id="rotateIdentityProviderSecret",
             response_model=IdentityProviderView)
def rotate_identity_provider_secret(idp: IdpId, body: RotateSecretRequest, db: Db, settings: AppSettings,
                                    principal: ManageIdps, ctx: Ctx) -> IdentityProviderView:
    """Replace the client secret (null removes it, for PKCE-only clients); the old one is gone at once."""
    return idp_view(settings, service.rotate_secret(db, settings, principal, idp, body.client_secret, ctx))


@router.post("/idps/{idp}/test", operation_id="testIdentityProvider", response_model=TestResult)
def test_identity_provider(idp: IdpId, db: Db, principal: ManageIdps, ctx: Ctx) -> TestResult:
    """Fetch the issuer's OpenID configuration and JWKS and report each check; `ok` when all pass."""
    checks, found = service.test(db, principal, idp, ctx)
    return TestResult(checks=checks, **found)


@router.post("/idps/{idp}/domains/{domain}/verify", operation_id="verifyIdentityProviderDomain",
             response_model=DomainVerification)
def verify_identity_provider_domain(
    idp: IdpId, domain: Annotated[str, Path(pattern=DOMAIN_PATH_PATTERN, max_length=DOMAIN_MAX_LENGTH,
                                            description="One of the provider's claimed email domains.")],
    db: Db, settings: AppSettings, principal: ManageIdps, ctx: Ctx,
) -> DomainVerification:
    """Prove control of a claimed email domain: the server looks up the TXT record
    `_sailplane-challenge.<domain>` (as listed in `domainVerifications`) and, when one of its values is the
    claim's `recordValue`, marks the domain verified; only then does it route sign-in to this provider.

    200: verified (now, or already). 404: no such provider here, or it does not claim the domain. 409
    `domain_taken`: another provider verified it first. 422 `domain_not_verified`: the record is missing or
    holds another value (`lastCheckError` says which). 503 `dns_unavailable`: DNS gave no answer; retry."""
    return domain_view(service.verify_domain(db, settings, principal, idp, domain, ctx))


@router.get("/sso/{idp}/authorize", operation_id="startSsoLogin", status_code=302, response_class=RedirectResponse,
            responses={302: {"description": "Redirect to the identity provider's authorization endpoint."},
                       303: {"description": "The web console's sign-in could not start: to its page with "
                                            "`error` and `error_description` in the fragment."}})
def start_sso_login(
    idp: Annotated[str, Path(pattern=f"^(?:{ID_PATTERN.strip('^$')}|{login.DISCOVER})$",
                             description="An identity provider ID, or `discover` to find the provider from "
                                         "`loginHint`'s email domain.")],
    db: Db, settings: AppSettings, ctx: Ctx,
    login_hint: Annotated[str | None, Query(
        alias="loginHint", max_length=320,
        description="The user's email address (or username at the provider): passed to the provider as "
                    "`login_hint`; with `discover` it must be an email address and picks the provider that "
                    "claimed its domain.")] = None,
    redirect_uri: Annotated[str | None, Query(
        alias="redirectUri", max_length=100,
        description="A native client's loopback redirect (RFC 8252), exactly `http://127.0.0.1:<port>/callback`, "
                    "or the web console's page `/signin/sso`: the sign-in then ends there with a one-time `code` "
                    "(and `state`) for exchangeSsoCode, in the query (loopback) or the fragment (console), "
                    "instead of answering the token to the browser. Needs `codeChallenge` and `state`. The "
                    "console also hears a refusal to start (an unknown domain) at its page, as `error`.")] = None,
    code_challenge: Annotated[str | None, Query(
        alias="codeChallenge", max_length=64,
        description="With `redirectUri`: the client's PKCE S256 challenge; exchangeSsoCode needs its "
                    "verifier.")] = None,
    state: Annotated[str | None, Query(
        max_length=200, description="With `redirectUri`: the client's state, given back to it with the "
                                    "code.")] = None,
) -> RedirectResponse:
    """Begin SSO: redirect to the provider (authorization code flow with PKCE, state and nonce).

    A user who only knows their email address starts at `/auth/sso/discover/authorize?loginHint=<email>`:
    the provider that verified the address's domain (exact, case-insensitive; one provider per verified
    domain across all organizations) is chosen, the way Okta's IdP discovery routes by domain. An unknown
    or unverified domain, or a disabled provider, answers the same 404 as an unknown provider ID, so the
    only thing routing reveals is what starting the flow reveals anyway."""
    client = login.native_client(redirect_uri, code_challenge, state)
    try:
        return RedirectResponse(login.start(db, settings, idp, login_hint, ctx, client), status_code=302)
    except ApiError as exc:
        if client is None or not client.is_console:
            raise
        # The person is in the browser: back to the console's page, which says why in words.
        return RedirectResponse(login.client_redirect(client.redirect_uri, {
            "error": exc.code, "error_description": exc.message, "state": client.state}), status_code=303)


@router.get("/sso/callback", operation_id="finishSsoLogin", response_model=LoginResponse | MfaChallengeResponse,
            responses={303: {"description": "A native client's sign-in (started with `redirectUri`): to its "
                                            "loopback redirect with a one-time `code` for exchangeSsoCode."}})
def finish_sso_login(
    db: Db, settings: AppSettings, ctx: Ctx,
    state: Annotated[str | None, Query(max_length=200)] = None,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> LoginResponse | MfaChallengeResponse:
    """The provider's redirect target: checks state, exchanges the code, verifies the ID token (signature,
    issuer, audience, expiry, nonce), finds, links or creates the member, then answers our token (or an
    MFA challenge). The token acts only in the provider's organization. 403 `sso_user_refused` when the
    asserted account exists but is not an active member of that organization (linking rules: README)."""
    outcome = login.finish(db, settings, state, code, error, ctx)
    if isinstance(outcome, str):
        return RedirectResponse(outcome, status_code=303)  # type: ignore[return-value]
    return login_outcome(outcome)


@router.post("/sso/token", operation_id="exchangeSsoCode", response_model=LoginResponse | MfaChallengeResponse)
def exchange_sso_code(body: ExchangeSsoCodeRequest, db: Db, settings: AppSettings,
                      ctx: Ctx) -> LoginResponse | MfaChallengeResponse:
    """A native client's last step of SSO (`sailplane login --sso`, or the web console): the one-time code its
    redirect received and the PKCE verifier of the `codeChallenge` it started with answer the token (or an MFA
    challenge), acting only in the provider's organization. 401 `invalid_sso_code` for an unknown, used or expired
    code or another verifier (the code is spent either way)."""
    return login_outcome(login.exchange(db, settings, body.code, body.code_verifier, ctx))
