"""The jobs list in a real browser against a real server, with more jobs than one page: it pages and sorts like
listJobs (the URL says which page and order, so Back returns to it), and each row shows the job's next run (a
scheduled job) and the status of its latest run. Screenshot: the second page, newest first."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.console.test_browser_jobs import sign_in
from tests.support.actors import Actor, signup
from tests.support.server import LiveServer

JOBS = 30  # more than the page's 25


def test_the_jobs_list_pages_and_sorts_like_the_api(server: LiveServer, api_url: str, browser: Any,
                                                    artifacts: Path) -> None:
    owner: Actor = signup(api_url)
    r = owner.post("/org/teams", json={"name": "etl"})
    assert r.status_code == 201, r.text
    team = r.json()["team"]["id"]
    keys = [f"job-{i:02d}" for i in range(JOBS)]
    for i, key in enumerate(keys):
        body: dict[str, Any] = {"jobKey": key, "clusterId": "LOCAL", "teamIds": [team],
                                "config": {"sql": {"source": "SELECT 1"}}}
        if i == 0:
            body |= {"cronExpression": "0 3 * * *", "cronTimezone": "UTC"}
        r = owner.post("/workloads/jobs", json=body)
        assert r.status_code == 201, r.text
    first = owner.get("/workloads/jobs", params={"limit": 1}).json()["included"]["jobs"][0]
    assert first["jobKey"] == "job-00" and first["nextRunAt"]
    # The newest job's latest run, held pending (so nothing executes it): its status is shown in its row.
    newest_id = owner.get("/workloads/jobs", params={"sortBy": "createdAt", "sortDirection": "desc",
                                                     "limit": 1}).json()["items"][0]["jobId"]
    r = owner.post(f"/workloads/jobs/{newest_id}/runs", json={"hold": True})
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, server.url, owner)
        table = page.get_by_role("table", name="Jobs")
        rows = table.locator("tbody tr")
        expect(rows).to_have_count(25)
        expect(rows.first).to_contain_text("job-00")
        expect(rows.first).to_contain_text("Every day at 03:00")
        next_run = rows.first.get_by_test_id("next-run").locator("time")
        expect(next_run).to_have_attribute("datetime", first["nextRunAt"])
        expect(rows.nth(1).get_by_test_id("next-run")).to_have_text("—")  # by hand only: no next run
        expect(rows.nth(1)).to_contain_text("Never run")
        expect(page.get_by_text(f"{JOBS} jobs.")).to_be_visible()
        expect(page.get_by_text("Page 1 of 2")).to_be_visible()

        # The second page: what the API's page 2 holds, and the URL says so.
        page.get_by_role("navigation", name="Pages").get_by_role("button", name="Next").click()
        expect(page).to_have_url(re.compile(r"/jobs\?page=2&sortBy=jobKey&sortDirection=asc$"))
        expect(rows).to_have_count(JOBS - 25)
        expect(rows.first).to_contain_text("job-25")
        expect(rows.last).to_contain_text("job-29")
        expect(rows.last).to_contain_text("pending")  # the newest job's held run

        # Newest first (the API's createdAt, descending): back on page 1, the newest job and its run first.
        page.get_by_role("button", name="Sort by created, ascending").click()
        page.get_by_role("button", name="Sort by created, descending").click()
        expect(page).to_have_url(re.compile(r"page=1&sortBy=createdAt&sortDirection=desc$"))
        expect(rows.first).to_contain_text("job-29")
        expect(rows.first.get_by_role("link", name="pending")).to_be_visible()
        api_order = [i["jobId"] for i in owner.get("/workloads/jobs", params={
            "sortBy": "createdAt", "sortDirection": "desc", "limit": 25}).json()["items"]]
        hrefs = [h.rsplit("/", 1)[1] for h in rows.locator("td:first-child a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))")]
        assert hrefs == api_order
        page.get_by_role("navigation", name="Pages").get_by_role("button", name="Next").click()
        expect(rows.last).to_contain_text("job-00")
        page.screenshot(path=str(artifacts / "16-jobs-page-2-newest-first.png"), full_page=True)

        # Back returns to the previous page and order; a deep link opens the same page.
        page.go_back()
        expect(rows.first).to_contain_text("job-29")
        expect(rows).to_have_count(25)
        page.goto(f"{server.url}/jobs?page=2&sortBy=jobKey&sortDirection=desc")
        expect(rows.first).to_contain_text("job-04")
        expect(rows).to_have_count(JOBS - 25)
    finally:
        context.close()
