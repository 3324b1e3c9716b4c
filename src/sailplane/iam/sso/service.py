"""An organization's OIDC identity providers: create, list, describe, update, delete, rotate the client
secret, and test the provider's discovery document and keys.

Email domains: a provider may claim email domains (`emailDomains`) so that a user can start SSO from
their address (startSsoLogin with `loginHint`). A claim takes effect only after proof of control: the
admin publishes the TXT record the claim names (`domainVerifications`) and calls
verifyIdentityProviderDomain, which looks it up (sso.dns_proof). Pending claims route nothing and may
coexist; a domain verified by one provider cannot be claimed or verified by another, of any
organization (409 `domain_taken`); a unique column enforces that even under concurrent verifications.
Matching is exact and case-insensitive: list subdomains explicitly.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth.principal import Principal
from sailplane.iam.sso import catalog, dns_proof
from sailplane.iam.sso.models import IdentityProvider, IdentityProviderDomain
from sailplane.iam.sso.schemas import (
    AutoSetupRequest,
    CreateIdentityProviderRequest,
    TestCheck,
    UpdateIdentityProviderRequest,
)
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import commit_before_raising, release
from sailplane.kit.errors import ApiError, conflict, invalid, not_found
from sailplane.kit.pagination import MarkerPage, apply_marker, split_marker
from sailplane.notifications.security import (
    IDENTITY_PROVIDER_CREATED,
    IDENTITY_PROVIDER_DELETED,
    IDENTITY_PROVIDER_UPDATED,
    record_security_event,
)
from sailplane.tenancy.audit import service as audit

HTTP_TIMEOUT = 10.0
MAX_DOCUMENT_BYTES = 1_000_000


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_url}/api/v1/auth/sso/callback"


def _encryptor(settings: Settings) -> Encryptor:
    return Encryptor(settings.secret_key)


def _get(db: Session, principal: Principal, idp_id: str) -> IdentityProvider:
    idp = db.get(IdentityProvider, idp_id)
    if idp is None or idp.organization_id != principal.organization_id:
        raise not_found("identity provider")
    return idp


def _check_type(provider_type: str) -> None:
    kind = catalog.BY_ID.get(provider_type)
    if kind is None or not kind.enabled:
        raise invalid("providerType", f"unknown provider type {provider_type}; see listIdentityProviderTypes")


def _name_taken(db: Session, org_id: str, name: str, except_id: str | None = None) -> bool:
    stmt = select(IdentityProvider.id).where(IdentityProvider.organization_id == org_id, IdentityProvider.name == name)
    if except_id:
        stmt = stmt.where(IdentityProvider.id != except_id)
    return db.scalar(stmt) is not None


def _duplicate() -> Exception:
    return conflict("name_taken", "An identity provider with this name already exists in the organization.")


def _domain_taken(domain: str) -> ApiError:
    return ApiError(409, "domain_taken", f"The email domain {domain} is already verified by another identity "
                    "provider.", field_errors={"emailDomains": f"{domain} is already verified elsewhere"})


def _check_domains_free(db: Session, domains: list[str], except_idp: str | None = None) -> None:
    """409 for the first domain another provider (of any organization) has verified; pending claims of others
    do not count, so claiming first blocks nobody."""
    if not domains:
        return
    stmt = select(IdentityProviderDomain.domain).where(IdentityProviderDomain.verified_domain.in_(domains))
    if except_idp:
        stmt = stmt.where(IdentityProviderDomain.identity_provider_id != except_idp)
    taken = set(db.scalars(stmt))
    for domain in domains:
        if domain in taken:
            raise _domain_taken(domain)


def _claim_domains(idp: IdentityProvider, domains: list[str]) -> None:
    """Make the provider's claims exactly `domains`: kept ones keep their token and verification, new ones
    start pending with a fresh token, dropped ones (and their verification) go."""
    wanted = set(domains)
    for claim in [c for c in idp.domain_claims if c.domain not in wanted]:
        idp.domain_claims.remove(claim)
    held = {c.domain for c in idp.domain_claims}
    for domain in domains:
        if domain not in held:
            idp.domain_claims.append(IdentityProviderDomain(domain=domain, challenge_token=secrets.token_urlsafe(24)))
    idp.email_domains = list(domains)


def _flush_or_conflict(db: Session, org_id: str, name: str, domains: list[str], except_idp: str | None) -> None:
    """Flush; a unique violation means someone took the name meanwhile: answer which."""
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        _check_domains_free(db, domains, except_idp)
        if _name_taken(db, org_id, name, except_idp):
            raise _duplicate() from None
        raise conflict("conflict", "The identity provider changed meanwhile; try again.") from None


def provider_for_email(db: Session, email: str) -> IdentityProvider | None:
    """The active provider that verified the address's domain, if any (sign-in routing). Pending claims
    route nothing: until the TXT record is checked, anyone could have made them."""
    domain = email.strip().lower().rpartition("@")[2]
    idp = db.scalar(select(IdentityProvider).join(
        IdentityProviderDomain, IdentityProviderDomain.identity_provider_id == IdentityProvider.id,
    ).where(IdentityProviderDomain.verified_domain == domain))
    return idp if idp is not None and idp.status == "active" else None


def list_providers(db: Session, principal: Principal, page: MarkerPage) -> tuple[list[IdentityProvider], str | None]:
    stmt = select(IdentityProvider).where(IdentityProvider.organization_id == principal.organization_id)
    return split_marker(list(db.scalars(apply_marker(stmt, IdentityProvider.id, page))), page)


def describe(db: Session, principal: Principal, idp_id: str) -> IdentityProvider:
    return _get(db, principal, idp_id)


def create(db: Session, settings: Settings, principal: Principal, body: CreateIdentityProviderRequest,
           ctx: RequestContext) -> IdentityProvider:
    _check_type(body.provider_type)
    if _name_taken(db, principal.organization_id, body.name):
        raise _duplicate()
    _check_domains_free(db, body.email_domains)
    idp = IdentityProvider(
        organization_id=principal.organization_id, name=body.name, provider_type=body.provider_type,
        issuer=body.issuer, client_id=body.client_id,
        client_secret_encrypted=_encryptor(settings).encrypt(body.client_secret) if body.client_secret else None,
        scopes=body.scopes, email_domains=[], created_by=principal.actor_id,
        updated_by=principal.actor_id,
    )
    db.add(idp)
    _claim_domains(idp, body.email_domains)
    _flush_or_conflict(db, principal.organization_id, body.name, body.email_domains, None)
    audit.record(db, ctx, principal, "identity_provider.create", "identity_provider", idp.id,
                 details={"name": idp.name, "issuer": idp.issuer, "providerType": idp.provider_type,
                          "emailDomains": idp.email_domains})
    _security_event(db, principal, IDENTITY_PROVIDER_CREATED, idp)
    db.flush()
    return idp


def _security_event(db: Session, principal: Principal, event_type: str, idp: IdentityProvider,
                    **extra: Any) -> None:
    """The provider as admins know it (never its client secret), in the change's transaction."""
    record_security_event(db, principal.organization_id, event_type, actor_id=principal.actor_id, data={
        "identityProvider": {"id": idp.id, "name": idp.name, "issuer": idp.issuer, "providerType": idp.provider_type,
                             "emailDomains": list(idp.email_domains or [])}, **extra})


