"""Identity providers in the console, in a real browser against a real server and a real OpenID provider
(oidc-provider on loopback, tests/sso/op): automatic set-up from the provider's URL (a URL without a scheme first:
the API's field error beside it; then a provider without registration: the API's reason), the connection test's
checks in the page, a provider added by hand that fails its test with the reason, disabling and deleting one,
and copying the redirect URI; then a provider's email domain proved from the page (the TXT record it names,
published in a real DNS server) and its client secret rotated from the page, an SSO sign-in through it before
and after each rotation showing which secret is in use. Screenshots: the providers page after the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from sailplane.config import Settings
from tests.sso.browser import sign_in_at_provider
from tests.sso.conftest import oidc_issuer, oidc_issuer_without_dcr
from tests.sso.test_domain_routing import claim_of, discover, unique_domain
from tests.sso.test_sso_login import callback_on_our_server, start
from tests.support.actors import PASSWORD, Actor, assert_error, signup, unique_email
from tests.support.dnsmasq import Dnsmasq

__all__ = ["oidc_issuer", "oidc_issuer_without_dcr"]  # the real OpenID providers, as fixtures of this module


def sign_in_page(page: Any, base: str, owner: Actor) -> None:
    assert owner.email is not None
    page.goto(f"{base}/identity-providers")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base}/identity-providers")


def sso_sign_in(api_url: str, settings: Settings, idp_id: str) -> httpx.Response:
    """A whole SSO sign-in through the provider (the test playing the browser): our callback's answer."""
    subject = f"rot-{unique_email('s').split('@')[0]}"
    return callback_on_our_server(api_url, settings, sign_in_at_provider(start(api_url, idp_id), settings.public_url,
                                                                         subject))


def test_set_up_test_disable_and_delete_identity_providers(
        server: Any, api_url: str, oidc_issuer: str, oidc_issuer_without_dcr: str, browser: Any,
        artifacts: Path) -> None:
    owner = signup(api_url)
    assert owner.email is not None
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/identity-providers")
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{server.url}/identity-providers")
        expect(page.get_by_text("No identity providers yet")).to_be_visible()

        auto = page.get_by_role("form", name="Set up a provider automatically")
        no_scheme = owner.post("/auth/idps/auto-setup", json={"name": "Corporate SSO",
                                                               "providerUrl": "idp.example.com"})
        assert no_scheme.status_code == 422
        auto.get_by_label("Name").fill("Corporate SSO")
        auto.get_by_label("Provider URL").fill("idp.example.com")
        auto.get_by_role("button", name="Set up provider").click()
        expect(auto.locator("#providerUrl-error")).to_have_text(
            no_scheme.json()["error"]["details"]["fieldErrors"]["providerUrl"])

        auto.get_by_label("Provider URL").fill(oidc_issuer_without_dcr)
        auto.get_by_role("button", name="Set up provider").click()
        expect(auto.get_by_role("alert")).to_contain_text("no registration endpoint")
        assert owner.get("/auth/idps").json()["items"] == []

        auto.get_by_label("Provider URL").fill(oidc_issuer)
        auto.get_by_label("Email domains").fill("corp.example")
        auto.get_by_role("button", name="Set up provider").click()
        corporate = page.get_by_role("article", name="Corporate SSO")
        expect(corporate).to_contain_text("set up automatically")
        expect(corporate).to_contain_text("Set (never shown)")
        expect(corporate).to_contain_text("corp.example")
        expect(corporate).to_contain_text("Never tested")
        [created] = owner.get("/auth/idps").json()["items"]
        assert created["issuer"] == oidc_issuer and created["autoConfigured"] is True

        corporate.get_by_role("button", name="Test connection").click()
        result = corporate.get_by_role("region", name="Test result of Corporate SSO")
        expect(result).to_contain_text("The provider answered every check.")
        expect(result).to_contain_text("✓ discovery")
        expect(result).to_contain_text("✓ jwks")
        expect(corporate).to_contain_text("Passed")
        page.bring_to_front()  # the clipboard is only the focused page's (other tests' pages share the browser)
        corporate.get_by_role("button", name="Copy redirect URI").click()
        expect(corporate.get_by_role("button", name="Copied", exact=True)).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == created["redirectUri"]

        # By hand: a server that is not an OpenID provider fails its test, with the reason.
        page.get_by_role("button", name="Add manually").click()
        manual = page.get_by_role("form", name="Add a provider manually")
        manual.get_by_label("Name").fill("Not a provider")
        manual.get_by_label("Issuer").fill(server.url)
        manual.get_by_label("Client ID").fill("static-client")
        manual.get_by_role("button", name="Add provider").click()
        broken = page.get_by_role("article", name="Not a provider")
        broken.get_by_role("button", name="Test connection").click()
        failed = broken.get_by_role("region", name="Test result of Not a provider")
        expect(failed).to_contain_text("The provider failed a check:")
        expect(failed).to_contain_text("✗ discovery")
        expect(failed).to_contain_text("HTTP 404")

        broken.get_by_role("button", name="Disable").click()
        expect(broken.locator("h2")).to_contain_text("disabled")
        assert {i["name"]: i["status"] for i in owner.get("/auth/idps").json()["items"]} == {
            "Corporate SSO": "active", "Not a provider": "disabled"}
        page.screenshot(path=str(artifacts / "60-identity-providers.png"), full_page=True)
        broken.get_by_role("button", name="Delete").click()
        broken.get_by_role("button", name="Yes, delete").click()
        expect(broken).to_have_count(0)
        assert [i["name"] for i in owner.get("/auth/idps").json()["items"]] == ["Corporate SSO"]
    finally:
        context.close()


