"""Light and dark themes, in a real browser against a real server: the console follows the system's colour
scheme until the person picks one with the toggle, which this browser then remembers across pages and reloads;
"System" follows the system again. The sign-in page has the toggle too, remembered the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.support.actors import PASSWORD, signup

DARK, LIGHT = "rgb(15, 20, 25)", "rgb(255, 255, 255)"


def background(page: Any) -> str:
    return page.evaluate("getComputedStyle(document.documentElement).backgroundColor")  # type: ignore[no-any-return]


def test_the_theme_follows_the_system_until_picked_and_the_pick_is_remembered(
        server: Any, api_url: str, browser: Any, artifacts: Path) -> None:
    owner = signup(api_url)
    assert owner.email is not None
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(f"{server.url}/signin")
        assert background(page) == DARK  # the system says dark
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{server.url}/teams")
        page.screenshot(path=str(artifacts / "theme-dark.png"))

        toggle = page.locator(".account").get_by_role("button", name="Theme: System (change)")
        toggle.click()
        expect(page.get_by_role("button", name="Theme: Light (change)")).to_be_visible()
        assert background(page) == LIGHT
        page.reload()
        expect(page.get_by_role("button", name="Theme: Light (change)")).to_be_visible()
        assert background(page) == LIGHT
        other = context.new_page()  # another tab of this browser
        other.goto(f"{server.url}/sessions")
        expect(other.get_by_role("button", name="Theme: Light (change)")).to_be_visible()
        assert background(other) == LIGHT
        other.close()

        page.get_by_role("button", name="Theme: Light (change)").click()
        expect(page.get_by_role("button", name="Theme: Dark (change)")).to_be_visible()
        assert background(page) == DARK
        page.emulate_media(color_scheme="light")  # picked dark: the system's light does not matter
        assert background(page) == DARK
        page.get_by_role("button", name="Theme: Dark (change)").click()
        expect(page.get_by_role("button", name="Theme: System (change)")).to_be_visible()
        assert background(page) == LIGHT  # the system again, now light
        assert page.evaluate("localStorage.getItem('sailplane.theme')") is None
    finally:
        context.close()


def test_the_theme_is_picked_on_the_sign_in_page_and_remembered(
        server: Any, api_url: str, browser: Any, artifacts: Path) -> None:
    """Before signing in: the sign-in page has the toggle; dark picked there stays after a reload and after
    signing in (the top bar's toggle says so)."""
    owner = signup(api_url)
    assert owner.email is not None
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    try:
        page = context.new_page()
        page.goto(f"{server.url}/signin")
        expect(page.get_by_role("heading", name="Sign in to Sailplane")).to_be_visible()
        assert background(page) == LIGHT  # the system says light
        assert page.evaluate("document.documentElement.getAttribute('data-theme')") is None
        page.get_by_role("button", name="Theme: System (change)").click()
        expect(page.get_by_role("button", name="Theme: Light (change)")).to_be_visible()
        page.get_by_role("button", name="Theme: Light (change)").press("Enter")  # by keyboard too
        expect(page.get_by_role("button", name="Theme: Dark (change)")).to_be_visible()
        assert page.evaluate("document.documentElement.getAttribute('data-theme')") == "dark"
        assert background(page) == DARK
        page.screenshot(path=str(artifacts / "theme-signin-dark.png"))

        page.reload()
        expect(page.get_by_role("button", name="Theme: Dark (change)")).to_be_visible()
        assert page.evaluate("document.documentElement.getAttribute('data-theme')") == "dark"
        assert background(page) == DARK
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{server.url}/teams")
        expect(page.locator(".account").get_by_role("button", name="Theme: Dark (change)")).to_be_visible()
        assert background(page) == DARK
    finally:
        context.close()