def update(db: Session, principal: Principal, idp_id: str, body: UpdateIdentityProviderRequest,
           ctx: RequestContext) -> IdentityProvider:
    idp = _get(db, principal, idp_id)
    changes = body.model_dump(exclude_none=True)
    if body.name is not None and _name_taken(db, principal.organization_id, body.name, idp.id):
        raise _duplicate()
    domains = changes.pop("email_domains", None)
    if domains is not None:
        _check_domains_free(db, domains, idp.id)
        _claim_domains(idp, domains)
    for key, value in changes.items():
        setattr(idp, key, value)
    idp.updated_by = principal.actor_id
    _flush_or_conflict(db, principal.organization_id, idp.name, list(idp.email_domains or []), idp.id)
    fields = sorted([*changes, *(["email_domains"] if domains is not None else [])])
    audit.record(db, ctx, principal, "identity_provider.update", "identity_provider", idp.id,
                 details={"fields": fields, **({"emailDomains": domains} if domains is not None else {})})
    if fields:
        _security_event(db, principal, IDENTITY_PROVIDER_UPDATED, idp,
                        changedFields=sorted(body.model_dump(by_alias=True, exclude_none=True)))
    db.flush()
    return idp


def delete(db: Session, principal: Principal, idp_id: str, ctx: RequestContext) -> None:
    idp = _get(db, principal, idp_id)
    _security_event(db, principal, IDENTITY_PROVIDER_DELETED, idp)  # while its domains can still be read
    db.delete(idp)
    audit.record(db, ctx, principal, "identity_provider.delete", "identity_provider", idp.id,
                 details={"name": idp.name})
    db.flush()


