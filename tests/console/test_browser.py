"""The console in a real browser (Playwright driving Debian's Chromium, `/usr/bin/chromium`) against a real server
with compute: a user who signed up through the API signs in through the page (a wrong password first, showing the
API's message), creates a team in the page, starts a session for it, copies the PySpark snippet with its fresh
token, runs it with PySpark, and sees the session become active in the page; then closes it there.
Screenshots of the main pages go to test-artifacts/console-<database>/ (gitignored) for people to look at."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.mfa.helpers import code_at, enrolled_user, password_login
from tests.sessions.helpers import describe
from tests.support.actors import PASSWORD, Actor, login, signup
from tests.support.server import LiveServer


def test_sign_in_create_a_team_start_a_session_and_connect_pyspark(
        compute_server: LiveServer, compute_api: str, browser: Any, artifacts: Path, tmp_path: Path) -> None:
    server = compute_server
    owner: Actor = signup(compute_api)
    assert owner.email is not None
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    session_id = ""
    try:
        page = context.new_page()
        # A deep link before signing in leads to the sign-in page, and back there after.
        page.goto(f"{server.url}/sessions")
        expect(page).to_have_url(re.compile(r"/signin\?next=%2Fsessions$"))
        expect(page.get_by_role("heading", name="Sign in to Sailplane")).to_be_visible()
        page.screenshot(path=str(artifacts / "01-sign-in.png"))

        # A wrong password: the API's own message, in the page.
        wrong = login(compute_api, owner.email, "not-the-password")
        assert wrong.status_code == 401
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill("not-the-password-either")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("alert")).to_have_text(wrong.json()["error"]["message"])
        page.screenshot(path=str(artifacts / "02-sign-in-error.png"))

        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{server.url}/sessions")
        expect(page.get_by_text("create a team")).to_be_visible()  # the empty state says what to do next

        # Teams: the empty state, then a team created in the form appears in the list (and in the API).
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Teams").click()
        expect(page).to_have_url(f"{server.url}/teams")
        expect(page.get_by_text("No teams yet")).to_be_visible()
        page.get_by_label("Team name").fill("analytics")
        page.get_by_label("Description").fill("Dashboards and ad-hoc queries")
        page.get_by_role("button", name="Create team").click()
        row = page.locator("tbody tr", has_text="analytics")
        expect(row).to_contain_text("Dashboards and ad-hoc queries")
        teams = owner.get("/org/teams").json()["items"]
        assert [t["team"]["name"] for t in teams] == ["analytics"]
        team_id = teams[0]["team"]["id"]
        page.screenshot(path=str(artifacts / "03-teams.png"))

        # A session for the team, started in the page: its own page (a deep link), pending until a client calls.
        row.get_by_role("link", name="Sessions").click()
        expect(page).to_have_url(f"{server.url}/sessions?team={team_id}")
        expect(page.get_by_text("No sessions yet")).to_be_visible()
        page.get_by_label("Session name (optional)").fill("console-test")
        page.get_by_role("button", name="Start session").click()
        expect(page).to_have_url(re.compile(r"/sessions/[A-Z0-9]+$"))
        session_id = page.url.rsplit("/", 1)[1]
        assert describe(owner, session_id)["teamId"] == team_id
        status = page.get_by_test_id("session-status")
        expect(page.get_by_role("heading", name="console-test")).to_be_visible()

        # The snippet, with a fresh token, copied to the clipboard as shown.
        page.get_by_role("button", name="Connect with PySpark").click()
        shown = page.get_by_test_id("snippet")
        expect(shown).to_contain_text(";token=")
        page.get_by_role("button", name="Copy snippet").click()
        expect(page.get_by_role("button", name="Copied")).to_be_visible()
        snippet = str(page.evaluate("navigator.clipboard.readText()"))
        assert snippet.strip() == shown.inner_text().strip()
        assert str(describe(owner, session_id)["connectionInfo"]["grpcEndpoint"]) in snippet
        assert "use_ssl" not in snippet  # the test gateway is plaintext (the page says so in its meta tag)
        page.screenshot(path=str(artifacts / "04-session-snippet.png"))

        # Run it with PySpark (a file: PySpark's Spark Connect client will not start under `python -c`).
        script = tmp_path / "snippet.py"
        script.write_text(snippet)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAILPLANE_")}
        ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, env=env,
                             cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert re.search(r"\|\s*ok\s*\|", ran.stdout) and re.search(r"\|\s*1\s*\|", ran.stdout), ran.stdout

        # The page follows the session's status by itself: it becomes active without a reload.
        expect(status).to_have_text("active", timeout=30_000)
        page.screenshot(path=str(artifacts / "05-session-active.png"))
        page.emulate_media(color_scheme="dark")
        dark = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        page.screenshot(path=str(artifacts / "06-session-active-dark.png"))
        page.emulate_media(color_scheme="light")
        assert dark != page.evaluate("getComputedStyle(document.documentElement).backgroundColor")

        # The list shows it too (back button), and the session closes from its page.
        page.go_back()
        expect(page).to_have_url(re.compile(r"/sessions\?team="))
        expect(page.locator("tbody tr", has_text="console-test")).to_contain_text("active")
        page.screenshot(path=str(artifacts / "07-sessions.png"))
        page.goto(f"{server.url}/sessions/{session_id}")  # a deep link, signed in from storage
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Close session").click()
        expect(status).to_have_text("closed", timeout=30_000)
        assert describe(owner, session_id)["status"] == "closed"

        # Relaunch: a new session of the same configuration, on its own page; the old one stays closed.
        page.get_by_role("button", name="Relaunch").click()
        expect(page).not_to_have_url(f"{server.url}/sessions/{session_id}")
        expect(page.get_by_role("heading", name="console-test")).to_be_visible()
        relaunched = page.url.rsplit("/", 1)[1]
        assert describe(owner, relaunched)["teamId"] == team_id
        assert describe(owner, session_id)["status"] == "closed"
        session_id = relaunched
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Close session").click()
        expect(status).to_have_text("closed", timeout=30_000)
        session_id = ""

        # Sign out: the console forgets the login and the API refuses its token.
        token = str(page.evaluate("JSON.parse(localStorage.getItem('sailplane.auth')).token"))
        assert Actor(compute_api, token).get("/me").status_code == 200
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/signin"))
        assert page.evaluate("localStorage.getItem('sailplane.auth')") is None
        assert Actor(compute_api, token).get("/me").status_code == 401
    finally:
        context.close()
        if session_id:
            owner.delete(f"/workloads/sessions/{session_id}")


def test_sign_in_with_an_authenticator_code(server: LiveServer, api_url: str, browser: Any, artifacts: Path) -> None:
    """A user with MFA: the password leads to the code form, a wrong code shows the API's message, the right one
    signs in."""
    user, secret, _ = enrolled_user(api_url)
    assert user.email is not None
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{server.url}/")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("form", name="Two-factor authentication")).to_be_visible()
        assert page.evaluate("localStorage.getItem('sailplane.auth')") is None  # no login before the code

        right = code_at(secret, 0)
        wrong = str((int(right) + 1) % 1_000_000).zfill(6)
        page.get_by_label("Code").fill(wrong)
        page.get_by_role("button", name="Verify").click()
        alert = page.get_by_role("alert")
        expect(alert).to_be_visible()
        challenge = password_login(user)["challengeToken"]
        refused = Actor(api_url).post("/auth/login/mfa", json={"challengeToken": challenge, "code": wrong})
        assert refused.status_code == 401, refused.text
        expect(alert).to_have_text(refused.json()["error"]["message"])  # the API's own sentence
        page.screenshot(path=str(artifacts / "08-mfa-wrong-code.png"))

        page.get_by_label("Code").fill(code_at(secret, 0))
        page.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(f"{server.url}/teams")
        expect(page.get_by_role("heading", name="Teams")).to_be_visible()
    finally:
        context.close()
