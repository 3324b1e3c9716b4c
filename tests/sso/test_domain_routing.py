"""Email domain → identity provider routing: a user starts SSO from their email address
(startSsoLogin with {idp} = discover and loginHint), through the real OpenID provider; a domain routes
only once its claim is verified by a TXT record, looked up on a real DNS server (dnsmasq)."""

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
from tests.support.dnsmasq import Dnsmasq


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


def claim_of(idp: dict[str, Any], domain: str) -> dict[str, Any]:
    return next(c for c in idp["domainVerifications"] if c["domain"] == domain)


def verify(owner: Actor, idp: dict[str, Any], domain: str) -> httpx.Response:
    return owner.post(f"/auth/idps/{idp['id']}/domains/{domain}/verify")


def publish_and_verify(owner: Actor, dns: Dnsmasq, idp: dict[str, Any], domain: str) -> dict[str, Any]:
    """What the domain's admin does: publish the TXT record the claim names, then ask for the check."""
    claim = claim_of(idp, domain)
    dns.add(claim["recordName"], claim["recordValue"])
    r = verify(owner, idp, domain)
    assert r.status_code == 200 and r.json()["status"] == "verified", r.text
    return r.json()  # type: ignore[no-any-return]


def organization_with_sso(api_url: str, oidc_issuer: str, dns: Dnsmasq) -> tuple[Actor, str]:
    """An owner whose organization signs in a fresh domain's users through the provider (its domain verified)."""
    owner = signup(api_url)
    domain = unique_domain()
    r = owner.post("/auth/idps/auto-setup", json={"name": "Corp SSO", "providerUrl": oidc_issuer,
                                                  "emailDomains": [domain]})
    assert r.status_code == 201, r.text
    publish_and_verify(owner, dns, r.json(), domain)
    return owner, domain


def test_a_user_starts_sso_from_their_email_address(api_url: str, oidc_issuer: str, settings: Settings,
                                                    dns_server: Dnsmasq) -> None:
    owner = signup(api_url)
    domain = unique_domain()
    r = owner.post("/auth/idps/auto-setup", json={"name": "Corp SSO", "providerUrl": oidc_issuer,
                                                  "emailDomains": [domain.upper()]})
    assert r.status_code == 201, r.text
    idp = r.json()
    assert idp["emailDomains"] == [domain]  # stored lower-case
    claim = claim_of(idp, domain)
    assert claim["status"] == "pending" and claim["recordType"] == "TXT" and claim["verifiedAt"] is None
    assert claim["recordName"] == f"_sailplane-challenge.{domain}"
    assert claim["recordValue"].startswith("sailplane-domain-verification=") and len(claim["recordValue"]) > 50
    assert owner.get(f"/auth/idps/{idp['id']}").json()["domainVerifications"] == [claim]  # describe shows it

    email = f"alice@{domain}"
    assert_error(discover(api_url, email), 404, "not_found")  # claimed, not yet proven: routes nothing
    verified = publish_and_verify(owner, dns_server, idp, domain)
    assert verified["verifiedAt"] and verified["recordValue"] == claim["recordValue"]
    assert owner.get(f"/auth/idps/{idp['id']}").json()["domainVerifications"][0]["status"] == "verified"

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


def test_unknown_domains_answer_exactly_like_unknown_providers(api_url: str, oidc_issuer: str,
                                                               dns_server: Dnsmasq) -> None:
    owner = signup(api_url)
    domain, pending = unique_domain(), unique_domain()
    idp = manual_idp(owner, oidc_issuer, [domain, pending]).json()
    publish_and_verify(owner, dns_server, idp, domain)
    assert discover(api_url, f"bob@{domain}").status_code == 302

    unknown_id = httpx.get(f"{api_url}/auth/sso/NOSUCHIDP/authorize", follow_redirects=False)
    unknown_domain = discover(api_url, f"bob@{unique_domain()}")
    assert_error(unknown_id, 404, "not_found")
    assert_error(unknown_domain, 404, "not_found")
    assert error_without_request_id(unknown_domain) == error_without_request_id(unknown_id)
    # A claim not verified yet is no claim at all for routing.
    assert error_without_request_id(discover(api_url, f"bob@{pending}")) == error_without_request_id(unknown_id)
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


