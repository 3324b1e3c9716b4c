"""Team sharing of catalogs and saved queries in the console, in a real browser against a real server: on an
existing catalog's page and an existing saved query's page the owner sees the teams it is shared with, shares it
with another team (whose member then sees it, and a member of no such team still does not) and stops sharing it
(the member no longer sees it); removing the last team is refused in the API's words. The query's page is driven
with the keyboard only. Screenshot: the catalog page's sharing section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.console.test_browser_notebooks import sign_in
from tests.data.helpers import make_catalog, make_query
from tests.support.actors import Actor, signup
from tests.support.server import LiveServer
from tests.support.world import add_to_team, create_member, create_team


def shared_names(page: Any, what: str) -> Any:
    return page.get_by_role("list", name=f"Teams the {what} is shared with").get_by_role("listitem")


def test_a_catalog_and_a_saved_query_shared_with_a_team_and_unshared_in_their_pages(
        server: LiveServer, api_url: str, browser: Any, artifacts: Path) -> None:
    owner: Actor = signup(api_url)
    analytics, finance = create_team(owner, "analytics"), create_team(owner, "finance")
    accountant, outsider = create_member(owner), create_member(owner)
    add_to_team(owner, finance, accountant)
    catalog = make_catalog(owner, "lake", [analytics])
    query = make_query(owner, "revenue", [analytics])
    catalog_path, query_path = f"/data/catalogs/{catalog['id']}", f"/workloads/queries/{query['id']}"
    for path in (catalog_path, query_path):  # before: only analytics has them
        assert accountant.get(path).status_code == 404
        assert outsider.get(path).status_code == 404
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, server.url, owner, f"/catalogs/{catalog['id']}")
        sharing = page.get_by_role("region", name="Shared with teams")
        expect(shared_names(page, "catalog")).to_have_count(1)
        expect(shared_names(page, "catalog").first).to_contain_text("analytics")
        team = sharing.get_by_role("combobox", name="Team to share with")
        expect(team).to_have_value(finance)  # the only team it is not shared with
        sharing.get_by_role("button", name="Share", exact=True).click()
        expect(sharing.get_by_role("status")).to_have_text("Shared with finance.")
        expect(shared_names(page, "catalog")).to_have_count(2)
        finance_row = shared_names(page, "catalog").filter(has_text="finance")
        expect(finance_row).to_contain_text("2 members")  # its creator and the accountant
        expect(team).to_be_disabled()  # nothing left to share with
        assert accountant.get(catalog_path).status_code == 200  # finance's member now sees it
        assert [c["id"] for c in accountant.get("/me/catalogs").json()["included"]["catalogs"]] == [catalog["id"]]
        assert outsider.get(catalog_path).status_code == 404  # in neither team: still not
        page.screenshot(path=str(artifacts / "41-catalog-sharing.png"), full_page=True)

        sharing.get_by_role("button", name="Stop sharing with finance").click()
        expect(sharing.get_by_role("status")).to_have_text("No longer shared with finance.")
        expect(shared_names(page, "catalog")).to_have_count(1)
        assert accountant.get(catalog_path).status_code == 404
        assert accountant.get("/me/catalogs").json()["total"] == 0
        teams = owner.get(f"{catalog_path}/teams").json()
        assert [i["team"]["id"] for i in teams["items"]] == [analytics]

        # The last team: the API refuses, and the page says why in its words.
        sharing.get_by_role("button", name="Stop sharing with analytics").click()
        refused = owner.delete(f"{catalog_path}/teams/{analytics}")
        assert refused.status_code == 409, refused.text
        expect(sharing.get_by_role("alert")).to_have_text(refused.json()["error"]["message"])
        expect(shared_names(page, "catalog")).to_have_count(1)
        assert owner.get(catalog_path).json()["item"]["teamIds"] == [analytics]

        # The saved query's page, by keyboard only.
        page.goto(f"{server.url}/queries/{query['id']}")
        sharing = page.get_by_role("region", name="Shared with teams")
        expect(shared_names(page, "saved query")).to_have_count(1)
        team = sharing.get_by_role("combobox", name="Team to share with")
        team.focus()
        expect(team).to_have_value(finance)
        page.keyboard.press("Tab")
        expect(sharing.get_by_role("button", name="Share", exact=True)).to_be_focused()
        page.keyboard.press("Enter")
        expect(sharing.get_by_role("status")).to_have_text("Shared with finance.")
        expect(shared_names(page, "saved query").filter(has_text="finance")).to_have_count(1)
        assert accountant.get(query_path).status_code == 200
        assert [q["id"] for q in accountant.get("/me/queries").json()["included"]["queries"]] == [query["id"]]
        assert outsider.get(query_path).status_code == 404
        assert set(owner.get(query_path).json()["item"]["teamIds"]) == {analytics, finance}

        remove = sharing.get_by_role("button", name="Stop sharing with finance")
        remove.focus()
        page.keyboard.press("Enter")
        expect(sharing.get_by_role("status")).to_have_text("No longer shared with finance.")
        expect(team).to_be_focused()  # the pressed button is gone: the focus stays in the section
        expect(shared_names(page, "saved query")).to_have_count(1)
        assert accountant.get(query_path).status_code == 404
        assert accountant.get("/me/queries").json()["total"] == 0
        assert owner.get(query_path).json()["item"]["teamIds"] == [analytics]
    finally:
        context.close()
