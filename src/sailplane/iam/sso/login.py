"""SSO sign-in: OIDC authorization code flow with PKCE, state and nonce.

start: the provider is named by its ID, or found from the user's email address (`loginHint`, routed by
the email domains providers claimed and verified); a state row (state hashed, nonce, PKCE verifier encrypted) and the
provider's authorization URL (with `login_hint` when given, so the provider can fill in the username).
finish: the state is claimed once, the code exchanged at the token endpoint, the ID token checked
(algorithm, signature from the JWKS, issuer, audience, expiry, nonce); the user is found by subject, or
linked by a verified email (primary or a verified added address), or created (accountType external),
under the linking rules of `_resolve_user`; then MFA if it applies; then our bearer token, bound to the
provider's organization. A refused ID token answers 401 `invalid_id_token` naming
the failed check (`details.check` in the audit event), and nothing is created.

A native client (the CLI) cannot be the provider's redirect target: the provider knows only our callback. It
starts with its own loopback redirect URI (RFC 8252: exactly `http://127.0.0.1:<port>/callback`, nothing
else), a PKCE challenge and a state of its own; finish then sends the browser there with a one-time handoff code
instead of answering the token to the browser, and `exchange` answers the login (or the MFA challenge) to the
holder of the client's PKCE verifier. So a code intercepted on the way (another local process, the browser's
history) is useless, and no redirect can leave the user's machine.

The web console is the other such client: it names its own page `/signin/sso` (a path, so the browser stays on
the server's origin) and the handoff code comes back in the URL's fragment, which browsers never send to a server,
so it is in no access log or Referer; the console exchanges it with the PKCE verifier it kept in its tab. Start
errors (an unknown email domain) also go back to that page, so the person sees them in the console.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth import catalog as auth_catalog
from sailplane.iam.auth.models import User
from sailplane.iam.auth.signin import Challenge, Issued
from sailplane.iam.identity.service import user_for_email
from sailplane.iam.mfa.service import begin_login
from sailplane.iam.sso.models import IdentityLink, IdentityProvider, SsoLoginState
from sailplane.iam.sso.service import HTTP_TIMEOUT, fetch_json, provider_for_email, redirect_uri
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import Encryptor, token_hash
from sailplane.kit.db import checkpoint, commit_before_raising, release
from sailplane.kit.errors import ApiError, not_found
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org.models import Member
from sailplane.tenancy.org.service import add_member

STATE_TTL = timedelta(minutes=10)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DISCOVER = "discover"  # startSsoLogin's {idp} when the provider is found from loginHint's email domain
# A native client's redirect (RFC 8252 section 7.3): loopback IP literal, any port, this exact path.
LOOPBACK_REDIRECT = re.compile(r"^http://127\.0\.0\.1:([1-9][0-9]{0,4})/callback$")
S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
CONSOLE_REDIRECT = "/signin/sso"  # the web console's page that finishes an SSO sign-in (same origin)
CLIENT_STATE = re.compile(r"^[A-Za-z0-9._~-]{16,200}$")
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _configuration(idp: IdentityProvider) -> dict[str, Any]:
    with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
        config, error = fetch_json(client, idp.issuer.rstrip("/") + "/.well-known/openid-configuration")
    if error is not None or not isinstance(config, dict) or not config.get("authorization_endpoint"):
        raise ApiError(502, "idp_unavailable", f"The identity provider's configuration is not usable: {error}",
                       retryable=True)
    return config


@dataclass(frozen=True)
class NativeClient:
    """A native client's side of the sign-in: where the browser ends, and what binds the handoff to the client."""

    redirect_uri: str
    code_challenge: str
    state: str

    @property
    def is_console(self) -> bool:
        return self.redirect_uri == CONSOLE_REDIRECT


def client_redirect(redirect_uri: str, params: dict[str, str]) -> str:
    """Where the browser ends: the loopback redirect with a query, or the console's page with a fragment (never
    sent to a server, so the one-time code stays out of access logs)."""
    return f"{redirect_uri}{'#' if redirect_uri == CONSOLE_REDIRECT else '?'}{urlencode(params)}"


