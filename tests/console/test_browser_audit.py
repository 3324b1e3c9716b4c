"""The audit log in the console, in a real browser against a real server: the API's filters (action, resource
type, resource ID, actor) as a form whose values are in the URL (a deep link reopens the same view), pages that
follow the API's marker (Next, then Previous back to the same events), the actor's name instead of an ID, and a
filter the API refuses shown in its words beside the field. Screenshot: the filtered log."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from playwright.sync_api import expect

from tests.service_accounts.helpers import make_team
from tests.support.actors import PASSWORD, signup


def test_filter_and_page_the_audit_log(server: Any, api_url: str, browser: Any, artifacts: Path) -> None:
    owner = signup(api_url, name="Audra Auditor")
    assert owner.email is not None
    teams = [make_team(owner, f"audit-team-{i:02d}") for i in range(12)]
    api_events = owner.get("/org/audit-events", params={"action": "team.create", "limit": 100}).json()["items"]
    assert len(api_events) == 12
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{server.url}/audit")
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{server.url}/audit")
        table = page.get_by_role("table", name="Audit events")
        expect(table.locator("tbody tr").first).to_be_visible()

        # Filter by action, 10 a page: the API's first page, newest first, by the actor's name.
        form = page.get_by_role("form", name="Filter audit events")
        form.get_by_label("Action").fill("team.create")
        form.get_by_label("Per page").select_option("10")
        form.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(f"{server.url}/audit?action=team.create&limit=10")
        rows = table.locator("tbody tr")
        expect(rows).to_have_count(10)
        expect(rows.first).to_have_attribute("data-event-id", api_events[0]["id"])
        expect(rows.first).to_contain_text("Audra Auditor")
        expect(rows.first).to_contain_text("team.create")
        expect(rows.first).to_contain_text(teams[-1])
        page.screenshot(path=str(artifacts / "40-audit-log.png"), full_page=True)

        pager = page.get_by_role("navigation", name="Audit event pages")
        pager.get_by_role("button", name="Next").click()
        expect(rows).to_have_count(2)
        expect(rows.last).to_have_attribute("data-event-id", api_events[-1]["id"])
        expect(pager.get_by_role("button", name="Next")).to_be_disabled()
        pager.get_by_role("button", name="Previous").click()
        expect(rows).to_have_count(10)
        expect(rows.first).to_have_attribute("data-event-id", api_events[0]["id"])

        # A deep link with a resource filter opens that view: the one event about that team.
        page.goto(f"{server.url}/audit?resourceId={teams[3]}")
        expect(page.get_by_label("Resource ID")).to_have_value(teams[3])
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-event-id",
                                             next(e["id"] for e in api_events if e["resourceId"] == teams[3]))

        # A filter the API refuses: its words beside the field.
        refused = owner.get("/org/audit-events", params={"action": "not an action!"})
        assert refused.status_code == 400
        page.goto(f"{server.url}/audit?action={quote('not an action!')}")
        expect(page.locator("#action-error")).to_have_text(refused.json()["error"]["details"]["fieldErrors"]["action"])
        expect(page.get_by_label("Action")).to_have_attribute("aria-invalid", "true")
        page.get_by_role("button", name="Clear filters").click()
        expect(page).to_have_url(f"{server.url}/audit")
        expect(page.locator("#action-error")).to_have_count(0)
        expect(rows.first).to_be_visible()
    finally:
        context.close()