def test_verify_a_providers_email_domain_and_rotate_its_client_secret(
        server: Any, api_url: str, settings: Settings, oidc_issuer: str, dns_server: Dnsmasq, browser: Any,
        artifacts: Path) -> None:
    owner = signup(api_url)
    domain = unique_domain()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in_page(page, server.url, owner)
        # The provider's registered client (tests/sso/op): client ID "static-client", secret "static-secret".
        page.get_by_role("button", name="Add manually").click()
        manual = page.get_by_role("form", name="Add a provider manually")
        manual.get_by_label("Name").fill("Static SSO")
        manual.get_by_label("Issuer").fill(oidc_issuer)
        manual.get_by_label("Client ID").fill("static-client")
        manual.get_by_label("Client secret").fill("static-secret")
        manual.get_by_label("Email domains").fill(domain)
        manual.get_by_role("button", name="Add provider").click()
        card = page.get_by_role("article", name="Static SSO")
        expect(card).to_contain_text("Set (never shown)")
        [idp] = owner.get("/auth/idps").json()["items"]
        assert idp["hasClientSecret"] is True and idp["secretRotatedAt"] is None
        assert sso_sign_in(api_url, settings, idp["id"]).status_code == 200  # the secret it was created with works

        # The email domain: pending, with the TXT record to publish; checked before it is published, the API's
        # reason is in the page and nothing routes to the provider.
        claim = claim_of(idp, domain)
        domains = card.get_by_role("region", name="Email domains of Static SSO")
        expect(domains.get_by_role("listitem", name=domain)).to_contain_text("pending")
        expect(domains).to_contain_text(claim["recordName"])
        expect(domains).to_contain_text(claim["recordValue"])
        domains.get_by_role("button", name=f"Verify {domain}").click()
        expect(domains.get_by_role("alert")).to_contain_text(f"{domain} is not verified: no TXT record at "
                                                             f"{claim['recordName']}")
        assert claim_of(owner.get(f"/auth/idps/{idp['id']}").json(), domain)["status"] == "pending"
        assert_error(discover(api_url, f"alice@{domain}"), 404)

        dns_server.add(claim["recordName"], claim["recordValue"])  # what the domain's admin does
        domains.get_by_role("button", name=f"Verify {domain}").click()
        expect(domains.get_by_role("status")).to_have_text(f"{domain} is verified: its members sign in through "
                                                           "Static SSO.")
        expect(domains.get_by_role("listitem", name=domain)).to_contain_text("verified")
        expect(domains.get_by_role("button", name=f"Verify {domain}")).to_have_count(0)
        expect(domains.get_by_role("alert")).to_have_count(0)
        assert claim_of(owner.get(f"/auth/idps/{idp['id']}").json(), domain)["status"] == "verified"
        routed = discover(api_url, f"alice@{domain}")  # sign-in by email address now goes to this provider
        assert routed.status_code == 302 and routed.headers["location"].startswith(oidc_issuer)

        # Rotate the secret, by keyboard: the form opens with its field focused; an empty secret is refused by
        # the API, in its words beside the field.
        card.get_by_role("button", name="Rotate secret").click()
        rotate = card.get_by_role("form", name="Rotate the client secret of Static SSO")
        secret_field = rotate.get_by_label("New client secret")
        expect(secret_field).to_be_focused()
        empty = owner.post(f"/auth/idps/{idp['id']}/rotate-secret", json={"clientSecret": ""})
        assert empty.status_code == 422
        page.keyboard.press("Enter")
        expect(rotate.locator("#clientSecret-error")).to_have_text(
            empty.json()["error"]["details"]["fieldErrors"]["clientSecret"])
        assert owner.get(f"/auth/idps/{idp['id']}").json()["secretRotatedAt"] is None

        # A secret the provider does not know: from now on sign-in sends it (not the old one), and the
        # provider refuses the code exchange.
        page.keyboard.type("not-the-providers-secret")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status").filter(has_text="was replaced")).to_have_text(
            "The client secret of Static SSO was replaced: sign-ins through it use the new one, and the old one "
            "is no longer used.")
        expect(rotate).to_have_count(0)
        expect(card).to_contain_text("Set (never shown) · replaced")
        described = owner.get(f"/auth/idps/{idp['id']}").json()
        assert described["hasClientSecret"] is True and described["secretRotatedAt"] is not None
        assert "not-the-providers-secret" not in page.content()
        refused = sso_sign_in(api_url, settings, idp["id"])
        assert_error(refused, 401, "invalid_id_token")
        assert "the token endpoint refused the code (HTTP 401)" in refused.json()["error"]["message"]

        # Back to the provider's own secret: sign-in works again.
        card.get_by_role("button", name="Rotate secret").click()
        rotate.get_by_label("New client secret").fill("static-secret")
        rotate.get_by_role("button", name="Replace secret").click()
        expect(rotate).to_have_count(0)
        signed_in = sso_sign_in(api_url, settings, idp["id"])
        assert signed_in.status_code == 200, signed_in.text
        assert Actor(api_url, signed_in.json()["token"]).get("/me").json()["organizationId"] == owner.org_id
        actions = [e["action"] for e in owner.get("/org/audit-events", params={
            "action": "identity_provider.rotate_secret"}).json()["items"]]
        assert actions == ["identity_provider.rotate_secret"] * 2
        page.screenshot(path=str(artifacts / "61-identity-provider-domain-and-secret.png"), full_page=True)
    finally:
        context.close()