def native_client(redirect_uri: str | None, code_challenge: str | None, state: str | None) -> NativeClient | None:
    """The native client startSsoLogin names (all three parameters, or none). Anything but a loopback redirect
    to `/callback`, or the console's own page, is refused: the browser must not carry a handoff code to another
    host."""
    if redirect_uri is None and code_challenge is None and state is None:
        return None
    errors: dict[str, str] = {}
    port = LOOPBACK_REDIRECT.match(redirect_uri or "")
    if redirect_uri != CONSOLE_REDIRECT and (port is None or int(port.group(1)) > 65535):
        errors["redirectUri"] = (f"must be http://127.0.0.1:<port>/callback (a native client's loopback redirect) "
                                 f"or {CONSOLE_REDIRECT} (the web console)")
    if not S256_CHALLENGE.match(code_challenge or ""):
        errors["codeChallenge"] = "must be the PKCE S256 challenge (43 base64url characters) of redirectUri's client"
    if not CLIENT_STATE.match(state or ""):
        errors["state"] = "must be 16 to 200 characters of A-Z a-z 0-9 . _ ~ -, given with redirectUri"
    if errors:
        raise ApiError(400, "validation_failed", "A native client's sign-in needs a loopback redirectUri, its "
                       "codeChallenge and a state", field_errors=errors)
    assert redirect_uri is not None and code_challenge is not None and state is not None
    return NativeClient(redirect_uri, code_challenge, state)


