"""SSO for a native client (the CLI, RFC 8252) through a real OpenID provider: the sign-in ends at the client's
loopback redirect with a one-time code that only the holder of the client's PKCE verifier can exchange; no other
redirect target is accepted."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sailplane.config import Settings
from tests.sso.browser import sign_in_at_provider
from tests.sso.test_sso_login import auto_setup, callback_on_our_server
from tests.support.actors import Actor, assert_error, signup, unique_email

LOOPBACK = "http://127.0.0.1:53682/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def start(api_url: str, idp_id: str, **params: str) -> httpx.Response:
    return httpx.get(f"{api_url}/auth/sso/{idp_id}/authorize", params=params, follow_redirects=False)


def handoff(api_url: str, settings: Settings, idp_id: str, subject: str, challenge: str, state: str) -> str:
    """The URL the browser is sent to at the end: the client's loopback redirect with the code and state."""
    r = start(api_url, idp_id, redirectUri=LOOPBACK, codeChallenge=challenge, state=state)
    assert r.status_code == 302, r.text
    at_provider = parse_qs(urlsplit(r.headers["location"]).query)
    assert at_provider["redirect_uri"] == [f"{settings.public_url}/api/v1/auth/sso/callback"]  # ours, as registered
    back = callback_on_our_server(api_url, settings, sign_in_at_provider(r.headers["location"], settings.public_url,
                                                                         subject))
    assert back.status_code == 303, back.text
    assert "token" not in back.text
    return back.headers["location"]


def exchange(api_url: str, code: str, verifier: str) -> httpx.Response:
    return httpx.post(f"{api_url}/auth/sso/token", json={"code": code, "codeVerifier": verifier})