def rotate_secret(db: Session, settings: Settings, principal: Principal, idp_id: str, secret: str | None,
                  ctx: RequestContext) -> IdentityProvider:
    idp = _get(db, principal, idp_id)
    idp.client_secret_encrypted = _encryptor(settings).encrypt(secret) if secret else None
    idp.secret_rotated_at = utcnow()
    idp.updated_by = principal.actor_id
    audit.record(db, ctx, principal, "identity_provider.rotate_secret", "identity_provider", idp.id,
                 details={"hasClientSecret": secret is not None})
    _security_event(db, principal, IDENTITY_PROVIDER_UPDATED, idp, changedFields=["clientSecret"])
    db.flush()
    return idp


def fetch_json(client: httpx.Client, url: str) -> tuple[Any, str | None]:
    try:
        response = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        return None, f"could not reach {url}: {type(exc).__name__}"
    if response.status_code != 200:
        return None, f"{url} answered HTTP {response.status_code}"
    if len(response.content) > MAX_DOCUMENT_BYTES:
        return None, f"{url} answered a document larger than {MAX_DOCUMENT_BYTES} bytes"
    try:
        return response.json(), None
    except ValueError:
        return None, f"{url} did not answer JSON"


def discover(issuer: str) -> tuple[list[TestCheck], dict[str, Any]]:
    """Fetch and validate the issuer's OpenID configuration and its JWKS; each step reported."""
    checks: list[TestCheck] = []
    found: dict[str, Any] = {"discovery_url": issuer.rstrip("/") + "/.well-known/openid-configuration"}
    with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
        config, error = fetch_json(client, found["discovery_url"])
        if error is not None or not isinstance(config, dict):
            checks.append(TestCheck(name="discovery", ok=False, message=error or "the document is not a JSON object"))
            return checks, found
        checks.append(TestCheck(name="discovery", ok=True, message="fetched the OpenID configuration"))
        same_issuer = str(config.get("issuer", "")).rstrip("/") == issuer.rstrip("/")
        checks.append(TestCheck(name="issuer", ok=same_issuer, message="the issuer matches" if same_issuer else
                                f"the document names issuer {config.get('issuer')!r}, not {issuer!r}"))
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not config.get(k)]
        checks.append(TestCheck(name="endpoints", ok=not missing,
                                message="authorization, token and JWKS endpoints present" if not missing
                                else f"missing: {', '.join(missing)}"))
        codes = config.get("response_types_supported") or []
        checks.append(TestCheck(name="authorization_code", ok="code" in codes,
                                message="supports the authorization code flow" if "code" in codes
                                else "response_types_supported does not include code"))
        found["issuer"] = config.get("issuer") if isinstance(config.get("issuer"), str) else None
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"):
            found[key] = config.get(key) if isinstance(config.get(key), str) else None
        if found["jwks_uri"]:
            jwks, error = fetch_json(client, found["jwks_uri"])
            keys = jwks.get("keys") if isinstance(jwks, dict) else None
            usable = [k for k in keys if isinstance(k, dict) and k.get("kty")] if isinstance(keys, list) else []
            found["key_count"] = len(usable)
            checks.append(TestCheck(name="jwks", ok=bool(usable),
                                    message=f"{len(usable)} signing key(s)" if usable
                                    else error or "the JWKS has no keys"))
    return checks, found


