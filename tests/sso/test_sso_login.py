"""SSO sign-in through a real OpenID provider (oidc-provider), the test playing the browser."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from sailplane.config import Settings
from tests.mfa.helpers import code_at
from tests.sso.browser import sign_in_at_provider
from tests.support.actors import Actor, assert_error, signup, unique_email


def auto_setup(owner: Actor, issuer: str) -> dict[str, str]:
    r = owner.post("/auth/idps/auto-setup", json={"name": f"SSO {unique_email('n')}", "providerUrl": issuer})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def start(api_url: str, idp_id: str) -> str:
    r = httpx.get(f"{api_url}/auth/sso/{idp_id}/authorize", follow_redirects=False)
    assert r.status_code == 302, r.text
    return r.headers["location"]


def callback_on_our_server(api_url: str, settings: Settings, callback: str) -> httpx.Response:
    """The provider redirects to the public URL; the test server listens elsewhere."""
    return httpx.get(callback.replace(settings.public_url, api_url.rsplit("/api/v1", 1)[0]))


def test_first_sso_login_creates_an_external_member_and_later_finds_it(
    api_url: str, oidc_issuer: str, settings: Settings
) -> None:
    owner = signup(api_url)
    idp = auto_setup(owner, oidc_issuer)
    location = start(api_url, idp["id"])
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(oidc_issuer)
    assert query["code_challenge_method"] == ["S256"] and query["state"] and query["nonce"]
    assert query["client_id"] == [idp["clientId"]] and query["redirect_uri"] == [idp["redirectUri"]]

    subject = f"sso-{unique_email('s').split('@')[0]}"
    callback = sign_in_at_provider(location, settings.public_url, subject)
    r = callback_on_our_server(api_url, settings, callback)
    assert r.status_code == 200, r.text
    user = Actor(api_url, r.json()["token"])
    me = user.get("/me").json()
    assert me["user"]["email"] == f"{subject}@example.com" and me["user"]["accountType"] == "external"
    assert me["user"]["emailVerified"] is True and me["organizationId"] == owner.org_id
    assert me["roleIds"] == ["MEMBER"]

    # The same state cannot be used twice.
    assert_error(callback_on_our_server(api_url, settings, callback), 400, "invalid_state")

    # Second login: found by subject, same user, no new member.
    again = callback_on_our_server(api_url, settings, sign_in_at_provider(start(api_url, idp["id"]),
                                                                          settings.public_url, subject))
    assert again.status_code == 200 and again.json()["userId"] == me["user"]["id"]
    events = owner.get("/org/audit-events", params={"action": "auth.sso.login"}).json()["items"]
    assert sorted(e["details"].get("matchedBy", e["outcome"]) for e in events) == ["created", "failure", "subject"]


def test_sso_links_an_existing_account_by_verified_email_then_mfa(
    api_url: str, oidc_issuer: str, settings: Settings
) -> None:
    subject = f"link-{unique_email('s').split('@')[0]}"
    existing = signup(api_url, email=f"{subject}@example.com")
    existing.extra_headers["X-Forwarded-For"] = "10.99.1.1"
    secret = existing.post("/me/mfa/totp").json()["secret"]
    assert existing.post("/me/mfa/totp/verify", json={"code": code_at(secret, -1)}).status_code == 200
    idp = auto_setup(existing, oidc_issuer)
    r = callback_on_our_server(api_url, settings, sign_in_at_provider(start(api_url, idp["id"]),
                                                                      settings.public_url, subject))
    assert r.status_code == 200, r.text
    assert r.json()["mfaRequired"] is True
    done = httpx.post(f"{api_url}/auth/login/mfa", json={"challengeToken": r.json()["challengeToken"],
                                                          "code": code_at(secret, 0)})
    assert done.status_code == 200 and done.json()["userId"] == existing.user_id


def test_bad_state_and_provider_errors_are_refused_and_audited(api_url: str, oidc_issuer: str) -> None:
    owner = signup(api_url)
    idp = auto_setup(owner, oidc_issuer)
    assert_error(httpx.get(f"{api_url}/auth/sso/callback", params={"state": "forged", "code": "x"}), 400,
                 "invalid_state")
    assert_error(httpx.get(f"{api_url}/auth/sso/callback"), 400, "invalid_state")
    state = parse_qs(urlsplit(start(api_url, idp["id"])).query)["state"][0]
    assert_error(httpx.get(f"{api_url}/auth/sso/callback", params={"state": state, "code": "not-a-real-code"}), 401,
                 "invalid_id_token")
    state = parse_qs(urlsplit(start(api_url, idp["id"])).query)["state"][0]
    assert_error(httpx.get(f"{api_url}/auth/sso/callback", params={"state": state, "error": "access_denied"}), 400,
                 "idp_error")
    assert_error(httpx.get(f"{api_url}/auth/sso/NOSUCHIDP/authorize", follow_redirects=False), 404)
    reasons = sorted(e["details"]["reason"] for e in owner.get(
        "/org/audit-events", params={"action": "auth.sso.login"}).json()["items"])
    assert reasons == ["idp_error", "invalid_id_token"]


def test_a_provider_cannot_take_over_an_account_of_another_organization(
    api_url: str, oidc_issuer: str, settings: Settings
) -> None:
    subject = f"victim-{unique_email('s').split('@')[0]}"
    victim = signup(api_url, email=f"{subject}@example.com")
    attacker = signup(api_url)
    idp = auto_setup(attacker, oidc_issuer)
    r = callback_on_our_server(api_url, settings, sign_in_at_provider(start(api_url, idp["id"]),
                                                                      settings.public_url, subject))
    assert_error(r, 403, "sso_user_refused")
    assert victim.get("/me").json()["organizations"][0]["id"] == victim.org_id
    assert len(victim.get("/me").json()["organizations"]) == 1
    assert [u["id"] for u in attacker.get("/users").json()["items"]] == [attacker.user_id]