def test_a_domain_routes_only_for_whoever_proves_control_of_its_dns(api_url: str, oidc_issuer: str,
                                                                    dns_server: Dnsmasq) -> None:
    owner, squatter = signup(api_url), signup(api_url)
    domain, other = unique_domain(), unique_domain()
    # Claiming first blocks nobody: both claims are accepted, each with its own record value.
    r = manual_idp(squatter, oidc_issuer, [domain])
    assert r.status_code == 201, r.text
    squatter_idp = r.json()
    r = manual_idp(owner, oidc_issuer, [domain, other])
    assert r.status_code == 201, r.text
    owner_idp = r.json()
    theirs, ours = claim_of(squatter_idp, domain), claim_of(owner_idp, domain)
    assert theirs["recordName"] == ours["recordName"] and theirs["recordValue"] != ours["recordValue"]

    # No record yet: not verified, and the claim says why.
    err = assert_error(verify(owner, owner_idp, domain), 422, "domain_not_verified")
    assert ours["recordName"] in err["message"] and ours["recordValue"] in err["message"]
    described = claim_of(owner.get(f"/auth/idps/{owner_idp['id']}").json(), domain)
    assert described["status"] == "pending" and described["lastCheckedAt"]
    assert described["lastCheckError"] == f"no TXT record at {ours['recordName']}"

    # The domain's DNS holds the owner's value: a wrong value verifies nothing.
    dns_server.add(ours["recordName"], ours["recordValue"])
    err = assert_error(verify(squatter, squatter_idp, domain), 422, "domain_not_verified")
    assert err["details"]["fieldErrors"]["domain"] == \
        f"the TXT records at {ours['recordName']} do not include {theirs['recordValue']}"
    assert claim_of(squatter.get(f"/auth/idps/{squatter_idp['id']}").json(), domain)["status"] == "pending"
    assert_error(discover(api_url, f"carol@{domain}"), 404)

    r = verify(owner, owner_idp, domain)
    assert r.status_code == 200 and r.json()["status"] == "verified", r.text
    assert verify(owner, owner_idp, domain).json() == r.json()  # verifying again changes nothing
    location = discover(api_url, f"carol@{domain}").headers["location"]
    assert parse_qs(urlsplit(location).query)["client_id"] == [owner_idp["clientId"]]

    # Verified once, the domain is nobody else's: not even with their own record published.
    dns_server.add(theirs["recordName"], theirs["recordValue"])
    assert_error(verify(squatter, squatter_idp, domain), 409, "domain_taken")
    err = assert_error(manual_idp(squatter, oidc_issuer, [domain]), 409, "domain_taken")
    assert "emailDomains" in err["details"]["fieldErrors"]
    assert_error(squatter.post("/auth/idps/auto-setup", json={"name": "B SSO", "providerUrl": oidc_issuer,
                                                              "emailDomains": [domain]}), 409, "domain_taken")
    other_idp = manual_idp(squatter, oidc_issuer, []).json()
    assert_error(squatter.patch(f"/auth/idps/{other_idp['id']}", json={"emailDomains": [domain]}), 409,
                 "domain_taken")
    assert_error(manual_idp(owner, oidc_issuer, [domain]), 409, "domain_taken")  # also within one organization
    assert squatter.get(f"/auth/idps/{other_idp['id']}").json()["emailDomains"] == []
    assert_error(verify(owner, owner_idp, f"never-claimed.{domain}"), 404, "not_found")
    assert_error(verify(squatter, owner_idp, domain), 404, "not_found")  # another organization's provider

    # Re-saving keeps the verification; a removed domain loses it, and then the other claim can be proven.
    r = owner.patch(f"/auth/idps/{owner_idp['id']}", json={"emailDomains": [other, domain]})
    assert r.status_code == 200 and claim_of(r.json(), domain)["status"] == "verified", r.text
    r = owner.patch(f"/auth/idps/{owner_idp['id']}", json={"emailDomains": [other]})
    assert r.status_code == 200 and [c["domain"] for c in r.json()["domainVerifications"]] == [other], r.text
    assert_error(discover(api_url, f"carol@{domain}"), 404)
    assert verify(squatter, squatter_idp, domain).json()["status"] == "verified"
    location = discover(api_url, f"carol@{domain}").headers["location"]
    assert parse_qs(urlsplit(location).query)["client_id"] == [squatter_idp["clientId"]]

    # Deleting a provider frees its domains.
    assert squatter.delete(f"/auth/idps/{squatter_idp['id']}").status_code == 200
    assert_error(discover(api_url, f"carol@{domain}"), 404)
    assert manual_idp(owner, oidc_issuer, [domain]).status_code == 201

    assert_error(manual_idp(owner, oidc_issuer, ["not a domain"]), 422)
    events = owner.get("/org/audit-events", params={"action": "identity_provider.verify_domain"}).json()["items"]
    assert sorted((e["outcome"], e["details"].get("reason")) for e in events) == [
        ("failure", "record_missing"), ("success", None)]
    events = squatter.get("/org/audit-events", params={"action": "identity_provider.verify_domain"}).json()["items"]
    assert sorted((e["outcome"], e["details"].get("reason")) for e in events) == [
        ("failure", "domain_taken"), ("failure", "record_mismatch"), ("success", None)]


def test_concurrent_verifications_of_one_domain_leave_exactly_one_winner(api_url: str, oidc_issuer: str,
                                                                         dns_server: Dnsmasq) -> None:
    owners = [signup(api_url) for _ in range(4)]
    domain = unique_domain()
    idps = [manual_idp(o, oidc_issuer, [domain]).json() for o in owners]
    for idp in idps:  # every claimant manages to publish a record: only one may win
        claim = claim_of(idp, domain)
        dns_server.add(claim["recordName"], claim["recordValue"])
    with ThreadPoolExecutor(len(owners)) as pool:
        answers = list(pool.map(lambda pair: verify(*pair, domain), zip(owners, idps, strict=True)))
    assert sorted(r.status_code for r in answers) == [200, 409, 409, 409], [r.text for r in answers]
    for r in answers:
        if r.status_code == 409:
            assert_error(r, 409, "domain_taken")
    verified = [idp for o, idp in zip(owners, idps, strict=True)
                if claim_of(o.get(f"/auth/idps/{idp['id']}").json(), domain)["status"] == "verified"]
    assert len(verified) == 1
    location = discover(api_url, f"dave@{domain}").headers["location"]
    assert parse_qs(urlsplit(location).query)["client_id"] == [verified[0]["clientId"]]


def test_a_dns_server_without_an_answer_verifies_nothing(api_url: str, oidc_issuer: str,
                                                         dns_server: Dnsmasq) -> None:
    owner = signup(api_url)
    domain = f"corp-{new_id().lower()}.test"  # the test DNS server refuses names outside .example
    idp = manual_idp(owner, oidc_issuer, [domain]).json()
    err = assert_error(verify(owner, idp, domain), 503, "dns_unavailable")
    assert err["details"]["retryable"] is True
    claim = claim_of(owner.get(f"/auth/idps/{idp['id']}").json(), domain)
    assert claim["status"] == "pending" and "DNS gave no answer" in claim["lastCheckError"]
    assert_error(discover(api_url, f"erin@{domain}"), 404)


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
