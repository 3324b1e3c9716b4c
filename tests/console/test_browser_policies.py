"""Organization policies in the console, in a real browser against a real server: grant a service account a
permission in the form (its API key is then allowed what it was refused), edit the policy (the API holds exactly
the checked permissions), then delete it (refused again). Screenshot: the policies page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.service_accounts.helpers import make_api_key, make_service_account
from tests.support.actors import PASSWORD, Actor, signup


def test_grant_edit_and_delete_a_policy_in_the_page(server: Any, api_url: str, browser: Any,
                                                    artifacts: Path) -> None:
    owner = signup(api_url)
    assert owner.email is not None
    account = make_service_account(owner, "log-exporter")["id"]
    bot = Actor(api_url, make_api_key(owner, account)["secret"])
    assert bot.get("/org/audit-events").status_code == 403
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{server.url}/policies")
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{server.url}/policies")
        expect(page.get_by_text("No policies yet")).to_be_visible()

        form = page.get_by_role("form", name="Set a policy")
        form.get_by_label("Principal").select_option(label="log-exporter")
        form.get_by_label("CanViewAuditLog").check()
        form.get_by_role("button", name="Save policy").click()
        expect(page.get_by_role("status")).to_have_text("Saved the policy of log-exporter.")
        row = page.get_by_role("table", name="Policies").locator("tbody tr", has_text="log-exporter")
        expect(row).to_contain_text("Service account")
        expect(row).to_contain_text("CanViewAuditLog")
        assert bot.get("/org/audit-events").status_code == 200
        expect(form.get_by_label("Principal")).to_have_value("")  # the form is ready for the next one
        page.screenshot(path=str(artifacts / "50-policies.png"), full_page=True)

        row.get_by_role("button", name="Edit").click()
        edit = page.get_by_role("form", name="Edit policy")
        expect(edit.get_by_label("CanViewAuditLog")).to_be_checked()
        expect(edit.get_by_label("Principal")).to_be_disabled()
        edit.get_by_label("CanViewMembers").check()
        edit.get_by_role("button", name="Save policy").click()
        expect(row).to_contain_text("CanViewAuditLog, CanViewMembers")
        assert owner.get(f"/org/policies/{account}").json()["permissions"] == ["CanViewAuditLog", "CanViewMembers"]
        assert bot.get("/org/members").status_code == 200

        row.get_by_role("button", name="Delete").click()
        row.get_by_role("button", name="Yes, delete").click()
        expect(page.get_by_text("No policies yet")).to_be_visible()
        assert bot.get("/org/audit-events").status_code == 403
    finally:
        context.close()