def test_the_code_goes_to_the_loopback_and_only_the_verifier_redeems_it(
    api_url: str, oidc_issuer: str, settings: Settings
) -> None:
    owner = signup(api_url)
    idp = auto_setup(owner, oidc_issuer)
    subject = f"cli-{unique_email('s').split('@')[0]}"
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(24)
    location = handoff(api_url, settings, idp["id"], subject, challenge, state)
    assert location.startswith(f"{LOOPBACK}?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state] and set(query) == {"code", "state"}

    r = exchange(api_url, query["code"][0], verifier)
    assert r.status_code == 200, r.text
    me = Actor(api_url, r.json()["token"]).get("/me").json()
    assert me["user"]["email"] == f"{subject}@example.com" and me["organizationId"] == owner.org_id
    assert_error(exchange(api_url, query["code"][0], verifier), 401, "invalid_sso_code")  # once

    # A code taken on the way (another local process, the browser's history) is useless without the verifier,
    # and the attempt spends it.
    verifier2, challenge2 = pkce()
    stolen = parse_qs(urlsplit(handoff(api_url, settings, idp["id"], subject, challenge2, state)).query)["code"][0]
    assert_error(exchange(api_url, stolen, pkce()[0]), 401, "invalid_sso_code")
    assert_error(exchange(api_url, stolen, verifier2), 401, "invalid_sso_code")
    assert_error(exchange(api_url, "made-up", verifier2), 401, "invalid_sso_code")
    events = owner.get("/org/audit-events", params={"action": "auth.sso.exchange"}).json()["items"]
    assert len(events) == 1 and events[0]["actorId"] == me["user"]["id"]


@pytest.mark.parametrize("redirect", [
    "http://evil.example.com/callback",  # not loopback: the code would leave the machine
    "http://127.0.0.1.evil.example.com:8080/callback",
    "http://127.0.0.1:8080@evil.example.com/callback",
    "https://127.0.0.1:8080/callback",
    "http://localhost:8080/callback",  # a name may resolve elsewhere (RFC 8252 8.3)
    "http://[::1]:8080/callback",
    "http://127.0.0.1/callback",
    "http://127.0.0.1:99999/callback",
    "http://127.0.0.1:8080/callback/",
    "http://127.0.0.1:8080/elsewhere",
    "http://127.0.0.1:8080/callback?next=https://evil.example.com",
    "http://127.0.0.1:8080/callback#x",
    "//evil.example.com/signin/sso",  # the console's page is a path on this server, nothing else
    "https://evil.example.com/signin/sso",
    "/signin/sso/",
    "/signin/sso?next=x",
    "/signin/sso#x",
    "/signin",
])
def test_no_other_redirect_is_accepted(api_url: str, oidc_issuer: str, redirect: str) -> None:
    owner = signup(api_url)
    idp = auto_setup(owner, oidc_issuer)
    _, challenge = pkce()
    err = assert_error(start(api_url, idp["id"], redirectUri=redirect, codeChallenge=challenge,
                             state=secrets.token_urlsafe(24)), 400, "validation_failed")
    assert "redirectUri" in err["details"]["fieldErrors"]
    starts = owner.get("/org/audit-events", params={"action": "auth.sso.start"}).json()["items"]
    assert starts == []  # refused before a sign-in began


def test_the_redirect_needs_its_challenge_and_state(api_url: str, oidc_issuer: str) -> None:
    owner = signup(api_url)
    idp = auto_setup(owner, oidc_issuer)
    _, challenge = pkce()
    for params, field in (({"redirectUri": LOOPBACK, "state": secrets.token_urlsafe(24)}, "codeChallenge"),
                          ({"redirectUri": LOOPBACK, "codeChallenge": challenge}, "state"),
                          ({"codeChallenge": challenge, "state": secrets.token_urlsafe(24)}, "redirectUri"),
                          ({"redirectUri": LOOPBACK, "codeChallenge": "plain", "state": "s" * 20}, "codeChallenge")):
        err = assert_error(start(api_url, idp["id"], **params), 400, "validation_failed")
        assert field in err["details"]["fieldErrors"], err


def test_a_refusal_also_goes_to_the_loopback(api_url: str, oidc_issuer: str, settings: Settings) -> None:
    """An account of another organization (the provider cannot take it over): the client hears it at once."""
    subject = f"victim-{unique_email('s').split('@')[0]}"
    signup(api_url, email=f"{subject}@example.com")
    idp = auto_setup(signup(api_url), oidc_issuer)
    state = secrets.token_urlsafe(24)
    location = handoff(api_url, settings, idp["id"], subject, pkce()[1], state)
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(f"{LOOPBACK}?") and "code" not in query
    assert query["error"] == ["sso_user_refused"] and query["state"] == [state]
    assert "not a member" in query["error_description"][0]


def test_the_console_hears_the_code_in_the_fragment_and_a_refusal_to_start_at_its_page(
    api_url: str, oidc_issuer: str, settings: Settings
) -> None:
    """The web console's page is the other accepted redirect: same origin, the code in the fragment (which
    browsers never send to a server); an unknown email domain comes back there as an error, not a JSON page."""
    owner = signup(api_url)
    idp = auto_setup(owner, oidc_issuer)
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(24)
    r = start(api_url, idp["id"], redirectUri="/signin/sso", codeChallenge=challenge, state=state)
    assert r.status_code == 302, r.text
    subject = f"web-{unique_email('s').split('@')[0]}"
    back = callback_on_our_server(api_url, settings, sign_in_at_provider(r.headers["location"], settings.public_url,
                                                                         subject))
    assert back.status_code == 303 and "token" not in back.text
    location = urlsplit(back.headers["location"])
    assert (location.scheme, location.netloc, location.path, location.query) == ("", "", "/signin/sso", "")
    answer = parse_qs(location.fragment)
    assert answer["state"] == [state] and set(answer) == {"code", "state"}
    assert_error(exchange(api_url, answer["code"][0], pkce()[0]), 401, "invalid_sso_code")  # not this verifier
    assert_error(exchange(api_url, answer["code"][0], verifier), 401, "invalid_sso_code")  # and it is spent

    r = httpx.get(f"{api_url}/auth/sso/discover/authorize", follow_redirects=False,
                  params={"loginHint": "bob@unknown.example", "redirectUri": "/signin/sso",
                          "codeChallenge": challenge, "state": state})
    assert r.status_code == 303 and r.headers["location"].startswith("/signin/sso#")
    refused = parse_qs(urlsplit(r.headers["location"]).fragment)
    assert refused["error"] == ["not_found"] and refused["state"] == [state] and refused["error_description"]
    # A native client (or no client) still hears it as the API's error.
    assert_error(httpx.get(f"{api_url}/auth/sso/discover/authorize", follow_redirects=False,
                           params={"loginHint": "bob@unknown.example", "redirectUri": LOOPBACK,
                                   "codeChallenge": challenge, "state": state}), 404, "not_found")
