"""Service accounts and API keys in the console, in a real browser against a real server: create a service account
(an empty name first: the API's field error beside the field), create a key (a zero lifetime first: the API's
error beside it), see its secret once and copy it with the button (the clipboard holds exactly the key, and the
key works against the API), not shown again after a reload; revoke it in the page (the API refuses it from then
on), then delete the account (its other key stops working). Screenshots: the key shown once, the keys list."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.support.actors import PASSWORD, Actor, signup
from tests.support.server import LiveServer


def test_service_account_and_api_key_lifecycle_in_the_page(
        server: LiveServer, api_url: str, browser: Any, artifacts: Path) -> None:
    owner = signup(api_url)
    assert owner.email is not None
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/service-accounts")
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{server.url}/service-accounts")
        expect(page.get_by_text("No service accounts yet")).to_be_visible()

        form = page.get_by_role("form", name="Create service account")
        refused = owner.post("/org/service-accounts", json={"name": ""})
        assert refused.status_code == 422
        form.get_by_role("button", name="Create service account").click()
        expect(form.locator("#name-error")).to_have_text(refused.json()["error"]["details"]["fieldErrors"]["name"])
        form.get_by_label("Service account name").fill("ci-bot")
        form.get_by_label("Description").fill("Deploys from CI")
        form.get_by_role("button", name="Create service account").click()
        expect(page).to_have_url(re.compile(r"/service-accounts/[A-Z0-9]+$"))
        account_id = page.url.rsplit("/", 1)[1]
        expect(page.get_by_role("heading", name="ci-bot")).to_be_visible()
        expect(page.get_by_text("No API keys yet")).to_be_visible()
        owner.put(f"/org/policies/{account_id}", json={"permissions": ["CanViewMembers"]})

        # A zero lifetime: the API's words beside the field; then a key for 30 days.
        key_form = page.get_by_role("form", name="Create API key")
        zero = owner.post(f"/org/service-accounts/{account_id}/api-keys", json={"name": "deploy",
                                                                               "expiresInSeconds": 0})
        assert zero.status_code == 422
        key_form.get_by_label("Key name").fill("deploy")
        key_form.get_by_label("Expires after (days)").fill("0")
        key_form.get_by_role("button", name="Create API key").click()
        expect(key_form.locator("#expiresInSeconds-error")).to_have_text(
            zero.json()["error"]["details"]["fieldErrors"]["expiresInSeconds"])
        key_form.get_by_label("Expires after (days)").fill("30")
        key_form.get_by_role("button", name="Create API key").click()

        shown = page.get_by_role("region", name="New API key")
        expect(shown).to_contain_text("it is shown only once")
        secret = page.get_by_test_id("api-key-secret").inner_text()
        page.bring_to_front()  # the clipboard is only the focused page's (other tests' pages share the browser)
        shown.get_by_role("button", name="Copy key").click()
        expect(shown.get_by_role("button", name="Copied", exact=True)).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == secret
        bot = Actor(api_url, secret)
        assert bot.get("/org/members").status_code == 200
        keys = page.get_by_role("table", name="API keys")
        row = keys.locator("tbody tr", has_text="deploy")
        expect(row).to_contain_text("active")
        expect(row).to_contain_text(secret[:6])
        page.screenshot(path=str(artifacts / "30-api-key-shown-once.png"), full_page=True)

        # Shown once: not after a reload, and never by the API.
        page.reload()
        expect(row).to_be_visible()
        expect(page.get_by_text(secret)).to_have_count(0)
        assert secret not in owner.get(f"/org/service-accounts/{account_id}/api-keys").text

        row.get_by_role("button", name="Revoke").click()
        row.get_by_role("button", name="Yes, revoke").click()
        expect(row).to_contain_text("revoked")
        expect(page.get_by_text("was revoked: programs using it are refused from now on")).to_be_visible()
        assert bot.get("/org/members").status_code == 401
        page.screenshot(path=str(artifacts / "31-api-keys.png"), full_page=True)

        # Deleting the account: its other key stops at once; the list no longer has it.
        key_form.get_by_label("Key name").fill("spare")
        key_form.get_by_role("button", name="Create API key").click()
        spare = Actor(api_url, page.get_by_test_id("api-key-secret").inner_text())
        assert spare.get("/org/members").status_code == 200
        page.get_by_role("button", name="Delete service account").click()
        page.get_by_role("button", name="Yes, delete").click()
        expect(page).to_have_url(f"{server.url}/service-accounts")
        expect(page.get_by_text("No service accounts yet")).to_be_visible()
        assert spare.get("/org/members").status_code == 401
    finally:
        context.close()
