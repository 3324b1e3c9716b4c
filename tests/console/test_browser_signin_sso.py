"""Single sign-on from the console's sign-in page, in a real browser through a real OpenID provider (oidc-provider
on loopback, tests/sso/op) and a real DNS server (the email domain's TXT proof): the email's domain picks the
provider, the browser signs in there and lands back in the console signed in, on the page it asked for. The
one-time code comes back in the URL's fragment and leaves the address bar at once; a replayed code, or an answer
this tab did not start (a forged link), signs nobody in. With MFA on, the second factor is asked on the way
back. An unknown domain is said in the page."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
from playwright.sync_api import expect

from sailplane.config import Settings
from tests.console.test_browser_account import stored_token
from tests.sso.conftest import oidc_issuer
from tests.sso.test_domain_routing import organization_with_sso, unique_domain
from tests.support.actors import Actor, assert_error
from tests.support.dnsmasq import Dnsmasq

# The real OpenID provider, as a fixture of this module (the DNS server is the session's one: tests/conftest.py).
__all__ = ["oidc_issuer"]


def sign_in_at_provider(page: Any, login: str) -> None:
    """The provider's own pages (oidc-provider's development interactions): login, then consent."""
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any-password")
    page.locator("button[type=submit]").click()
    page.get_by_role("button", name="Continue").click()


def test_sso_from_the_sign_in_page_lands_signed_in_and_its_code_works_once(
        server: Any, api_url: str, settings: Settings, oidc_issuer: str, dns_server: Dnsmasq, browser: Any,
        artifacts: Path) -> None:
    owner, domain = organization_with_sso(api_url, oidc_issuer, dns_server)
    email = f"alice@{domain}"

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # The provider knows our public URL (the registered redirect); this server listens on another port, as if
    # behind a proxy: the browser's requests to the public URL go to it.
    context.route(f"{settings.public_url}/**", lambda route: route.fulfill(
        status=302, headers={"Location": route.request.url.replace(settings.public_url, server.url, 1)}))
    seen: list[str] = []
    try:
        page = context.new_page()
        page.on("framenavigated", lambda frame: seen.append(frame.url) if frame == page.main_frame else None)
        page.goto(f"{server.url}/sessions")
        expect(page).to_have_url(f"{server.url}/signin?next=%2Fsessions")

        # An address whose domain no provider proved: said in the page, back at the sign-in form.
        page.get_by_label("Email").fill(f"bob@{unique_domain()}")
        page.get_by_role("button", name="Sign in with SSO").click()
        expect(page.get_by_role("alert")).to_contain_text("identity provider")
        expect(page).to_have_url(f"{server.url}/signin/sso")
        expect(page.get_by_role("form", name="Sign in")).to_be_visible()

        page.goto(f"{server.url}/signin?next=%2Fsessions")
        page.get_by_label("Email").fill(email)
        page.get_by_role("button", name="Sign in with SSO").click()
        expect(page).to_have_url(re.compile(re.escape(oidc_issuer)))
        sign_in_at_provider(page, email)
        expect(page).to_have_url(f"{server.url}/sessions")
        expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
        expect(page.locator(".account")).to_contain_text(email)
        page.screenshot(path=str(artifacts / "signin-sso.png"))

        # It came back with a one-time code in the fragment (never sent to a server), not a token.
        [landing] = {u for u in seen if u.startswith(f"{server.url}/signin/sso#code=")}  # one answer
        answer = parse_qs(urlsplit(landing).fragment)
        assert set(answer) == {"code", "state"}
        assert not any("token" in u for u in seen)
        token = stored_token(page)
        me = Actor(api_url, token).get("/me").json()
        assert me["user"]["email"] == email and me["loginOrganizationId"] == owner.org_id

        # Replayed: the code is spent (and this tab has no sign-in pending, so the page does not even try).
        assert_error(httpx.post(f"{api_url}/auth/sso/token",
                                json={"code": answer["code"][0], "codeVerifier": "v" * 43}), 401, "invalid_sso_code")
        # Someone who found the address (in a history, say) opens it in their own browser.
        other = browser.new_context()
        try:
            replay = other.new_page()
            replay.goto(landing)
            expect(replay.get_by_role("alert")).to_contain_text("No single sign-on was started in this tab")
            expect(replay).to_have_url(f"{server.url}/signin/sso")  # the code left the address bar
            assert replay.evaluate("localStorage.getItem('sailplane.auth')") is None
        finally:
            other.close()

        # A forged link (login CSRF: someone else's sign-in answer) while this tab's own sign-in is pending.
        victim = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            tab = victim.new_page()
            tab.goto(f"{server.url}/signin")
            tab.get_by_label("Email").fill(f"carol@{domain}")
            tab.get_by_role("button", name="Sign in with SSO").click()
            expect(tab).to_have_url(re.compile(re.escape(oidc_issuer)))
            tab.goto(f"{server.url}/signin/sso#code=attackers-code&state=attackers-state")
            expect(tab.get_by_role("alert")).to_contain_text("not the one this tab asked for")
            expect(tab.get_by_role("form", name="Sign in")).to_be_visible()
            assert tab.evaluate("localStorage.getItem('sailplane.auth')") is None
        finally:
            victim.close()

        # With MFA on, the way back asks for the second factor before the console keeps the login.
        alice = Actor(api_url, token)
        secret = alice.post("/me/mfa/totp").json()["secret"]
        assert alice.post("/me/mfa/totp/verify", json={"code": pyotp.TOTP(secret).now()}).status_code == 200
        page.get_by_role("button", name="Sign out").click()
        context.clear_cookies()  # the provider asks again too
        page.goto(f"{server.url}/signin")
        page.get_by_label("Email").fill(email)
        page.get_by_role("button", name="Sign in with SSO").click()
        expect(page).to_have_url(re.compile(re.escape(oidc_issuer)))
        sign_in_at_provider(page, email)
        step = page.get_by_role("form", name="Two-factor authentication")
        expect(step).to_be_visible()
        assert stored_token(page) is None
        step.get_by_label("Code").fill(pyotp.TOTP(secret).at(time.time() + 30))  # the next step: now's is spent
        step.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(f"{server.url}/teams")
        assert Actor(api_url, stored_token(page)).get("/me").json()["loginOrganizationId"] == owner.org_id

        events = owner.get("/org/audit-events", params={"action": "auth.sso.exchange"}).json()["items"]
        assert [e["outcome"] for e in events].count("success") == 2
    finally:
        context.close()