class Refused(Exception):
    """The sign-in answer failed one check (`check`: code_exchange, algorithm, signature, issuer, audience,
    expired, not_yet_valid, claims, nonce, userinfo)."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


def _fail(db: Session, ctx: RequestContext, idp: IdentityProvider | None, reason: str, message: str,
          status: int = 400, check: str | None = None) -> ApiError:
    details: dict[str, object] = {"reason": reason, **({"check": check} if check else {})}
    audit.record(db, ctx, None, "auth.sso.login", "identity_provider", idp.id if idp else None,
                 organization_id=idp.organization_id if idp else None, outcome="failure", details=details)
    commit_before_raising(db)
    return ApiError(status, reason, message)


def start(db: Session, settings: Settings, idp_id: str, login_hint: str | None, ctx: RequestContext,
          client: NativeClient | None = None) -> str:
    """The provider's authorization URL. With `idp_id` DISCOVER, the provider is the one that claimed the
    login hint's email domain; an unknown domain answers exactly like an unknown provider ID (404). With a
    native `client`, the sign-in ends at its loopback redirect (`finish`, `exchange`)."""
    login_hint = login_hint.strip() if login_hint else None
    if idp_id == DISCOVER:
        if not login_hint or not EMAIL_RE.match(login_hint):
            raise ApiError(400, "validation_failed", "loginHint: an email address is needed to find its identity "
                           "provider", field_errors={"loginHint": "must be an email address"})
        idp = provider_for_email(db, login_hint)
    else:
        idp = db.get(IdentityProvider, idp_id)
    if idp is None or idp.status != "active":
        raise not_found("identity provider")
    release(db)  # not across the provider's answer
    config = _configuration(idp)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    now = utcnow()
    db.add(SsoLoginState(identity_provider_id=idp.id, state_hash=token_hash(state), nonce=nonce,
                         code_verifier_encrypted=Encryptor(settings.secret_key).encrypt(verifier), created_at=now,
                         expires_at=now + STATE_TTL, client_redirect_uri=client.redirect_uri if client else None,
                         client_code_challenge=client.code_challenge if client else None,
                         client_state=client.state if client else None))
    audit.record(db, ctx, None, "auth.sso.start", "identity_provider", idp.id, organization_id=idp.organization_id,
                 details={"routedBy": "email_domain" if idp_id == DISCOVER else "id", "nativeClient": bool(client)})
    db.flush()
    params = {
        "response_type": "code", "client_id": idp.client_id, "redirect_uri": redirect_uri(settings),
        "scope": " ".join(idp.scopes), "state": state, "nonce": nonce,
        "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()), "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    query = urlencode(params)
    endpoint = str(config["authorization_endpoint"])
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def _exchange(settings: Settings, idp: IdentityProvider, config: dict[str, Any], code: str,
              verifier: str) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(settings),
            "code_verifier": verifier}
    extra: dict[str, Any] = {}
    if idp.client_secret_encrypted:  # client_secret_basic
        extra["auth"] = (idp.client_id, Encryptor(settings.secret_key).decrypt(idp.client_secret_encrypted))
    else:  # a public client: PKCE is the proof
        form["client_id"] = idp.client_id
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
            response = client.post(str(config["token_endpoint"]), data=form, **extra)
    except httpx.HTTPError as exc:
        raise Refused("code_exchange", f"the token endpoint could not be reached ({type(exc).__name__})") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("id_token"):
        raise Refused("code_exchange", f"the token endpoint refused the code (HTTP {response.status_code})")
    return body


def _verify_id_token(idp: IdentityProvider, config: dict[str, Any], id_token: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims once every check passed; Refused names the first that failed."""
    if str(config.get("issuer", "")).rstrip("/") != idp.issuer.rstrip("/"):
        raise Refused("issuer", "the provider's discovery document names another issuer")
    try:
        alg = jwt.get_unverified_header(id_token).get("alg")
    except jwt.PyJWTError:
        raise Refused("claims", "the ID token is not a well-formed JWT") from None
    if alg not in ALGORITHMS:  # never "none", never a shared-secret (HS*) algorithm
        raise Refused("algorithm", f"the ID token's algorithm {str(alg)[:20]!r} is not accepted")
    try:
        key = jwt.PyJWKClient(str(config["jwks_uri"]), timeout=int(HTTP_TIMEOUT)).get_signing_key_from_jwt(id_token)
    except jwt.PyJWKClientConnectionError:
        raise Refused("provider_unreachable", "the provider's JWKS could not be fetched") from None
    except jwt.PyJWKClientError:
        raise Refused("signature", "the ID token is not signed by a key of the provider's JWKS") from None
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token, key.key, algorithms=[str(alg)], audience=idp.client_id, issuer=str(config.get("issuer")),
            options={"require": ["iss", "aud", "exp", "sub", "iat"]},
        )
    except jwt.InvalidSignatureError:
        raise Refused("signature", "the ID token's signature does not verify with the provider's key") from None
    except jwt.ExpiredSignatureError:
        raise Refused("expired", "the ID token has expired") from None
    except jwt.InvalidIssuerError:
        raise Refused("issuer", "the ID token was issued by another issuer") from None
    except jwt.InvalidAudienceError:
        raise Refused("audience", "the ID token is meant for another client (audience)") from None
    except jwt.ImmatureSignatureError:
        raise Refused("not_yet_valid", "the ID token is not valid yet") from None
    except jwt.PyJWTError as exc:
        raise Refused("claims", f"the ID token is not acceptable ({type(exc).__name__})") from None
    if not secrets.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
        raise Refused("nonce", "the ID token's nonce is not the one of this sign-in")
    return claims


def _userinfo(endpoint: str, access_token: str, claims: dict[str, Any]) -> dict[str, Any]:
    """Providers may put email and name only in UserInfo; its subject must be the ID token's."""
    with httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
        response = client.get(endpoint, headers={"Authorization": f"Bearer {access_token}"})
    try:
        info = response.json() if response.status_code == 200 else None
    except ValueError:
        info = None
    if not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
        raise Refused("userinfo", "the UserInfo answer does not match the ID token")
    return {k: info[k] for k in ("email", "email_verified", "name") if k in info}


