"""Identity providers in the console, in a real browser against a real server and a real OpenID provider
(oidc-provider on loopback, tests/sso/op): automatic set-up from the provider's URL (a URL without a scheme first:
the API's field error beside it; then a provider without registration: the API's reason), the connection test's
checks in the page, a provider added by hand that fails its test with the reason, disabling and deleting one,
and copying the redirect URI. Screenshot: the providers page after the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.sso.conftest import oidc_issuer, oidc_issuer_without_dcr
from tests.support.actors import PASSWORD, signup

__all__ = ["oidc_issuer", "oidc_issuer_without_dcr"]  # the real OpenID providers, as fixtures of this module


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
