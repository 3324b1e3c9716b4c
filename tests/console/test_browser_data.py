"""Catalogs and saved queries in the console, in a real browser against a real server: a catalog registered in the
form (a provider setting the API refuses first: its error, with its path, beside the settings editor), its secret
never shown again but kept through an edit; a saved query created from the catalog's page (a blank name first: the
API's error beside the name), edited, listed with its catalog and team, then the query and the catalog deleted.
Screenshot: the catalog page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.console.test_browser_notebooks import sign_in
from tests.support.actors import Actor, signup
from tests.support.server import LiveServer

SECRET = "tok-SECRET-console-1"


def test_catalog_and_saved_query_created_edited_and_deleted(
        server: LiveServer, api_url: str, browser: Any, artifacts: Path) -> None:
    owner: Actor = signup(api_url)
    r = owner.post("/org/teams", json={"name": "analytics"})
    assert r.status_code == 201, r.text
    team_id = r.json()["team"]["id"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # the delete confirmations
        sign_in(page, server.url, owner, "/catalogs")
        expect(page.get_by_text("No catalogs yet")).to_be_visible()
        page.get_by_role("link", name="New catalog").click()

        # A provider setting the API refuses: beside the settings editor, with its path.
        page.locator('input[name="name"]').fill("lake")
        settings = page.get_by_label("Provider settings (JSON)")
        bad = {"uri": "not a url", "bearerAccessToken": SECRET}
        settings.fill(json.dumps(bad))
        expect(page.get_by_label("analytics")).to_be_checked()
        page.get_by_role("button", name="Create catalog").click()
        refused = owner.post("/data/catalogs", json={"name": "lake", "provider": "iceberg_rest", "teamIds": [team_id],
                                                     "providerConfig": bad})
        assert refused.status_code == 422, refused.text
        [(path, message)] = refused.json()["error"]["details"]["fieldErrors"].items()
        assert path == "providerConfig.uri", path
        expect(page.locator("#providerConfig-error")).to_have_text(f"{path}: {message}")
        assert owner.get("/data/catalogs").json()["total"] == 0

        settings.fill(json.dumps({"uri": "https://catalog.example.com", "bearerAccessToken": SECRET}))
        page.get_by_role("button", name="Create catalog").click()
        expect(page).to_have_url(re.compile(r"/catalogs/[A-Z0-9]+$"))
        catalog_id = page.url.rsplit("/", 1)[1]
        expect(page.get_by_text("Secrets set: bearerAccessToken")).to_be_visible()
        assert SECRET not in page.content()
        shared = page.get_by_role("list", name="Teams the catalog is shared with")
        expect(shared.get_by_role("listitem")).to_have_text([re.compile(r"^analytics\b")])

        # An edit keeps the secret it does not repeat.
        page.get_by_label("Description").fill("The team's Iceberg lake")
        page.get_by_role("button", name="Save catalog").click()
        expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
        catalog = owner.get(f"/data/catalogs/{catalog_id}").json()["included"]["catalogs"][0]
        assert catalog["description"] == "The team's Iceberg lake"
        assert catalog["configuredSecrets"] == ["bearerAccessToken"]
        page.screenshot(path=str(artifacts / "40-catalog.png"), full_page=True)

        # A saved query from the catalog's page: the catalog is chosen; a blank name is refused beside the field.
        expect(page.get_by_text("No saved query uses this catalog")).to_be_visible()
        page.get_by_role("link", name="Save one").click()
        expect(page).to_have_url(f"{server.url}/queries/new?catalog={catalog_id}")
        expect(page.get_by_role("heading", name="New query")).to_be_visible()  # the page, not the one before it
        catalog_field = page.locator('select[name="catalogId"]')
        expect(catalog_field).to_have_value(catalog_id)
        page.get_by_label("SQL").fill("SELECT count(*) FROM sales")
        page.get_by_role("button", name="Save new query").click()
        blank = owner.post("/workloads/queries", json={"name": "", "sql": "SELECT 1", "teamIds": [team_id]})
        assert blank.status_code == 422, blank.text
        expect(page.locator("#name-error")).to_have_text(blank.json()["error"]["details"]["fieldErrors"]["name"])
        page.locator('input[name="name"]').fill("sales-count")
        page.get_by_label("Schema").fill("retail")
        page.get_by_role("button", name="Save new query").click()
        expect(page).to_have_url(re.compile(r"/queries/[A-Z0-9]+$"))
        query_id = page.url.rsplit("/", 1)[1]
        query = owner.get(f"/workloads/queries/{query_id}").json()
        assert query["item"]["teamIds"] == [team_id] and query["item"]["catalogId"] == catalog_id
        assert query["included"]["queries"][0]["schema"] == "retail"

        # Edited: new SQL, no catalog.
        page.get_by_label("SQL").fill("SELECT 42")
        catalog_field.select_option("")
        page.get_by_role("button", name="Save query").click()
        expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
        saved = owner.get(f"/workloads/queries/{query_id}").json()["included"]["queries"][0]
        assert (saved["sql"], saved["catalogId"]) == ("SELECT 42", None)

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Queries").click()
        row = page.get_by_role("table", name="Saved queries").locator("tbody tr", has_text="sales-count")
        expect(row).to_contain_text("None")
        expect(row).to_contain_text("analytics")

        # Deleted: the query, then the catalog.
        row.get_by_role("link", name="sales-count").click()
        page.get_by_role("button", name="Delete query").click()
        expect(page).to_have_url(f"{server.url}/queries")
        expect(page.get_by_text("No saved queries yet")).to_be_visible()
        assert owner.get(f"/workloads/queries/{query_id}").status_code == 404
        page.goto(f"{server.url}/catalogs/{catalog_id}")
        page.get_by_role("button", name="Delete catalog").click()
        expect(page).to_have_url(f"{server.url}/catalogs")
        expect(page.get_by_text("No catalogs yet")).to_be_visible()
        assert owner.get(f"/data/catalogs/{catalog_id}").status_code == 404
    finally:
        context.close()
