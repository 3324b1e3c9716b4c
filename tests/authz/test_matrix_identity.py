"""The authorization matrix of identity: the caller's own MFA (enrolment, confirmation, recovery codes,
removal), trusted devices and email addresses; an admin's MFA reset of another member; identity
providers for single sign-on.

Self-service routes act on the caller's own account, so each caller does the setup itself: only
user logins have one (API keys: 400), in an organization they belong to (our header on an outsider:
404). The MFA reset needs CanManageUsers (the Owner, Admins, the service account with a policy); an
Owner's reset only holders of CanManageOwners (Owners); a member of another organization is not
found. Identity providers are organization-admin territory (CanManageIdentityProviders, which the
service account's policy does not grant): anyone else is refused (403) before any lookup, and another
organization's provider is not found. Client secrets never appear in any response.

This matrix enrolls its callers in MFA, so it has a world of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from tests.authz.matrix import (
    CALLERS,
    USERS,
    Case,
    Context,
    by_caller,
    lists,
    once,
    org_admin_only,
    run_cases,
    users_only,
)
from tests.mfa.helpers import code_at, password_login
from tests.support.actors import Actor, signup, unique_email
from tests.support.oidc_stub import REGISTERED_SECRET, stub_openid_provider
from tests.support.world import World, build_world, create_member

IDP_SECRET = "matrix-idp-client-SECRET"
ROTATED_SECRET = "matrix-rotated-client-SECRET"
NO_CODE = {"code": "000000"}  # for callers without an account of their own to set up

# --- expected statuses ---------------------------------------------------------------------------


def idp_admins(ok: int, own_org_ok: bool = False) -> dict[str, int]:
    """Organization admins; the service account's policy does not include CanManageIdentityProviders."""
    return org_admin_only(ok, own_org_ok) | {"sa_with_policy": 403}


def manage_users(ok: int, **overrides: int) -> dict[str, int]:
    """A CanManageUsers route: others in the organization are refused (403) before the target is looked
    up; the outsider (an Owner in their own organization) does not find ours."""
    members = {"member_t1", "viewer_t1", "teamadmin_t1", "member_t2", "sa_without_policy"}
    return by_caller(ok, {"owner", "admin", "sa_with_policy"}, seen=members) | overrides


# --- the caller's own authenticator --------------------------------------------------------------

def _totp(w: World, actor: Actor) -> dict[str, Any]:
    return w.shared.setdefault("totp", {}).setdefault(actor.token, {})  # type: ignore[no-any-return]


def next_code(state: dict[str, Any]) -> str:
    """A code of a time step this authenticator has not used yet, still valid when the server checks it
    (the server accepts the previous, current and next step, each once)."""
    while True:
        now = time.time()
        step = int(now) // 30
        for offset in (-1, 0, 1):
            if step + offset <= state["last"] or (offset == -1 and now % 30 > 25):
                continue
            state["last"] = step + offset
            return pyotp.TOTP(state["secret"]).at((step + offset) * 30)
        time.sleep(0.5)


def _enabled(actor: Actor) -> bool | None:
    """Whether the caller's authenticator is on; None when the caller has no account here."""
    r = actor.get("/me/mfa")
    return bool(r.json()["enabled"]) if r.status_code == 200 else None


def not_enrolled(w: World, actor: Actor, _context: Context) -> Context:
    if _enabled(actor):
        r = actor.delete("/me/mfa/totp", json={"code": next_code(_totp(w, actor))})
        assert r.status_code == 200, r.text
    return {}


def enrollment_started(w: World, actor: Actor, context: Context) -> Context:
    """A pending authenticator; the context has a code to confirm it."""
    not_enrolled(w, actor, context)
    r = actor.post("/me/mfa/totp")
    if r.status_code != 201:
        return NO_CODE
    state = _totp(w, actor)
    state.update(secret=r.json()["secret"], last=0)
    return {"code": next_code(state)}


