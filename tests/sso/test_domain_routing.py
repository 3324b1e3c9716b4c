"""Email domain → identity provider routing: a user starts SSO from their email address
(startSsoLogin with {idp} = discover and loginHint), through the real OpenID provider."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from sailplane.config import Settings
from sailplane.kit.ids import new_id
from tests.conftest import Mailbox
from tests.identity.test_email_flows import TOKEN_RE, latest
from tests.sso.browser import sign_in_at_provider
from tests.sso.test_sso_login import callback_on_our_server
from tests.support.actors import Actor, assert_error, signup


def unique_domain() -> str:
    return f"corp-{new_id().lower()}.example"


def manual_idp(owner: Actor, issuer: str, domains: list[str], name: str | None = None) -> httpx.Response:
    return owner.post("/auth/idps", json={"name": name or f"IdP {new_id()}", "issuer": issuer,
                                          "clientId": "static-client", "emailDomains": domains})


def discover(api_url: str, login_hint: str | None) -> httpx.Response:
    params = {"loginHint": login_hint} if login_hint is not None else {}
    return httpx.get(f"{api_url}/auth/sso/discover/authorize", params=params, follow_redirects=False)


def error_without_request_id(response: httpx.Response) -> dict[str, Any]:
    err = dict(response.json()["error"])
    err["details"] = {k: v for k, v in err["details"].items() if k != "requestId"}
    return err


def test_a_user_starts_sso_from_their_email_address(api_url: str, oidc_issuer: str, settings: Settings) -> None:
    owner = signup(api_url)
    domain = unique_domain()
    r = owner.post("/auth/idps/auto-setup", json={"name": "Corp SSO", "providerUrl": oidc_issuer,
                                                  "emailDomains": [domain.upper()]})
    assert r.status_code == 201, r.text
    idp = r.json()
    assert idp["emailDomains"] == [domain]  # stored lower-case
    assert owner.get(f"/auth/idps/{idp['id']}").json()["emailDomains"] == [domain]

    email = f"alice@{domain}"
    r = discover(api_url, f"  Alice@{domain.upper()} ")
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(oidc_issuer)
    assert query["client_id"] == [idp["clientId"]] and query["login_hint"] == [f"Alice@{domain.upper()}"]
    assert query["code_challenge_method"] == ["S256"] and query["state"] and query["nonce"]

    callback = sign_in_at_provider(location, settings.public_url, email)
    r = callback_on_our_server(api_url, settings, callback)
    assert r.status_code == 200, r.text
    me = Actor(api_url, r.json()["token"]).get("/me").json()
    assert me["user"]["email"] == email and me["organizationId"] == owner.org_id

    # An explicit provider ID also forwards the hint to the provider.
    r = httpx.get(f"{api_url}/auth/sso/{idp['id']}/authorize", params={"loginHint": email}, follow_redirects=False)
    assert r.status_code == 302 and parse_qs(urlsplit(r.headers["location"]).query)["login_hint"] == [email]

    starts = owner.get("/org/audit-events", params={"action": "auth.sso.start"}).json()["items"]
    assert sorted(e["details"]["routedBy"] for e in starts) == ["email_domain", "id"]


def test_unknown_domains_answer_exactly_like_unknown_providers(api_url: str, oidc_issuer: str) -> None:
    owner = signup(api_url)
    domain = unique_domain()
    idp = manual_idp(owner, oidc_issuer, [domain]).json()
    assert discover(api_url, f"bob@{domain}").status_code == 302

    unknown_id = httpx.get(f"{api_url}/auth/sso/NOSUCHIDP/authorize", follow_redirects=False)
    unknown_domain = discover(api_url, f"bob@{unique_domain()}")
    assert_error(unknown_id, 404, "not_found")
    assert_error(unknown_domain, 404, "not_found")
    assert error_without_request_id(unknown_domain) == error_without_request_id(unknown_id)
    # A subdomain is another domain: claims match exactly.
    assert error_without_request_id(discover(api_url, f"bob@eng.{domain}")) == error_without_request_id(unknown_id)

    # A disabled provider's domain routes nowhere, with the same answer.
    assert owner.patch(f"/auth/idps/{idp['id']}", json={"status": "disabled"}).status_code == 200
    assert error_without_request_id(discover(api_url, f"bob@{domain}")) == error_without_request_id(unknown_id)

    for hint in (None, "", "not-an-email", "a@b@c.example"):
        err = assert_error(discover(api_url, hint), 400, "validation_failed")
        assert err["details"]["fieldErrors"] == {"loginHint": "must be an email address"}
    assert_error(discover(api_url, "x" * 321 + "@corp.example"), 400, "validation_failed")
    assert_error(httpx.get(f"{api_url}/auth/sso/discovery/authorize", follow_redirects=False), 400)


def test_a_domain_is_claimed_by_one_provider_across_all_organizations(api_url: str, oidc_issuer: str) -> None:
    a, b = signup(api_url), signup(api_url)
    domain, other = unique_domain(), unique_domain()
    r = manual_idp(a, oidc_issuer, [domain, other])
    assert r.status_code == 201, r.text
    a_idp = r.json()

    err = assert_error(manual_idp(b, oidc_issuer, [domain]), 409, "domain_taken")
    assert "emailDomains" in err["details"]["fieldErrors"]
    assert_error(b.post("/auth/idps/auto-setup", json={"name": "B SSO", "providerUrl": oidc_issuer,
                                                       "emailDomains": [other]}), 409, "domain_taken")
    assert_error(manual_idp(a, oidc_issuer, [domain]), 409, "domain_taken")  # also within one organization
    assert b.get("/auth/idps").json()["items"] == []  # nothing half-written

    b_idp = manual_idp(b, oidc_issuer, []).json()
    assert_error(b.patch(f"/auth/idps/{b_idp['id']}", json={"emailDomains": [domain]}), 409, "domain_taken")
    assert b.get(f"/auth/idps/{b_idp['id']}").json()["emailDomains"] == []

    # A releases one domain (keeping the other); B can claim it then; re-saving one's own list is fine.
    r = a.patch(f"/auth/idps/{a_idp['id']}", json={"emailDomains": [other, "x" + domain]})
    assert r.status_code == 200 and r.json()["emailDomains"] == [other, "x" + domain], r.text
    r = b.patch(f"/auth/idps/{b_idp['id']}", json={"emailDomains": [domain]})
    assert r.status_code == 200 and r.json()["emailDomains"] == [domain], r.text
    assert b.patch(f"/auth/idps/{b_idp['id']}", json={"emailDomains": [domain]}).status_code == 200
    location = discover(api_url, f"carol@{domain}").headers["location"]
    assert parse_qs(urlsplit(location).query)["client_id"] == [b_idp["clientId"]]

    # Deleting a provider frees its domains.
    assert a.delete(f"/auth/idps/{a_idp['id']}").status_code == 200
    assert manual_idp(b, oidc_issuer, [other]).status_code == 201

    assert_error(manual_idp(a, oidc_issuer, ["not a domain"]), 422)
    updates = a.get("/org/audit-events", params={"action": "identity_provider.update"}).json()["items"]
    assert updates[0]["details"]["emailDomains"] == [other, "x" + domain]


def test_concurrent_claims_of_one_domain_leave_exactly_one_winner(api_url: str, oidc_issuer: str) -> None:
    owners = [signup(api_url) for _ in range(4)]
    domain = unique_domain()
    with ThreadPoolExecutor(len(owners)) as pool:
        answers = list(pool.map(lambda o: manual_idp(o, oidc_issuer, [domain]), owners))
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409], [r.text for r in answers]
    for r in answers:
        if r.status_code == 409:
            assert_error(r, 409, "domain_taken")
    assert sum(len(o.get("/auth/idps").json()["items"]) for o in owners) == 1


def test_sso_links_an_account_by_a_verified_added_address(
    api_url: str, oidc_issuer: str, settings: Settings, mailbox: Mailbox
) -> None:
    user = signup(api_url)
    alias = f"user@{unique_domain()}"
    assert user.post("/me/emails", json={"email": alias}).status_code == 201
    token = TOKEN_RE.search(latest(mailbox, alias, "Verify your email"))
    assert token and httpx.post(f"{api_url}/auth/email/verify", json={"token": token.group(1)}).status_code == 200
    idp = user.post("/auth/idps/auto-setup", json={"name": "Alias SSO", "providerUrl": oidc_issuer}).json()
    location = httpx.get(f"{api_url}/auth/sso/{idp['id']}/authorize", follow_redirects=False).headers["location"]
    r = callback_on_our_server(api_url, settings, sign_in_at_provider(location, settings.public_url, alias))
    assert r.status_code == 200, r.text
    assert r.json()["userId"] == user.user_id
    assert [u["id"] for u in user.get("/users").json()["items"]] == [user.user_id]
