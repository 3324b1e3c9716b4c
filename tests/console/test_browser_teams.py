"""A team's own page in the console, in a real browser against a real server: from the teams list to the team,
add a member of the organization with a team role, change the role, remove them, then delete the team; the API
holds each change. Screenshot: the team page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.service_accounts.helpers import make_team
from tests.support.actors import PASSWORD, signup, unique_email


def test_manage_a_teams_members_and_roles_in_the_page(server: Any, api_url: str, browser: Any,
                                                       artifacts: Path) -> None:
    owner = signup(api_url, name="Olga Owner")
    assert owner.email is not None
    team = make_team(owner, "data-platform")
    lin_email = unique_email("lin")
    r = owner.post("/users", json={"email": lin_email, "displayName": "Lin Chen", "password": PASSWORD})
    assert r.status_code == 201, r.text
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def team_roles() -> dict[str, list[str]]:
        items = owner.get(f"/org/teams/{team}/members").json()["items"]
        return {i["member"]["displayName"]: i["roleIds"] for i in items}

    try:
        page = context.new_page()
        page.goto(f"{server.url}/teams")
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.get_by_role("link", name="data-platform").click()
        expect(page).to_have_url(f"{server.url}/teams/{team}")
        expect(page.get_by_role("heading", name="data-platform")).to_be_visible()
        members = page.get_by_role("table", name="Team members")
        expect(members.locator("tbody tr")).to_have_count(len(team_roles()))

        form = page.get_by_role("form", name="Add a team member")
        form.get_by_label("Find a member").fill("Lin")
        expect(form.locator("select[name=member] option")).to_have_text([f"Lin Chen ({lin_email})"])
        form.get_by_label("Team role").select_option("TEAMVIEWER")
        form.get_by_role("button", name="Add to team").click()
        expect(page.get_by_role("status")).to_have_text("Lin Chen joined data-platform.")
        lin = members.locator("tbody tr", has_text="Lin Chen")
        expect(lin.get_by_label("Team role of Lin Chen")).to_have_value("TEAMVIEWER")
        assert team_roles()["Lin Chen"] == ["TEAMVIEWER"]

        lin.get_by_label("Team role of Lin Chen").select_option("TEAMADMIN")
        expect(page.get_by_role("status")).to_contain_text("Lin Chen is now")
        assert team_roles()["Lin Chen"] == ["TEAMADMIN"]
        page.screenshot(path=str(artifacts / "10-team.png"), full_page=True)

        lin.get_by_role("button", name="Remove").click()
        lin.get_by_role("button", name="Yes, remove").click()
        expect(lin).to_have_count(0)
        assert "Lin Chen" not in team_roles()

        page.get_by_role("button", name="Delete team").click()
        page.get_by_role("button", name="Yes, delete").click()
        expect(page).to_have_url(f"{server.url}/teams")
        expect(page.get_by_text("No teams yet")).to_be_visible()
        assert owner.get(f"/org/teams/{team}").status_code == 404
    finally:
        context.close()