def enrolled(w: World, actor: Actor, context: Context) -> Context:
    """A confirmed authenticator; the context has a fresh code of it."""
    enabled = _enabled(actor)
    if enabled is None:
        return NO_CODE
    if not enabled:
        started = enrollment_started(w, actor, context)
        r = actor.post("/me/mfa/totp/verify", json=started)
        assert r.status_code == 200, r.text
    return {"code": next_code(_totp(w, actor))}


def own_new_email(w: World, actor: Actor, _context: Context) -> Context:
    email = unique_email("second")
    r = actor.post("/me/emails", json={"email": email})
    return {"email": email if r.status_code == 201 else unique_email("nobody")}


# --- other people's things -----------------------------------------------------------------------

def enroll(actor: Actor) -> str:
    r = actor.post("/me/mfa/totp")
    assert r.status_code == 201, r.text
    secret = str(r.json()["secret"])
    r = actor.post("/me/mfa/totp/verify", json={"code": code_at(secret, -1)})
    assert r.status_code == 200, r.text
    return secret


def stranger(w: World) -> Context:
    """Someone in another organization with an added address and a trusted device."""
    actor = signup(w.owner.base_url)
    secret = enroll(actor)
    email = unique_email("stranger-second")
    assert actor.post("/me/emails", json={"email": email}).status_code == 201
    challenge = password_login(actor)["challengeToken"]
    r = Actor(actor.base_url).post("/auth/login/mfa", json={"challengeToken": challenge, "code": code_at(secret, 0),
                                                            "trustDevice": True})
    assert r.status_code == 200, r.text
    return {"device": r.json()["trustedDeviceId"], "email": email}


def fresh_enrolled_member(w: World) -> Context:
    member = create_member(w.owner)
    enroll(member)
    return {"user": member.user_id}


def fresh_second_owner(w: World) -> Context:
    return {"user": create_member(w.owner, "OWNER", sign_in=False).user_id}


def fresh_member_elsewhere(w: World) -> Context:
    """A member of the outsider's organization."""
    return {"user": create_member(w.outsider, sign_in=False).user_id}


shared_stranger = once(stranger)
shared_enrolled_member = once(fresh_enrolled_member)
shared_second_owner = once(fresh_second_owner)
shared_member_elsewhere = once(fresh_member_elsewhere)


# --- identity providers ----------------------------------------------------------------------------

def idp_body(issuer: str) -> dict[str, Any]:
    return {"name": f"idp-{unique_email('i')}", "issuer": issuer, "clientId": "matrix-client",
            "clientSecret": IDP_SECRET}


def idp_setup(issuer: str) -> Any:
    def fresh_idp(w: World) -> Context:
        r = w.owner.post("/auth/idps", json=idp_body(issuer))
        assert r.status_code == 201, r.text
        return {"idp": r.json()["id"], "issuer": issuer}

    return fresh_idp


