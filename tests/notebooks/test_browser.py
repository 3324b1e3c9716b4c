"""The notebook in a real browser (Playwright driving Debian's Chromium, `/usr/bin/chromium`): the open URL
leads through the proxy to the marimo editor, its cells run against a real Sail server (`sail spark server`,
SPARK_REMOTE for the marimo kernel), a cell added in the editor computes `spark.sql("select 40 + 2")`,
and another team's member gets nothing: 404 from open, and the first user's cookie opens no other notebook.

Until the notebook runtime (start/stop) is merged, the test starts marimo and Sail itself
(`marimo_server.py`); then it starts the notebook through the API instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sailplane.config import Settings
from sailplane.workloads.notebooks.opening import COOKIE_NAME
from sailplane.workloads.notebooks.presence import NotebookPresence
from tests.notebooks.helpers import build_org, make_config, make_notebook
from tests.notebooks.marimo_server import MarimoServer, mark_running, require_marimo
from tests.notebooks.test_proxy import local, open_url
from tests.support.actors import assert_error
from tests.support.dnsmasq import free_port
from tests.support.server import LiveServer
from tests.support.waiting import wait_until

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def sail_remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Sail Spark Connect server on loopback (the `sail` CLI of pysail), as SPARK_REMOTE."""
    sail = shutil.which("sail", path=str(Path(sys.executable).parent)) or shutil.which("sail")
    if sail is None:
        pytest.skip("the sail CLI (pysail) is not installed")
    port = free_port()
    workdir = tmp_path_factory.mktemp("sail")
    with (workdir / "sail.log").open("wb") as out:
        proc = subprocess.Popen([sail, "spark", "server", "--ip", "127.0.0.1", "--port", str(port), "-C", str(workdir)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 30
        while not _listening(port):
            assert proc.poll() is None and time.time() < deadline, (workdir / "sail.log").read_text()
            time.sleep(0.1)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh dev)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_notebook_opens_in_a_browser_and_runs_spark_on_sail(
        server: LiveServer, settings: Settings, api_url: str, sail_remote: str, browser: Any,
        tmp_path: Path) -> None:
    require_marimo()
    o = build_org(api_url)
    config = make_config(o.dev1, o.team1)
    notebook = str(make_notebook(o.dev1, config, name="Browser notebook", teamIds=[o.team1])["item"]["notebookId"])
    other = str(make_notebook(o.dev1, config, name="Another", teamIds=[o.team1])["item"]["notebookId"])
    source = o.dev1.get(f"/workloads/notebooks/{notebook}/source").text
    marimo = MarimoServer(notebook, source, tmp_path / "marimo", env={"SPARK_REMOTE": sail_remote}).start()
    try:
        mark_running(server.app.state.db, settings.secret_key, notebook, marimo)
        mark_running(server.app.state.db, settings.secret_key, other, None, port=marimo.port)
        context = browser.new_context()
        try:
            page = context.new_page()
            response = page.goto(local(server, open_url(o.dev1, notebook)))
            assert response is not None and response.status == 200
            assert page.url == f"{server.url}/notebooks/{notebook}/"
            # The editor shows the notebook's cells (CodeMirror editors), and the template's cells ran on Sail.
            page.wait_for_selector(".cm-editor", timeout=60_000)
            assert page.locator(".cm-editor").count() >= 2
            page.get_by_text("SELECT 40 + 2 AS answer").first.wait_for(timeout=30_000)
            presence: NotebookPresence = server.app.state.notebook_presence
            wait_until(lambda: presence.attached(notebook), timeout=30)
            # marimo's edit server does not run cells on open: "run all" (the bottom-right run button).
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
        marimo.stop()


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