def test(db: Session, principal: Principal, idp_id: str, ctx: RequestContext) -> tuple[list[TestCheck], dict[str, Any]]:
    idp = _get(db, principal, idp_id)
    release(db)  # no pooled connection held while the provider answers
    checks, found = discover(idp.issuer)
    ok = bool(checks) and all(c.ok for c in checks)
    idp.last_tested_at = utcnow()
    idp.last_test_ok = ok
    audit.record(db, ctx, principal, "identity_provider.test", "identity_provider", idp.id,
                 outcome="success" if ok else "failure",
                 details={"failed": [c.name for c in checks if not c.ok]})
    db.flush()
    found.pop("issuer", None)
    found["tested_at"] = idp.last_tested_at
    found["ok"] = ok
    return checks, found


def _setup_failed(db: Session, principal: Principal, ctx: RequestContext, body: AutoSetupRequest, code: str,
                  message: str, status: int = 422) -> ApiError:
    audit.record(db, ctx, principal, "identity_provider.auto_setup", "identity_provider", None, outcome="failure",
                 details={"reason": code, "providerUrl": body.provider_url})
    commit_before_raising(db)
    return ApiError(status, code, message)


def auto_setup(db: Session, settings: Settings, principal: Principal, body: AutoSetupRequest,
               ctx: RequestContext) -> IdentityProvider:
    """OIDC discovery, then Dynamic Client Registration (RFC 7591) with our redirect URI."""
    _check_type(body.provider_type)
    if _name_taken(db, principal.organization_id, body.name):
        raise _duplicate()
    _check_domains_free(db, body.email_domains)
    release(db)  # no pooled connection held while the provider answers (discovery, then registration)
    checks, found = discover(body.provider_url)
    failed = [c for c in checks if not c.ok]
    if not checks or failed:
        reasons = "; ".join(c.message for c in failed) or "discovery failed"
        raise _setup_failed(db, principal, ctx, body, "discovery_failed",
                            f"{body.provider_url} is not a usable OpenID provider: {reasons}")
    registration = found.get("registration_endpoint")
    if not registration:
        raise _setup_failed(db, principal, ctx, body, "dcr_not_supported",
                            "The provider has no registration endpoint (no Dynamic Client Registration); "
                            "set it up manually with createIdentityProvider.")
    request = {
        "client_name": body.name, "redirect_uris": [redirect_uri(settings)], "application_type": "web",
        "grant_types": ["authorization_code"], "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic", "scope": " ".join(body.scopes),
    }
    headers = {"Authorization": f"Bearer {body.initial_access_token}"} if body.initial_access_token else {}
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
            response = client.post(registration, json=request, headers=headers)
    except httpx.HTTPError as exc:
        raise _setup_failed(db, principal, ctx, body, "dcr_failed",
                            f"Could not reach the registration endpoint: {type(exc).__name__}", 502) from None
    try:
        answer = response.json() if response.content else {}
    except ValueError:
        answer = {}
    if response.status_code not in (200, 201) or not isinstance(answer, dict) or not answer.get("client_id"):
        detail = answer.get("error_description") or answer.get("error") if isinstance(answer, dict) else None
        raise _setup_failed(db, principal, ctx, body, "dcr_refused",
                            f"The provider refused the registration (HTTP {response.status_code}"
                            f"{': ' + str(detail)[:300] if detail else ''}).")
    secret = answer.get("client_secret")
    idp = IdentityProvider(
        organization_id=principal.organization_id, name=body.name, provider_type=body.provider_type,
        issuer=str(found.get("issuer") or body.provider_url), client_id=str(answer["client_id"]),
        client_secret_encrypted=_encryptor(settings).encrypt(str(secret)) if secret else None,
        scopes=body.scopes, email_domains=[], auto_configured=True,
        created_by=principal.actor_id, updated_by=principal.actor_id,
    )
    db.add(idp)
    _claim_domains(idp, body.email_domains)
    _flush_or_conflict(db, principal.organization_id, body.name, body.email_domains, None)
    audit.record(db, ctx, principal, "identity_provider.auto_setup", "identity_provider", idp.id,
                 details={"name": idp.name, "issuer": idp.issuer})
    _security_event(db, principal, IDENTITY_PROVIDER_CREATED, idp)
    db.flush()
    return idp