def cases(issuer: str) -> list[Case]:
    fresh_idp = idp_setup(issuer)
    shared_idp = once(fresh_idp)
    idp_path = "/auth/idps/{idp}"

    def at(template: str) -> Any:
        return lambda w, c: template.format(**c)

    return [
        # the caller's MFA: in this order, each caller enrolls, confirms, renews codes and removes it
        Case("getMyMfa", "GET", lambda w, c: "/me/mfa", users_only()),
        Case("startTotpEnrollment", "POST", lambda w, c: "/me/mfa/totp", users_only(201), as_caller=not_enrolled),
        Case("confirmTotpEnrollment", "POST", lambda w, c: "/me/mfa/totp/verify", users_only(),
             as_caller=enrollment_started, body=lambda c: {"code": c["code"]}),
        Case("regenerateRecoveryCodes", "POST", lambda w, c: "/me/mfa/recovery-codes", users_only(),
             as_caller=enrolled, body=lambda c: {"code": c["code"]}),
        Case("removeTotp", "DELETE", lambda w, c: "/me/mfa/totp", users_only(), as_caller=enrolled,
             body=lambda c: {"code": c["code"]}),
        # trusted devices and addresses: one's own only
        Case("listMyTrustedDevices", "GET", lambda w, c: "/me/trusted-devices", users_only()),
        Case("revokeMyTrustedDevice", "DELETE", at("/me/trusted-devices/{device}"), users_only(404),
             setup=shared_stranger, label="someone else's"),
        Case("listMyEmails", "GET", lambda w, c: "/me/emails", users_only()),
        Case("addMyEmail", "POST", lambda w, c: "/me/emails", users_only(201),
             body=lambda c: {"email": unique_email("added")}),
        Case("removeMyEmail", "DELETE", at("/me/emails/{email}"), users_only(), as_caller=own_new_email,
             label="own"),
        Case("removeMyEmail", "DELETE", at("/me/emails/{email}"), users_only(404), setup=shared_stranger,
             label="someone else's"),
        # an admin resets another member's MFA
        Case("resetUserMfa", "POST", at("/users/{user}/reset-mfa"), manage_users(200),
             setup=shared_enrolled_member, fresh=fresh_enrolled_member, label="an enrolled member"),
        Case("resetUserMfa", "POST", at("/users/{user}/reset-mfa"), manage_users(200, admin=403, sa_with_policy=403),
             setup=shared_second_owner, fresh=fresh_second_owner, label="an Owner"),
        Case("resetUserMfa", "POST", at("/users/{user}/reset-mfa"),
             manage_users(404, outsider=200), setup=shared_member_elsewhere, fresh=fresh_member_elsewhere,
             label="a member of another organization"),
        # identity providers
        Case("listIdentityProviderTypes", "GET", lambda w, c: "/auth/identity-provider-types",
             by_caller(200, CALLERS)),
        Case("listIdentityProviders", "GET", lambda w, c: "/auth/idps", idp_admins(200, own_org_ok=True),
             setup=shared_idp, check=lists("idp", {"owner", "admin"})),
        Case("createIdentityProvider", "POST", lambda w, c: "/auth/idps", idp_admins(201, own_org_ok=True),
             body=lambda c: idp_body(issuer)),
        Case("autoSetupIdentityProvider", "POST", lambda w, c: "/auth/idps/auto-setup",
             idp_admins(201, own_org_ok=True),
             body=lambda c: {"name": f"auto-{unique_email('a')}", "providerUrl": issuer}),
        Case("describeIdentityProvider", "GET", at(idp_path), idp_admins(200), setup=shared_idp),
        Case("updateIdentityProvider", "PATCH", at(idp_path), idp_admins(200), setup=shared_idp, fresh=fresh_idp,
             body=lambda c: {"name": f"renamed-{unique_email('r')}"}),
        Case("rotateIdentityProviderSecret", "POST", at(idp_path + "/rotate-secret"), idp_admins(200),
             setup=shared_idp, fresh=fresh_idp, body=lambda c: {"clientSecret": ROTATED_SECRET}),
        Case("testIdentityProvider", "POST", at(idp_path + "/test"), idp_admins(200), setup=shared_idp),
        # Whether a claimed domain's TXT record is there is the SSO tests' business (a real DNS server);
        # here a domain the provider does not claim: admins reach the provider and are told so (404).
        Case("verifyIdentityProviderDomain", "POST", at(idp_path + "/domains/unclaimed.example/verify"),
             idp_admins(404), setup=shared_idp, label="a domain it does not claim"),
        Case("deleteIdentityProvider", "DELETE", at(idp_path), idp_admins(200), setup=shared_idp, fresh=fresh_idp),
    ]


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with stub_openid_provider() as url:
        yield url


@pytest.fixture(scope="module")
def world(api_url: str) -> World:
    return build_world(api_url)


@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix(world: World, issuer: str, caller: str) -> None:
    run_cases(world, caller, cases(issuer), hidden=[IDP_SECRET, ROTATED_SECRET, REGISTERED_SECRET])
    if caller in USERS:
        assert _enabled(world.callers()[caller]) is False  # the matrix leaves no authenticator behind
