"""A job's versions and draft in a real browser against a real server: the versions list (the live one marked),
one version's page, a diff between two versions rendered in the page; changes saved from the form as a draft leave
the live version alone, show as a diff against it, are edited again as the draft, then published; an old version
is made live again; a draft is discarded. Each step is checked against the API. Screenshot: the draft's diff."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.console.test_browser_jobs import sign_in
from tests.support.actors import Actor, signup
from tests.support.server import LiveServer


def expect_lines(diff: Any, kind: str, expected: list[str]) -> None:
    """The diff's added (or removed) lines, each shown with its sign, exactly these in this order."""
    lines = diff.locator(f".diff-{kind}")
    expect(lines).to_have_count(len(expected))
    sign = "+" if kind == "added" else "-"
    expect(lines).to_have_text([re.compile(rf"^{re.escape(sign)}\s+{re.escape(e)}\s*$") for e in expected])


def live(owner: Actor, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = owner.get(f"/workloads/jobs/{job_id}").json()["included"]["jobs"][0]
    return job


def test_versions_drafts_and_their_diff(server: LiveServer, api_url: str, browser: Any, artifacts: Path) -> None:
    owner: Actor = signup(api_url)
    r = owner.post("/org/teams", json={"name": "etl"})
    assert r.status_code == 201, r.text
    r = owner.post("/workloads/jobs", json={
        "jobKey": "daily-sales", "clusterId": "LOCAL", "teamIds": [r.json()["team"]["id"]],
        "config": {"sql": {"source": "SELECT 1"}}, "cronExpression": "0 2 * * *", "cronTimezone": "UTC"})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    r = owner.post(f"/workloads/jobs/{job_id}/versions", json={
        "clusterId": "LOCAL", "config": {"sql": {"source": "SELECT 1"}}, "cronExpression": "0 4 * * *",
        "cronTimezone": "UTC"})
    assert r.status_code == 201 and r.json()["version"] == 2, r.text
    url = server.url

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, url, owner)
        page.goto(f"{url}/jobs/{job_id}")
        page.get_by_role("link", name="Versions").click()
        expect(page).to_have_url(f"{url}/jobs/{job_id}/versions")
        versions = page.get_by_role("table", name="Versions").locator("tbody tr")
        expect(versions).to_have_count(2)
        expect(versions.nth(1).locator("td").first).to_have_text("Version 2 (live)")
        expect(versions.nth(0).locator("td").first).to_have_text("Version 1")
        expect(page.get_by_text("No draft.")).to_be_visible()

        # One version's own page, then its diff with the live version.
        versions.nth(0).get_by_role("link", name="Version 1").click()
        expect(page.get_by_role("heading", name="daily-sales: version 1")).to_be_visible()
        expect(page.locator(".facts")).to_contain_text("0 2 * * *")
        expect(page.get_by_label("Source")).to_have_text("SELECT 1")
        page.get_by_role("link", name="Compare with live").click()
        expect(page).to_have_url(f"{url}/jobs/{job_id}/versions?from=1&to=2")
        diff = page.get_by_label("Diff")
        expect_lines(diff, "removed", ['"cronExpression": "0 2 * * *",'])
        expect_lines(diff, "added", ['"cronExpression": "0 4 * * *",'])
        expect(page.get_by_test_id("diff-summary")).to_have_text(
            "From version 1 to version 2 (live): 1 line added, 1 removed.")

        # Changes saved as a draft: the live version stays; the draft's diff against it is shown.
        page.goto(f"{url}/jobs/{job_id}/edit")
        page.get_by_role("textbox", name="SQL").fill("SELECT 2")
        page.get_by_label("Description").fill("sales, by day")
        page.get_by_role("button", name="Save as draft").click()
        expect(page).to_have_url(f"{url}/jobs/{job_id}/versions?from=2&to=draft")
        job = live(owner, job_id)
        assert (job["currentVersion"], job["draftVersion"], job["config"]["sql"]["source"]) == (2, 3, "SELECT 1")
        draft = owner.get(f"/workloads/jobs/{job_id}/draft").json()
        assert (draft["config"]["sql"]["source"], draft["description"]) == ("SELECT 2", "sales, by day")
        expect(page.get_by_role("region", name="Draft")).to_contain_text("A draft (version 3) is waiting")
        expect_lines(diff, "removed", ['"source": "SELECT 1"'])
        expect_lines(diff, "added", ['"source": "SELECT 2"', '"description": "sales, by day",'])
        page.screenshot(path=str(artifacts / "17-job-draft-diff.png"), full_page=True)

        # Editing again edits the draft (the form shows it), still not the live version.
        page.goto(f"{url}/jobs/{job_id}/edit")
        expect(page.get_by_role("note")).to_contain_text("Showing the draft (version 3")
        expect(page.get_by_role("textbox", name="SQL")).to_have_value("SELECT 2")
        expect(page.get_by_role("button", name="Save new version")).to_have_count(0)  # refused while a draft exists
        page.get_by_role("textbox", name="SQL").fill("SELECT 3")
        page.get_by_role("button", name="Save as draft").click()
        expect_lines(diff, "added", ['"source": "SELECT 3"', '"description": "sales, by day",'])
        assert owner.get(f"/workloads/jobs/{job_id}/draft").json()["version"] == 3
        assert live(owner, job_id)["config"]["sql"]["source"] == "SELECT 1"

        # Published: it is the live version; no draft left.
        page.get_by_role("button", name="Publish draft").click()
        expect(page.get_by_role("status")).to_have_text("The draft is live as version 3.")
        job = live(owner, job_id)
        assert (job["currentVersion"], job["draftVersion"], job["config"]["sql"]["source"]) == (3, None, "SELECT 3")
        expect(versions).to_have_count(3)
        expect(versions.nth(2).locator("td").first).to_have_text("Version 3 (live)")
        expect(page.get_by_text("No draft.")).to_be_visible()

        # An old version made live again, from its page.
        page.goto(f"{url}/jobs/{job_id}/versions/1")
        page.get_by_role("button", name="Make this version live").click()
        expect(page).to_have_url(f"{url}/jobs/{job_id}")
        job = live(owner, job_id)
        assert (job["cronExpression"], job["config"]["sql"]["source"]) == ("0 2 * * *", "SELECT 1")
        expect(page.locator(".facts")).to_contain_text("0 2 * * *")
        expect(page.locator(".facts")).to_contain_text(re.compile(rf"Version\s*{job['currentVersion']}"))

        # A draft discarded: gone, the live version unchanged.
        r = owner.post(f"/workloads/jobs/{job_id}/draft", json={"description": "scratch"})
        assert r.status_code == 201, r.text
        page.goto(f"{url}/jobs/{job_id}/versions")
        page.get_by_role("button", name="Discard draft").click()
        expect(page.get_by_role("status")).to_have_text("The draft was discarded; the live version is unchanged.")
        expect(page.get_by_text("No draft.")).to_be_visible()
        assert owner.get(f"/workloads/jobs/{job_id}/draft").status_code == 404
        assert live(owner, job_id)["description"] is None

        # A version that does not exist: the API's words, not a blank page.
        page.goto(f"{url}/jobs/{job_id}/versions/99")
        expect(page.get_by_role("alert")).to_contain_text(re.compile("version", re.I))
    finally:
        context.close()
