"""Jobs in the console, in a real browser against a real server that runs them (the runs' compute node): a bad
cron in the job form shows the API's field error beside the cron field; the job created in the form runs from
its page, and its output appears in the run page line by line while it is running, then it succeeds; the jobs
list shows its schedule and last status. A job edited in the form gets a new version; a run with parameters
(named, arguments, held then released) is cancelled and retried from its page. Screenshots: the job form, the
run page, the jobs list."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.runs.live import TERMINAL
from tests.support.actors import PASSWORD, Actor, signup
from tests.support.server import LiveServer

LINES = 12
CODE = textwrap.dedent(f"""\
    import time
    for i in range({LINES}):
        print(f"step {{i}} done", flush=True)
        time.sleep(0.7)
    """)


def sign_in(page: Any, url: str, owner: Actor) -> None:
    assert owner.email is not None
    page.goto(f"{url}/jobs")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{url}/jobs")


def stop_run(owner: Actor, job_id: str, run_id: str) -> None:
    """After a failure half-way: leave nothing running on the node."""
    owner.post(f"/workloads/jobs/{job_id}/runs/{run_id}/cancel")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if owner.get(f"/workloads/jobs/{job_id}/runs/{run_id}").json()["status"] in TERMINAL:
            return
        time.sleep(0.5)


def test_a_job_created_in_the_form_runs_and_its_logs_follow(
        runs_server: LiveServer, runs_api: str, browser: Any, artifacts: Path) -> None:
    server = runs_server
    owner: Actor = signup(runs_api)
    assert owner.email is not None
    r = owner.post("/org/teams", json={"name": "etl"})
    assert r.status_code == 201, r.text
    team_id = r.json()["team"]["id"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    job_id = run_id = ""
    try:
        page = context.new_page()
        sign_in(page, server.url, owner)
        expect(page.get_by_text("No jobs yet")).to_be_visible()  # the empty state says what to do next

        # The form: a Python job with a cron the API refuses. Its field error appears beside the cron field.
        page.get_by_role("link", name="New job").click()
        expect(page).to_have_url(f"{server.url}/jobs/new")
        page.get_by_label("Name").fill("nightly-report")
        page.get_by_role("radio", name="Python").check()
        page.get_by_label("Python source").fill(CODE)
        cron = page.get_by_label("Schedule (cron)")
        cron.fill("0 2 * *")
        preview = page.get_by_test_id("cron-preview")
        expect(preview).to_contain_text("Five fields")
        page.get_by_label("Time zone").fill("Europe/Paris")
        page.get_by_role("button", name="Create job").click()
        refused = owner.post("/workloads/jobs", json={
            "jobKey": "nightly-report-check", "clusterId": "LOCAL", "teamIds": [team_id],
            "config": {"python": {"source": CODE}}, "cronExpression": "0 2 * *", "cronTimezone": "Europe/Paris"})
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]["details"]["fieldErrors"]["cronExpression"]
        beside = page.locator("#cronExpression-error")
        expect(beside).to_have_text(message)
        expect(cron).to_have_attribute("aria-describedby", "cronExpression-error")
        # Beside the field: inside the cron field's own label, not in a banner.
        assert page.locator("label", has=cron).locator("#cronExpression-error").count() == 1
        assert owner.get("/workloads/jobs").json()["total"] == 0  # nothing was created
        page.screenshot(path=str(artifacts / "10-job-form-cron-error.png"), full_page=True)

        # Fixed: the preview says it in words, and the job is created (as the API shows it).
        cron.fill("0 2 * * *")
        expect(preview).to_have_text("Every day at 02:00")
        expect(beside).to_have_count(1)  # stays until the next submit
        page.screenshot(path=str(artifacts / "11-job-form.png"), full_page=True)
        page.get_by_role("button", name="Create job").click()
        expect(page).to_have_url(re.compile(r"/jobs/[A-Z0-9]+$"))
        job_id = page.url.rsplit("/", 1)[1]
        job = owner.get(f"/workloads/jobs/{job_id}").json()["included"]["jobs"][0]
        assert (job["jobKey"], job["cronExpression"], job["cronTimezone"]) == ("nightly-report", "0 2 * * *",
                                                                                "Europe/Paris")
        assert job["config"]["python"]["source"] == CODE and job["nextRunAt"]
        expect(page.get_by_role("heading", name="nightly-report")).to_be_visible()
        expect(page.get_by_text("No runs yet")).to_be_visible()

        # Run it now: the run's page follows its status and output while it runs.
        page.get_by_role("button", name="Run now").click()
        expect(page).to_have_url(re.compile(rf"/jobs/{job_id}/runs/[A-Z0-9]+$"))
        run_id = page.url.rsplit("/", 1)[1]
        status = page.get_by_test_id("run-status")
        logs = page.get_by_test_id("run-logs")
        expect(logs).to_contain_text("step 1 done", timeout=90_000)
        expect(status).to_have_text("running", timeout=5_000)
        # Output shown while the run is still going (in the page and in the API), not all at once at the end.
        assert f"step {LINES - 1} done" not in logs.inner_text(), logs.inner_text()
        assert owner.get(f"/workloads/jobs/{job_id}/runs/{run_id}").json()["status"] == "running"
        expect(page.get_by_role("button", name="Cancel run")).to_be_visible()
        page.screenshot(path=str(artifacts / "12-run-running.png"), full_page=True)

        expect(status).to_have_text("succeeded", timeout=90_000)
        expect(logs).to_contain_text(f"step {LINES - 1} done", timeout=10_000)
        text = logs.inner_text()
        steps = [line for line in text.splitlines() if line.startswith("step ")]
        assert steps == [f"step {i} done" for i in range(LINES)], text  # each line once, in order
        api_logs = owner.get(f"/workloads/jobs/{job_id}/runs/{run_id}/logs").text
        assert [line for line in api_logs.splitlines() if line.startswith("step ")] == steps
        expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
        expect(page.get_by_role("button", name="Retry")).to_have_count(0)  # a success is not retried
        page.screenshot(path=str(artifacts / "13-run-succeeded.png"), full_page=True)

        # The job's page lists the run; the jobs list shows the schedule and the last status.
        page.get_by_role("link", name="← Job").click()
        expect(page.get_by_role("table", name="Runs").locator("tbody tr", has_text=run_id)).to_contain_text("succeeded")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
        row = page.locator("tbody tr", has_text="nightly-report")
        expect(row).to_contain_text("0 2 * * *")
        expect(row).to_contain_text("Europe/Paris")
        expect(row).to_contain_text("Every day at 02:00")
        expect(row).to_contain_text("succeeded")
        page.screenshot(path=str(artifacts / "14-jobs.png"), full_page=True)
        run_id = ""
    finally:
        context.close()
        if job_id and run_id:
            stop_run(owner, job_id, run_id)


def test_edit_a_job_then_cancel_and_retry_its_run(
        runs_server: LiveServer, runs_api: str, browser: Any, artifacts: Path) -> None:
    server = runs_server
    owner: Actor = signup(runs_api)
    r = owner.post("/org/teams", json={"name": "batch"})
    assert r.status_code == 201, r.text
    code = "import sys, time\nprint('waiting with', *sys.argv[1:], flush=True)\ntime.sleep(120)\n"
    r = owner.post("/workloads/jobs", json={"jobKey": "long-wait", "clusterId": "LOCAL",
                                           "teamIds": [r.json()["team"]["id"]], "config": {"python": {"source": code}},
                                           "timeoutSeconds": 600})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    context = browser.new_context(viewport={"width": 1024, "height": 800})  # a tablet-ish width
    run_id = ""
    try:
        page = context.new_page()
        sign_in(page, server.url, owner)
        page.goto(f"{server.url}/jobs/{job_id}/edit")  # a deep link to the form, filled in from the job
        expect(page.get_by_label("Name")).to_have_value("long-wait")
        expect(page.get_by_label("Python source")).to_have_value(code)
        expect(page.get_by_label("Other settings (JSON)")).to_contain_text('"timeoutSeconds": 600')
        page.get_by_label("Schedule (cron)").fill("*/30 * * * *")
        expect(page.get_by_test_id("cron-preview")).to_have_text("Every 30 minutes")
        page.get_by_label("Time zone").fill("UTC")
        page.get_by_role("button", name="Save new version").click()
        expect(page).to_have_url(f"{server.url}/jobs/{job_id}")
        job = owner.get(f"/workloads/jobs/{job_id}").json()["included"]["jobs"][0]
        assert (job["currentVersion"], job["cronExpression"], job["timeoutSeconds"]) == (2, "*/30 * * * *", 600)
        assert job["config"]["python"]["source"] == code

        # Run it with a parameter: a bad one first (the API's field error beside the input), then a good one.
        page.get_by_text("Run with parameters").click()
        named = page.get_by_label("Named parameters")
        named.fill('{"day": 5}')
        page.get_by_role("button", name="Run now").click()
        expect(page.locator("#parameters-error")).to_contain_text("namedParameters")
        named.fill('{"day": "monday"}')
        # Arguments (replacing the version's), and held: the run waits, pending, until released from its page.
        page.get_by_label("Arguments").fill("--region\neu west")
        page.get_by_label("Hold").check()
        page.get_by_role("button", name="Run now").click()
        expect(page).to_have_url(re.compile(rf"/jobs/{job_id}/runs/[A-Z0-9]+$"))
        run_id = page.url.rsplit("/", 1)[1]
        status = page.get_by_test_id("run-status")
        expect(status).to_have_text("pending")
        assert owner.get(f"/workloads/jobs/{job_id}/runs/{run_id}").json()["status"] == "pending"
        page.get_by_role("button", name="Release run").click()
        # namedParameters first, then the arguments, each line one argument (the space kept inside it)
        expect(page.get_by_test_id("run-logs")).to_contain_text("waiting with --day=monday --region eu west",
                                                                timeout=90_000)
        expect(page.get_by_role("button", name="Release run")).to_have_count(0)
        expect(status).to_have_text("running", timeout=5_000)
        page.get_by_role("button", name="Cancel run").click()
        expect(status).to_have_text("cancelled", timeout=30_000)
        assert owner.get(f"/workloads/jobs/{job_id}/runs/{run_id}").json()["status"] == "cancelled"

        page.get_by_role("button", name="Retry").click()  # the same run, back in the queue: followed again
        try:
            expect(status).to_have_text("running", timeout=90_000)
        except AssertionError:  # say why (a run that failed to start says so in its statusMessage)
            retried = owner.get(f"/workloads/jobs/{job_id}/runs/{run_id}").json()
            raise AssertionError(f"the retried run is {retried['status']}: {retried.get('statusMessage')}; "
                                 f"logs: {owner.get(f'/workloads/jobs/{job_id}/runs/{run_id}/logs').text[-2000:]}"
                                 ) from None
        expect(page.get_by_role("button", name="Cancel run")).to_be_visible()
        page.get_by_role("button", name="Cancel run").click()
        expect(status).to_have_text("cancelled", timeout=30_000)
        page.screenshot(path=str(artifacts / "15-run-cancelled.png"), full_page=True)
        run_id = ""
    finally:
        context.close()
        if run_id:
            stop_run(owner, job_id, run_id)