def _resolve_user(db: Session, idp: IdentityProvider, claims: dict[str, Any]) -> tuple[User, str]:
    """The account this sign-in is for, under the linking rules (README, "SSO is scoped").

    A provider vouches for people in its own organization only. So an existing account, whether found by
    the subject linked earlier or by the verified address the provider asserts (primary, or a verified
    added one), signs in only while it is an active member of the provider's organization; an address no
    account has yet creates the account and its membership there. Anything else is refused: an
    organization's provider cannot reach an account its organization does not already have as a member,
    and the login it yields acts in that organization alone (auth.principal)."""
    subject = str(claims["sub"])
    now = utcnow()
    link = db.scalar(select(IdentityLink).where(IdentityLink.identity_provider_id == idp.id,
                                                IdentityLink.subject == subject))
    email = str(claims.get("email") or "").strip().lower()
    if link is not None:
        user = db.get(User, link.user_id)
        if user is None:
            raise ValueError("linked user is gone")
        how = "subject"
    else:
        if not email or claims.get("email_verified") is not True:
            raise PermissionError("the provider did not assert a verified email address")
        found = user_for_email(db, email)
        if found is None:
            user = User(email=email, display_name=str(claims.get("name") or email)[:255], account_type="external",
                        email_verified_at=now, default_organization_id=idp.organization_id)
            db.add(user)
            db.flush()
            add_member(db, idp.organization_id, user, [auth_catalog.MEMBER], created_by=None)
            how = "created"
        else:
            user, how = found, "email"
    if how != "created":
        member = db.scalar(select(Member).where(Member.organization_id == idp.organization_id,
                                                Member.user_id == user.id))
        if member is None:
            raise PermissionError("this account is not a member of the identity provider's organization; an "
                                  "administrator must invite it before it can sign in through this provider")
        if member.status != "active":
            raise PermissionError("the membership is deactivated")
    if link is None:
        db.add(IdentityLink(identity_provider_id=idp.id, user_id=user.id, subject=subject, email=email,
                            created_at=now, last_login_at=now))
    else:
        link.last_login_at = now
    return user, how


