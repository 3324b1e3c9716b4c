"""The account's own security in the console, in a real browser against a real server: two-factor
authentication turned on from the QR code the server draws (served inline, nothing from elsewhere) and confirmed
with a code computed here (pyotp), the recovery codes shown once and one of them signing in at the MFA step, then
turned off with a current code; signing out ends the login at the server. A password reset by an admin must be
changed at the next sign-in before anything else, and the account page changes a password (ending the other
logins). New recovery codes, asked for with a current code, are shown once (copied whole) and void the old ones: an
old code no longer signs in, a new one does. Screenshots: the enrolment's QR code and the recovery codes."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pyotp
from playwright.sync_api import expect

from tests.accounts.test_me_and_users import make_user
from tests.mfa.helpers import code_at, fresh_ip
from tests.support.actors import PASSWORD, Actor, assert_error, login, signup


def sign_in(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def stored_token(page: Any) -> str | None:
    return page.evaluate("(JSON.parse(localStorage.getItem('sailplane.auth')) || {}).token || null")  # type: ignore[no-any-return]


def test_turn_on_two_factor_sign_in_with_a_recovery_code_turn_it_off_and_sign_out(
        server: Any, api_url: str, browser: Any, artifacts: Path) -> None:
    owner = signup(api_url)
    assert owner.email is not None
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []
    context.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server.url, "data:")) else None)
    try:
        page = context.new_page()
        sign_in(page, server.url, owner.email, PASSWORD)
        expect(page).to_have_url(f"{server.url}/teams")
        page.get_by_role("link", name="Account").click()
        expect(page).to_have_url(f"{server.url}/account")
        mfa = page.get_by_role("region", name="Two-factor authentication")
        expect(mfa).to_contain_text("Off: your password alone signs you in.")

        mfa.get_by_role("button", name="Set up an authenticator app").click()
        qr = mfa.get_by_role("img", name="QR code for your authenticator app")
        expect(qr).to_be_visible()
        assert qr.get_attribute("src").startswith("data:image/svg+xml;base64,")
        assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", qr.element_handle())  # it drew
        secret = mfa.get_by_label("Secret key").inner_text().strip()
        totp = pyotp.TOTP(secret)
        page.screenshot(path=str(artifacts / "account-mfa-enrol.png"))

        confirm = mfa.get_by_role("form", name="Confirm authenticator")
        wrong = "000000" if totp.now() != "000000" else "111111"
        confirm.get_by_label("Code").fill(wrong)
        confirm.get_by_role("button", name="Turn on").click()
        expect(mfa.get_by_role("alert").first).to_be_visible()
        assert owner.get("/me/mfa").json()["enabled"] is False

        confirm.get_by_label("Code").fill(totp.now())
        confirm.get_by_role("button", name="Turn on").click()
        codes_region = mfa.get_by_role("region", name="Recovery codes")
        expect(codes_region).to_contain_text("shown only this once")
        codes = [c.strip() for c in codes_region.locator("code").all_inner_texts()]
        status = owner.get("/me/mfa").json()
        assert status["enabled"] is True and len(codes) == status["recoveryCodesRemaining"] >= 8
        expect(mfa).to_contain_text(f"On: an authenticator app is set up; {len(codes)} recovery codes left.")
        page.screenshot(path=str(artifacts / "account-recovery-codes.png"))
        page.reload()
        expect(mfa).to_contain_text("On: an authenticator app is set up")
        expect(mfa.get_by_role("region", name="Recovery codes")).to_have_count(0)  # shown once only

        # Sign out: the login ends at the server too.
        token = stored_token(page)
        assert token is not None
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/signin"))
        assert stored_token(page) is None
        assert_error(Actor(api_url, token).get("/me"), 401)
        page.goto(f"{server.url}/teams")
        expect(page).to_have_url(f"{server.url}/signin?next=%2Fteams")

        # Signing in now asks for the second factor; a recovery code does, once.
        sign_in(page, server.url, owner.email, PASSWORD)
        step = page.get_by_role("form", name="Two-factor authentication")
        step.get_by_label("Code").fill(codes[0])
        step.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(f"{server.url}/teams")
        page.goto(f"{server.url}/account")
        expect(mfa).to_contain_text(f"{len(codes) - 1} recovery codes left")

        off = mfa.get_by_role("form", name="Turn off two-factor authentication")
        off.get_by_label("Current code").fill(totp.at(time.time() + 30))  # the next step: the last one is spent
        off.get_by_role("button", name="Turn off").click()
        expect(mfa).to_contain_text("Off: your password alone signs you in.")
        assert Actor(api_url, stored_token(page)).get("/me/mfa").json()["enabled"] is False
        assert "token" in login(api_url, owner.email, PASSWORD).json()  # no challenge any more
        assert outside == []  # nothing from a CDN or any other origin
    finally:
        context.close()


def test_regenerated_recovery_codes_are_shown_once_and_the_old_ones_stop_working(
        server: Any, api_url: str, browser: Any, artifacts: Path) -> None:
    owner = signup(api_url)
    assert owner.email is not None
    ip = fresh_ip()  # the failed codes below count against this address, not every test's 127.0.0.1
    owner.extra_headers["X-Forwarded-For"] = ip
    secret = owner.post("/me/mfa/totp").json()["secret"]
    first = owner.post("/me/mfa/totp/verify", json={"code": code_at(secret, -1)})
    assert first.status_code == 200
    old_codes = first.json()["recoveryCodes"]
    # One old code spent at a sign-in, so the count shows the regeneration fills it up again.

    def recovery_sign_in(code: str) -> httpx.Response:
        """Password, then the recovery code at the MFA step (POST /auth/login/mfa)."""
        assert owner.email is not None
        challenge = login(api_url, owner.email, PASSWORD, **{"X-Forwarded-For": ip}).json()["challengeToken"]
        return Actor(api_url, extra_headers={"X-Forwarded-For": ip}).post(
            "/auth/login/mfa", json={"challengeToken": challenge, "recoveryCode": code})

    assert recovery_sign_in(old_codes[0]).status_code == 200
    context = browser.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers={"X-Forwarded-For": ip})
    try:
        page = context.new_page()
        sign_in(page, server.url, owner.email, PASSWORD)
        page.get_by_role("form", name="Two-factor authentication").get_by_label("Code").fill(old_codes[1])
        page.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(f"{server.url}/teams")
        page.goto(f"{server.url}/account")
        mfa = page.get_by_role("region", name="Two-factor authentication")
        expect(mfa).to_contain_text(f"{len(old_codes) - 2} recovery codes left")

        regenerate = mfa.get_by_role("form", name="Regenerate recovery codes")
        expect(regenerate).to_contain_text("the old codes stop working at once")
        # A wrong code: the API's words beside the field, and the old codes stay.
        wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
        regenerate.get_by_label("Authenticator code").fill(wrong)
        regenerate.get_by_role("button", name="Regenerate recovery codes").click()
        expect(regenerate.locator("#regenerateCode-error")).to_have_text("is not valid")
        expect(regenerate.get_by_label("Authenticator code")).to_have_attribute("aria-invalid", "true")
        expect(mfa.get_by_role("region", name="Recovery codes")).to_have_count(0)
        assert owner.get("/me/mfa").json()["recoveryCodesRemaining"] == len(old_codes) - 2

        # By keyboard: the code, then Enter.
        regenerate.get_by_label("Authenticator code").fill(code_at(secret, 0))
        regenerate.get_by_label("Authenticator code").press("Enter")
        codes_region = mfa.get_by_role("region", name="Recovery codes")
        expect(codes_region).to_contain_text("shown only this once")
        expect(codes_region).to_contain_text("Your old recovery codes no longer work")
        new_codes = [c.strip() for c in codes_region.locator("code").all_inner_texts()]
        assert len(new_codes) == len(old_codes) and not set(new_codes) & set(old_codes)
        expect(mfa).to_contain_text(f"{len(new_codes)} recovery codes left")  # full again
        assert owner.get("/me/mfa").json()["recoveryCodesRemaining"] == len(new_codes)
        expect(mfa.get_by_role("form", name="Regenerate recovery codes")).to_have_count(0)  # while shown
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        page.bring_to_front()
        codes_region.get_by_role("button", name="Copy recovery codes").click()
        expect(codes_region.get_by_role("button", name="Copied", exact=True)).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == "\n".join(new_codes)
        page.screenshot(path=str(artifacts / "account-recovery-codes-regenerated.png"))
        codes_region.get_by_role("button", name="I have saved them").click()
        expect(codes_region).to_have_count(0)
        page.reload()
        expect(mfa).to_contain_text(f"{len(new_codes)} recovery codes left")
        expect(mfa.get_by_role("region", name="Recovery codes")).to_have_count(0)  # shown once only

        # Signing in again: an old (unused) code is refused, a new one signs in.
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/signin"))
        sign_in(page, server.url, owner.email, PASSWORD)
        step = page.get_by_role("form", name="Two-factor authentication")
        step.get_by_label("Code").fill(old_codes[2])
        step.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("alert")).to_contain_text("not valid")
        assert stored_token(page) is None
        assert_error(recovery_sign_in(old_codes[3]), 401, "invalid_code")
        step.get_by_label("Code").fill(new_codes[0])
        step.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(f"{server.url}/teams")
        assert Actor(api_url, stored_token(page)).get("/me/mfa").json()["recoveryCodesRemaining"] == len(new_codes) - 1
    finally:
        context.close()


def test_a_reset_password_is_changed_at_sign_in_and_the_account_page_changes_it(
        server: Any, api_url: str, browser: Any) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    assert member.email is not None
    temporary = owner.post(f"/users/{member.user_id}/reset-password").json()["temporaryPassword"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{server.url}/sessions")
        page.get_by_label("Email").fill(member.email)
        page.get_by_label("Password").fill(temporary)
        page.get_by_role("button", name="Sign in", exact=True).click()
        form = page.get_by_role("form", name="Choose a new password")
        expect(form).to_contain_text("choose a new one to continue")
        form.get_by_label("New password", exact=True).fill("first-new-password")
        form.get_by_label("Repeat new password").fill("another-password")
        form.get_by_role("button", name="Change password and continue").click()
        expect(page.get_by_role("alert")).to_have_text("The two new passwords differ.")
        form.get_by_label("New password", exact=True).fill(temporary)  # the API's own rule, in its words
        form.get_by_label("Repeat new password").fill(temporary)
        form.get_by_role("button", name="Change password and continue").click()
        expect(page.get_by_role("alert")).to_contain_text("must differ from the current password")
        assert stored_token(page) is None  # not signed in until it is changed

        form.get_by_label("New password", exact=True).fill("first-new-password")
        form.get_by_label("Repeat new password").fill("first-new-password")
        form.get_by_role("button", name="Change password and continue").click()
        expect(page).to_have_url(f"{server.url}/sessions")
        expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
        assert_error(login(api_url, member.email, temporary), 401)
        other = login(api_url, member.email, "first-new-password").json()
        assert other["mustChangePassword"] is False

        # The account page: the current password is checked (beside its field), then every other login ends.
        page.goto(f"{server.url}/account")
        change = page.get_by_role("form", name="Change password")
        change.get_by_label("Current password").fill("not-my-password")
        change.get_by_label("New password", exact=True).fill("second-new-password")
        change.get_by_label("Repeat new password").fill("second-new-password")
        change.get_by_role("button", name="Change password").click()
        expect(change.locator("#currentPassword-error")).to_have_text("is incorrect")
        change.get_by_label("Current password").fill("first-new-password")
        change.get_by_role("button", name="Change password").click()
        expect(change.get_by_role("status")).to_have_text("Password changed. Your other sign-ins have ended.")
        assert_error(Actor(api_url, other["token"]).get("/me"), 401)
        assert Actor(api_url, stored_token(page)).get("/me").status_code == 200  # this one goes on
        assert login(api_url, member.email, "second-new-password").status_code == 200
    finally:
        context.close()


def test_an_organization_that_requires_mfa_sends_the_person_to_enrol_first(
        server: Any, api_url: str, browser: Any) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    assert member.email is not None
    assert owner.patch("/org", json={"requireMfa": True}).status_code == 200
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, server.url, member.email, PASSWORD)
        expect(page).to_have_url(f"{server.url}/account?enroll=required")
        expect(page.get_by_role("status").first).to_contain_text("Your organization requires two-factor")
        token = stored_token(page)
        assert_error(Actor(api_url, token).get("/org/teams"), 403, "mfa_enrollment_required")

        mfa = page.get_by_role("region", name="Two-factor authentication")
        expect(mfa).to_contain_text("Your organization requires it.")
        mfa.get_by_role("button", name="Set up an authenticator app").click()
        secret = mfa.get_by_label("Secret key").inner_text().strip()
        mfa.get_by_label("Code").fill(pyotp.TOTP(secret).now())
        mfa.get_by_role("button", name="Turn on").click()
        expect(mfa.get_by_role("region", name="Recovery codes")).to_be_visible()
        assert Actor(api_url, token).get("/org/teams").status_code == 200  # the login may do everything now
        page.get_by_role("link", name="Teams", exact=True).click()
        expect(page.get_by_role("heading", name="Teams")).to_be_visible()
        expect(page.get_by_role("alert")).to_have_count(0)
    finally:
        context.close()
