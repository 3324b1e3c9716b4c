"""Workload configs in the console, in a real browser against a real server: the form refuses text that is not a
JSON object beside the JSON editor without calling the API; the API's field errors appear beside the field they
are about (the name) and, with their path, beside the JSON editor (a setting inside it); the config created is the
API's, its page shows the profile, and a new config started from it keeps its settings. Screenshot: the form."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.console.test_browser_notebooks import sign_in
from tests.support.actors import Actor, signup
from tests.support.server import LiveServer


def test_create_a_workload_config_with_field_errors_then_one_from_it(
        server: LiveServer, api_url: str, browser: Any, artifacts: Path) -> None:
    owner: Actor = signup(api_url)
    r = owner.post("/org/teams", json={"name": "platform"})
    assert r.status_code == 201, r.text
    team_id = r.json()["team"]["id"]
    context = browser.new_context(viewport={"width": 1024, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, server.url, owner, "/configs")
        expect(page.get_by_text("No workload configs yet")).to_be_visible()
        page.get_by_role("link", name="New workload config").click()
        expect(page).to_have_url(f"{server.url}/configs/new")

        name = page.locator('input[name="name"]')
        extra = page.get_by_label("Other settings (JSON)")
        create = page.get_by_role("button", name="Create workload config")
        # Not JSON: said beside the editor, nothing sent.
        extra.fill('{"sail": {"maxRetries": 2,}}')
        name.fill("spark-35")
        create.click()
        expect(page.locator("#extra-error")).to_contain_text("Not valid JSON")
        assert owner.get("/workloads/compute-configs").json()["items"] == []

        # The API refuses a blank name and a bad setting inside the JSON: each beside its own field.
        name.fill(" ")
        extra.fill('{"sail": {"maxRetries": -3, "libraries": []}, "endpointLimits": null}')
        page.get_by_label("Spark version").select_option("3.5")
        create.click()
        refused = owner.post("/workloads/compute-configs", json={
            "name": " ", "teamId": team_id, "clusterId": "LOCAL", "workloadType": "sail",
            "config": {"sail": {"maxRetries": -3, "libraries": [], "executionMode": "standalone",
                                "sparkVersion": "3.5"}}, "endpointLimits": None})
        assert refused.status_code == 422, refused.text
        problems = refused.json()["error"]["details"]["fieldErrors"]
        expect(page.locator("#name-error")).to_have_text(problems["name"])
        expect(name).to_have_attribute("aria-describedby", "name-error")
        [(path, message)] = [(p, m) for p, m in problems.items() if p != "name"]
        assert path.startswith("config.sail.maxRetries"), problems
        expect(page.locator("#extra-error")).to_have_text(f"{path}: {message}")
        assert page.locator("label", has=page.locator('textarea[name="extra"]')).locator("#extra-error").count() == 1
        page.screenshot(path=str(artifacts / "30-config-form-errors.png"), full_page=True)
        assert owner.get("/workloads/compute-configs").json()["items"] == []

        # Fixed: created as typed, shown on its page.
        name.fill("spark-35")
        extra.fill('{"sail": {"maxRetries": 3, "extraEnv": {"REGION": "eu"}}, "endpointLimits": null}')
        create.click()
        expect(page).to_have_url(re.compile(r"/configs/[A-Z0-9]+$"))
        config_id = page.url.rsplit("/", 1)[1]
        created = owner.get(f"/workloads/compute-configs/{config_id}").json()
        assert (created["name"], created["teamId"], created["clusterId"]) == ("spark-35", team_id, "LOCAL")
        sail = created["config"]["sail"]
        assert (sail["sparkVersion"], sail["maxRetries"], sail["executionMode"]) == ("3.5", 3, "standalone")
        expect(page.get_by_role("heading", name="spark-35")).to_be_visible()
        expect(page.get_by_test_id("config-json")).to_contain_text('"REGION"')

        # A new config from this one: the form starts from its settings.
        page.get_by_role("link", name="New config from this one").click()
        expect(name).to_have_value("spark-35-copy")
        expect(page.get_by_label("Spark version")).to_have_value("3.5")
        expect(extra).to_contain_text('"maxRetries": 3')
        name.fill("spark-35-cluster")
        page.get_by_label("Execution mode").select_option("cluster")
        create.click()
        expect(page.get_by_role("heading", name="spark-35-cluster")).to_be_visible()
        copy_id = page.url.rsplit("/", 1)[1]
        copied = owner.get(f"/workloads/compute-configs/{copy_id}").json()["config"]["sail"]
        assert (copied["executionMode"], copied["maxRetries"], copied["sparkVersion"]) == ("cluster", 3, "3.5")

        # The list, by the API's order.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Configs").click()
        rows = page.get_by_role("table", name="Workload configs").locator("tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.filter(has_text="spark-35-cluster")).to_contain_text("cluster")
        expect(rows.filter(has_text="spark-35-cluster")).to_contain_text("platform")
    finally:
        context.close()