def finish(db: Session, settings: Settings, state: str | None, code: str | None, error: str | None,
           ctx: RequestContext) -> Issued | Challenge | str:
    """Our token (or an MFA challenge); for a native client's sign-in, the URL of its loopback redirect with the
    handoff code instead."""
    row = db.scalar(select(SsoLoginState).where(SsoLoginState.state_hash == token_hash(state or "")))
    idp = db.get(IdentityProvider, row.identity_provider_id) if row is not None else None
    now = utcnow()
    if row is None or idp is None or row.used_at is not None or row.expires_at <= now:
        raise _fail(db, ctx, idp, "invalid_state", "The sign-in state is unknown, used or expired; start again.")
    claimed = db.execute(
        update(SsoLoginState).where(SsoLoginState.id == row.id, SsoLoginState.used_at.is_(None)).values(used_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not claimed:
        raise _fail(db, ctx, idp, "invalid_state", "The sign-in state is unknown, used or expired; start again.")
    checkpoint(db)  # spent now, whatever happens next (the provider is called below)
    native, native_state = row.client_redirect_uri, row.client_state
    try:
        return _finish_claimed(db, settings, row, idp, code, error, ctx)
    except ApiError as exc:
        if not native:
            raise
        # A native client hears a refusal at its loopback at once (RFC 6749 section 4.1.2.1's error answer), not
        # after its wait for a code runs out; the audit already has it.
        return client_redirect(native, {"error": exc.code, "error_description": exc.message,
                                        "state": native_state or ""})


def _finish_claimed(db: Session, settings: Settings, row: SsoLoginState, idp: IdentityProvider, code: str | None,
                    error: str | None, ctx: RequestContext) -> Issued | Challenge | str:
    if error or not code:
        raise _fail(db, ctx, idp, "idp_error", f"The identity provider answered an error: {(error or 'no code')[:100]}")
    config = _configuration(idp)
    verifier = Encryptor(settings.secret_key).decrypt(row.code_verifier_encrypted)
    try:
        tokens = _exchange(settings, idp, config, code, verifier)
        claims = _verify_id_token(idp, config, str(tokens["id_token"]), row.nonce)
        if not claims.get("email") and config.get("userinfo_endpoint") and tokens.get("access_token"):
            claims = {**_userinfo(str(config["userinfo_endpoint"]), str(tokens["access_token"]), claims), **claims}
    except httpx.HTTPError as exc:
        raise _fail(db, ctx, idp, "invalid_id_token", f"The sign-in could not be verified: the provider could "
                    f"not be reached ({type(exc).__name__}).", 401, check="provider_unreachable") from None
    except Refused as exc:
        raise _fail(db, ctx, idp, "invalid_id_token", f"The sign-in could not be verified: {exc}.", 401,
                    check=exc.check) from None
    try:
        user, how = _resolve_user(db, idp, claims)
    except (PermissionError, ValueError) as exc:
        db.rollback()
        raise _fail(db, ctx, idp, "sso_user_refused", f"The account cannot sign in: {exc}", 403) from None
    if user.status != "active":
        raise _fail(db, ctx, idp, "account_deactivated", "This account is deactivated.", 403)
    if row.client_redirect_uri:
        handoff = secrets.token_urlsafe(32)
        db.execute(update(SsoLoginState).where(SsoLoginState.id == row.id)
                   .values(handoff_code_hash=token_hash(handoff), handoff_user_id=user.id))
        audit.record(db, ctx, None, "auth.sso.login", "user", user.id, organization_id=idp.organization_id,
                     actor_type="user", actor_id=user.id,
                     details={"identityProviderId": idp.id, "matchedBy": how, "nativeClient": True,
                          **({"console": True} if row.client_redirect_uri == CONSOLE_REDIRECT else {})})
        db.flush()
        return client_redirect(row.client_redirect_uri, {"code": handoff, "state": row.client_state or ""})
    # Bound to the provider's organization: the login (and an MFA challenge on the way) acts only there.
    outcome = begin_login(db, settings, user, ctx, method="sso", device=None, trusted_device_token=None,
                          organization_id=idp.organization_id)
    audit.record(db, ctx, None, "auth.sso.login", "user", user.id, organization_id=idp.organization_id,
                 actor_type="user", actor_id=user.id,
                 details={"identityProviderId": idp.id, "matchedBy": how,
                          "mfaChallenge": isinstance(outcome, Challenge)})
    db.flush()
    return outcome


def exchange(db: Session, settings: Settings, code: str, code_verifier: str, ctx: RequestContext) -> Issued | Challenge:
    """A native client's handoff code and PKCE verifier → the login (or the MFA challenge), once. The code is spent
    by any attempt, so a guessed or stolen code with the wrong verifier also ends that sign-in."""
    row = db.scalar(select(SsoLoginState).where(SsoLoginState.handoff_code_hash == token_hash(code)))
    idp = db.get(IdentityProvider, row.identity_provider_id) if row is not None else None
    now = utcnow()
    message = "The sign-in code is unknown, used, expired or not this client's; sign in again."
    if row is None or idp is None or row.handoff_used_at is not None or row.expires_at <= now:
        raise _fail(db, ctx, idp, "invalid_sso_code", message, 401)
    claimed = db.execute(
        update(SsoLoginState).where(SsoLoginState.id == row.id, SsoLoginState.handoff_used_at.is_(None))
        .values(handoff_used_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not claimed:
        raise _fail(db, ctx, idp, "invalid_sso_code", message, 401)
    checkpoint(db)
    challenge = _b64(hashlib.sha256(code_verifier.encode()).digest())
    if not secrets.compare_digest(challenge.encode(), (row.client_code_challenge or "").encode()):
        raise _fail(db, ctx, idp, "invalid_sso_code", message, 401, check="code_verifier")
    user = db.get(User, row.handoff_user_id) if row.handoff_user_id else None
    if user is None or idp.status != "active":
        raise _fail(db, ctx, idp, "invalid_sso_code", message, 401)
    if user.status != "active":
        raise _fail(db, ctx, idp, "account_deactivated", "This account is deactivated.", 403)
    device = "web console" if row.client_redirect_uri == CONSOLE_REDIRECT else "sailplane CLI"
    outcome = begin_login(db, settings, user, ctx, method="sso", device=device, trusted_device_token=None,
                          organization_id=idp.organization_id)
    audit.record(db, ctx, None, "auth.sso.exchange", "user", user.id, organization_id=idp.organization_id,
                 actor_type="user", actor_id=user.id,
                 details={"identityProviderId": idp.id, "mfaChallenge": isinstance(outcome, Challenge)})
    db.flush()
    return outcome