def _verify_failed(db: Session, ctx: RequestContext, principal: Principal, claim: IdentityProviderDomain,
                   reason: str, error: ApiError) -> ApiError:
    """Audit the failed check (and keep what was found on the claim), commit, and hand back the error."""
    audit.record(db, ctx, principal, "identity_provider.verify_domain", "identity_provider",
                 claim.identity_provider_id, outcome="failure", details={"domain": claim.domain, "reason": reason})
    commit_before_raising(db)
    return error


def verify_domain(db: Session, settings: Settings, principal: Principal, idp_id: str, domain: str,
                  ctx: RequestContext) -> IdentityProviderDomain:
    """Look up the claim's TXT record; the claim is verified (and routes sign-in) only when it holds the
    claim's exact value. An already verified claim answers as it is, without a lookup."""
    idp = _get(db, principal, idp_id)
    domain = domain.strip().lower()
    claim = next((c for c in idp.domain_claims if c.domain == domain), None)
    if claim is None:
        raise not_found("email domain claim")
    if claim.verified_at is not None:
        return claim
    if db.scalar(select(IdentityProviderDomain.id).where(IdentityProviderDomain.verified_domain == domain)):
        raise _verify_failed(db, ctx, principal, claim, "domain_taken", _domain_taken(domain))
    name, expected = dns_proof.record_name(domain), dns_proof.record_value(claim.challenge_token)
    release(db)  # no pooled connection held during the DNS lookup
    claim.last_checked_at = utcnow()
    try:
        values = dns_proof.txt_values(settings, name)
    except dns_proof.DnsUnavailable as exc:
        claim.last_check_error = f"DNS gave no answer for {name} ({exc}); try again"
        raise _verify_failed(db, ctx, principal, claim, "dns_unavailable", ApiError(
            503, "dns_unavailable", f"The DNS lookup of {name} failed ({exc}); try again shortly.",
            retryable=True, retry_after=30)) from None
    if expected not in values:
        claim.last_check_error = (f"no TXT record at {name}" if not values else
                                  f"the TXT records at {name} do not include {expected}")[:500]
        raise _verify_failed(db, ctx, principal, claim, "record_mismatch" if values else "record_missing", ApiError(
            422, "domain_not_verified", f"{domain} is not verified: {claim.last_check_error}. Publish the TXT "
            f"record {name} with the value {expected} and try again (DNS changes may take a while to spread).",
            field_errors={"domain": claim.last_check_error}))
    claim.verified_at = claim.last_checked_at
    claim.verified_domain = domain
    claim.last_check_error = None
    audit.record(db, ctx, principal, "identity_provider.verify_domain", "identity_provider", idp.id,
                 details={"domain": domain})
    try:
        db.flush()
    except IntegrityError:  # another provider's verification of the same domain won the race
        db.rollback()
        raise _domain_taken(domain) from None
    return claim
