"""The console at tablet widths (768×1024 and 820×1180 portrait), in a real browser against a real server, signed
in as someone in two organizations (so the top bar has the organization switcher too): the page is never wider
than the screen, nothing in the top bar overlaps, and the main navigation folds behind a Menu button that opens
and closes by keyboard (aria-expanded; Escape gives the focus back) and whose links lead to their pages.
The members page's table fits too. Screenshots: each width, menu closed and open, and the members page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import Mailbox
from tests.console.test_browser_members import wait_for_links
from tests.console.test_browser_notebooks import sign_in
from tests.support.actors import Actor, signup
from tests.support.server import LiveServer

NAV = ["Teams", "Sessions", "Jobs", "Notebooks", "Configs", "Catalogs", "Queries", "Notifications", "Organization"]


def assert_no_horizontal_overflow(page: Any) -> None:
    widths = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]}px wide in a {widths[1]}px window"


def assert_top_bar_fits(page: Any) -> None:
    """Each part of the top bar lies inside the window and overlaps no other part."""
    bar = page.locator("header.topbar")
    parts = [bar.locator(".brand"), bar.get_by_role("button", name="Menu"),
             bar.get_by_role("combobox", name="Organization"), bar.locator(".email"),
             bar.get_by_role("link", name="Account"), bar.get_by_role("button", name="Theme: System (change)"),
             bar.get_by_role("button", name="Sign out")]
    width = page.evaluate("window.innerWidth")
    boxes = []
    for part in parts:
        expect(part).to_be_visible()
        box = part.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (part, box, width)
        boxes.append(box)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                     or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])
            assert apart, f"top bar parts overlap: {a} and {b}"


@pytest.mark.parametrize(("width", "height"), [(768, 1024), (820, 1180)])
def test_the_top_bar_fits_a_tablet_and_its_menu_leads_to_the_pages(
        server: LiveServer, api_url: str, mailbox: Mailbox, browser: Any, artifacts: Path,
        width: int, height: int) -> None:
    person: Actor = signup(api_url, org_name="Harbour Analytics Europe")
    other = signup(api_url, org_name="Northern Lights Shipping Company")
    assert person.email is not None
    r = other.post("/org/invites", json={"email": person.email})
    assert r.status_code == 201, r.text
    [link] = wait_for_links(mailbox, person.email, 1)
    accepted = person.post(f"{link}/accept")
    assert accepted.status_code == 200, accepted.text
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        sign_in(page, server.url, person, "/teams")
        expect(page.get_by_role("combobox", name="Organization").locator("option")).to_have_count(2)
        assert_no_horizontal_overflow(page)
        assert_top_bar_fits(page)
        nav = page.get_by_role("navigation", name="Main")
        menu = page.get_by_role("button", name="Menu")
        expect(menu).to_have_attribute("aria-expanded", "false")
        for name in NAV:
            expect(nav.get_by_role("link", name=name)).to_be_hidden()
        page.screenshot(path=str(artifacts / f"tablet-{width}.png"))

        # By keyboard: open, every link there, Escape closes and gives the focus back to the button.
        menu.focus()
        page.keyboard.press("Enter")
        expect(menu).to_have_attribute("aria-expanded", "true")
        for name in NAV:
            expect(nav.get_by_role("link", name=name)).to_be_visible()
        assert_no_horizontal_overflow(page)
        page.screenshot(path=str(artifacts / f"tablet-{width}-menu.png"))
        page.keyboard.press("Tab")
        expect(nav.get_by_role("link", name="Teams")).to_be_focused()
        page.keyboard.press("Escape")
        expect(menu).to_have_attribute("aria-expanded", "false")
        expect(menu).to_be_focused()
        expect(nav.get_by_role("link", name="Teams")).to_be_hidden()

        # A link leads to its page, and the menu closes behind it.
        page.keyboard.press("Space")
        expect(menu).to_have_attribute("aria-expanded", "true")
        nav.get_by_role("link", name="Catalogs").click()
        expect(page).to_have_url(f"{server.url}/catalogs")
        expect(page.get_by_role("heading", name="Catalogs")).to_be_visible()
        expect(menu).to_have_attribute("aria-expanded", "false")
        assert_no_horizontal_overflow(page)
        menu.click()
        nav.get_by_role("link", name="Organization").click()
        expect(page).to_have_url(f"{server.url}/members")
        expect(page.get_by_role("navigation", name="Organization")).to_be_visible()
        expect(page.get_by_role("table", name="Members").locator("tbody tr")).to_have_count(1)  # its table too
        page.screenshot(path=str(artifacts / f"tablet-{width}-members.png"), full_page=True)
        assert_no_horizontal_overflow(page)
        assert_top_bar_fits(page)
    finally:
        context.close()
