"""The pages the server's emails link to, in a real browser against a real server with real SMTP (aiosmtpd):
the sign-up verification link verifies the address (once: opened again, the page says the link is spent), and
"Forgot your password?" on the sign-in page sends a reset link whose page sets a new password. Each page takes
the token out of the address bar as soon as it has read it."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from sailplane.config import Settings
from sailplane.iam.identity.service import BAD_LINK
from tests.conftest import Mailbox
from tests.identity.test_email_flows import latest
from tests.support.actors import PASSWORD, assert_error, login, signup

LINK_RE = re.compile(r"(http\S+/(?:verify-email|reset-password)\?token=[A-Za-z0-9_\-]+)")


def link_in(body: str, settings: Settings, base: str) -> str:
    match = LINK_RE.search(body)
    assert match, body
    return match.group(1).replace(settings.public_url, base, 1)  # the test server listens elsewhere


def test_the_verification_link_verifies_once(server: Any, api_url: str, settings: Settings, mailbox: Mailbox,
                                            browser: Any) -> None:
    actor = signup(api_url)
    assert actor.email is not None and actor.get("/me").json()["user"]["emailVerified"] is False
    link = link_in(latest(mailbox, actor.email, "Verify your email"), settings, server.url)
    assert link.startswith(f"{server.url}/verify-email?token=")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(link)
        expect(page.get_by_role("status")).to_have_text(f"{actor.email} is verified. Thank you.")
        expect(page).to_have_url(f"{server.url}/verify-email")  # the token left the address bar
        assert actor.get("/me").json()["user"]["emailVerified"] is True
        expect(page.get_by_role("link", name="Sign in")).to_be_visible()

        again = context.new_page()
        again.goto(link)
        expect(again.get_by_role("alert")).to_contain_text(BAD_LINK)
        again.goto(f"{server.url}/verify-email")
        expect(again.get_by_role("alert")).to_have_text("This page needs the link from the verification email.")
    finally:
        context.close()


def test_forgot_password_sends_a_link_whose_page_sets_a_new_one(server: Any, api_url: str, settings: Settings,
                                                               mailbox: Mailbox, browser: Any) -> None:
    actor = signup(api_url)
    assert actor.email is not None
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{server.url}/signin")
        page.get_by_role("button", name="Forgot your password?").click()
        expect(page.get_by_role("alert")).to_have_text("Enter your email address first.")
        page.get_by_label("Email").fill(actor.email)
        page.get_by_role("button", name="Forgot your password?").click()
        expect(page.get_by_role("status")).to_contain_text("a link to choose a new password is on its way")

        link = link_in(latest(mailbox, actor.email, "Reset your Sailplane password"), settings, server.url)
        page.goto(link)
        expect(page).to_have_url(f"{server.url}/reset-password")  # the token left the address bar
        form = page.get_by_role("form", name="Reset password")
        form.get_by_label("New password", exact=True).fill("reset-new-password")
        form.get_by_label("Repeat new password").fill("something-else")
        form.get_by_role("button", name="Set password").click()
        expect(page.get_by_role("alert")).to_have_text("The two new passwords differ.")
        form.get_by_label("Repeat new password").fill("reset-new-password")
        form.get_by_role("button", name="Set password").click()
        expect(page.get_by_role("status")).to_contain_text("Your password is changed")
        assert_error(login(api_url, actor.email, PASSWORD), 401)
        assert_error(actor.get("/me"), 401)  # every earlier login ended

        page.get_by_role("link", name="Sign in").click()
        page.get_by_label("Email").fill(actor.email)
        page.get_by_label("Password").fill("reset-new-password")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{server.url}/teams")
    finally:
        context.close()
