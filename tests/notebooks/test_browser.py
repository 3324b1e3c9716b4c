"""The notebook in a real browser (Playwright driving Debian's Chromium, `/usr/bin/chromium`): the notebook is
started through the API (its own Sail session and marimo server), the open URL leads through the proxy to the
marimo editor, its cells run on the notebook's Sail session (SPARK_REMOTE of the kernel, through the
gateway), a cell added in the editor computes `spark.sql("select 40 + 2")`, and another team's member gets
nothing: 404 from open, and the first user's cookie opens no other notebook."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api

from sailplane.workloads.notebooks.opening import COOKIE_NAME
from sailplane.workloads.notebooks.presence import NotebookPresence
from tests.notebooks.helpers import build_org, make_config, make_notebook, start_running, stop_stopped
from tests.notebooks.test_proxy import local, open_url
from tests.support.actors import assert_error
from tests.support.server import LiveServer
from tests.support.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium (installed by `scripts/bootstrap.sh dev`): missing, the test fails rather than skips."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is not installed (scripts/bootstrap.sh dev)"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_notebook_opens_in_a_browser_and_runs_spark_on_sail(
        compute_server: LiveServer, compute_api: str, browser: Any) -> None:
    server = compute_server
    o = build_org(compute_api)
    config = make_config(o.dev1, o.team1)
    notebook = str(make_notebook(o.dev1, config, name="Browser notebook", teamIds=[o.team1])["item"]["notebookId"])
    other = str(make_notebook(o.dev1, config, name="Another", teamIds=[o.team1])["item"]["notebookId"])
    start_running(o.dev1, notebook)
    try:
        context = browser.new_context()
        try:
            page = context.new_page()
            response = page.goto(local(server, open_url(o.dev1, notebook)))
            assert response is not None and response.status == 200
            assert page.url == f"{server.url}/notebooks/{notebook}/"
            # The editor shows the notebook's cells (CodeMirror editors).
            page.wait_for_selector(".cm-editor", timeout=60_000)
            assert page.locator(".cm-editor").count() >= 2
            page.get_by_text("SELECT 40 + 2 AS answer").first.wait_for(timeout=30_000)
            presence: NotebookPresence = server.app.state.notebook_presence
            wait_until(lambda: presence.attached(notebook), timeout=30)
            # marimo's edit server does not run cells on open: "run all" (the bottom-right run button); the
            # template's cells open the notebook's own Sail session and ask it for 40 + 2.
            page.locator('[data-testid="chrome-controls-bottom-right"] [data-testid="run-button"]').click()
            _wait_for_output(page, "42", timeout=120)
            _add_and_run_a_cell(page, 'spark.sql("select 40 + 2").collect()[0][0] * 1000 + 1')
            _wait_for_output(page, "42001", timeout=120)
            cookie = next(c for c in context.cookies() if c["name"] == COOKIE_NAME)
            assert cookie["httpOnly"] and cookie["path"] == f"/notebooks/{notebook}/"
        finally:
            context.close()
        wait_until(lambda: not presence.attached(notebook), timeout=30)

        # Another team's member: nothing to open, and the first user's cookie opens no other notebook.
        assert_error(o.dev2.post(f"/workloads/notebooks/{notebook}/open"), 404)
        thief = browser.new_context()
        try:
            thief.add_cookies([{**cookie, "path": f"/notebooks/{other}/"}])
            page = thief.new_page()
            stolen = page.goto(f"{server.url}/notebooks/{other}/")
            assert stolen is not None and stolen.status == 404
            assert "marimo" not in page.content().lower()
            thief.clear_cookies()
            bare = page.goto(f"{server.url}/notebooks/{notebook}/")
            assert bare is not None and bare.status == 401
        finally:
            thief.close()
    finally:
        stop_stopped(o.dev1, notebook)


def _wait_for_output(page: Any, text: str, timeout: float) -> None:
    """Some element (a cell's output, a table's cell) shows exactly `text`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if page.get_by_text(text, exact=True).count():
            return
        time.sleep(0.5)
    page.screenshot(path=str(Path(os.environ.get("SAILPLANE_TEST_SCREENSHOTS", "/tmp")) / "notebook-failure.png"),
                    full_page=True)
    raise AssertionError(f"no output {text!r}: {page.inner_text('body')[:3000]}")


def _add_and_run_a_cell(page: Any, code: str) -> None:
    """Add a Python cell at the end of the notebook (marimo's "Python" button), type `code` and run it."""
    before = page.locator(".cm-editor").count()
    page.get_by_role("button", name="Python", exact=True).click()
    wait_until(lambda: page.locator(".cm-editor").count() > before, timeout=10)
    page.locator(".cm-editor .cm-content").last.click()
    page.keyboard.type(code)
    page.keyboard.press("Control+Enter")
