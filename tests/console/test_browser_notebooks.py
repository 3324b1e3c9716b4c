"""Notebooks in the console, in a real browser against a real compute node (a real Sail session and marimo server
per started notebook): a notebook created in the form (a refused name first: the API's field error beside the
field), started from its page with its status followed live, opened embedded (the `open` URL in an iframe of the
console's page, the `ping` heartbeat sent while it is shown), marimo's editor inside the frame runs the
template's `40 + 2` on Sail, then stopped from the page. A page of another origin cannot frame the notebook even
with the browser's cookie for it (frame-ancestors 'self'). Screenshots: the notebooks list, the open notebook."""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.notebooks.helpers import make_config, stop_stopped
from tests.support.actors import PASSWORD, Actor, signup
from tests.support.server import LiveServer

FRAME = 'iframe[title^="Notebook"]'
RUN_ALL = '[data-testid="chrome-controls-bottom-right"] [data-testid="run-button"]'


@contextmanager
def framing_page(target: str) -> Iterator[str]:
    """A page of another origin on this machine (its own port) that frames `target`: its URL."""
    page = f'<!doctype html><title>Framer</title><iframe id="f" src="{target}"></iframe>'.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def sign_in(page: Any, url: str, owner: Actor, path: str) -> None:
    """Sign in on the sign-in page the console sends `path` to, and come back to `path`."""
    assert owner.email is not None
    page.goto(f"{url}{path}")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{url}{path}")


def test_a_notebook_created_started_opened_embedded_and_stopped(
        compute_server: LiveServer, compute_api: str, browser: Any, artifacts: Path) -> None:
    server = compute_server
    owner: Actor = signup(compute_api)
    r = owner.post("/org/teams", json={"name": "analysts"})
    assert r.status_code == 201, r.text
    team_id = r.json()["team"]["id"]
    config_id = make_config(owner, team_id)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    notebook_id = ""
    try:
        page = context.new_page()
        sign_in(page, server.url, owner, "/notebooks")
        expect(page.get_by_text("No notebooks yet")).to_be_visible()

        # A blank name: the API's field error beside the name field, nothing created.
        form = page.get_by_role("form", name="Create notebook")
        name = form.get_by_label("Notebook name")
        form.get_by_label("Share with").select_option(label="analysts")
        form.get_by_role("button", name="Create notebook").click()
        refused = owner.post("/workloads/notebooks", json={"workloadConfigId": config_id, "name": "  "})
        assert refused.status_code == 422, refused.text
        expect(page.locator("#name-error")).to_have_text(refused.json()["error"]["details"]["fieldErrors"]["name"])
        expect(name).to_have_attribute("aria-describedby", "name-error")
        assert form.locator("label", has=page.locator('input[name="name"]')).locator("#name-error").count() == 1
        assert owner.get("/workloads/notebooks").json()["total"] == 0

        name.fill("Sales exploration")
        form.get_by_role("button", name="Create notebook").click()
        expect(page).to_have_url(re.compile(r"/notebook/[A-Z0-9]+$"))
        notebook_id = page.url.rsplit("/", 1)[1]
        described = owner.get(f"/workloads/notebooks/{notebook_id}").json()
        assert described["item"]["teamIds"] == [team_id]
        assert described["included"]["notebooks"][0]["name"] == "Sales exploration"
        status = page.get_by_test_id("notebook-status")
        expect(status).to_have_text("stopped")
        expect(page.get_by_role("button", name="Open notebook")).to_have_count(0)

        # Start: the page follows the status until the notebook's Sail session and marimo server are up.
        page.get_by_role("button", name="Start").click()
        expect(status).to_have_text(re.compile("starting|running"))
        expect(status).to_have_text("running", timeout=120_000)
        assert owner.get(f"/workloads/notebooks/{notebook_id}").json()["included"]["notebooks"][0]["status"] \
            == "running"

        # Open it embedded: the heartbeat goes out as soon as it is shown; marimo's editor is inside the frame.
        with page.expect_response(lambda resp: resp.url.endswith(f"/notebooks/{notebook_id}/ping")) as ping:
            page.get_by_role("button", name="Open notebook").click()
        assert ping.value.status == 200
        frame_element = page.locator(FRAME)
        expect(frame_element).to_have_attribute("src", re.compile(
            rf"^{re.escape(server.url)}/notebooks/{notebook_id}/_auth\?token="))
        frame = page.frame_locator(FRAME)
        expect(frame.locator(".cm-editor").first).to_be_visible(timeout=60_000)
        expect(frame.get_by_text("SELECT 40 + 2 AS answer").first).to_be_visible(timeout=30_000)
        # The frame really is the notebook on the console's origin (not an error page in its place).
        inner = next(f for f in page.frames if f != page.main_frame)
        assert inner.url == f"{server.url}/notebooks/{notebook_id}/", inner.url
        # Run all: the template's cells ask the notebook's Sail session for 40 + 2.
        frame.locator(RUN_ALL).click()
        expect(frame.get_by_text("42", exact=True).first).to_be_visible(timeout=120_000)
        page.screenshot(path=str(artifacts / "20-notebook-open.png"), full_page=True)

        # The list shows it running, owned by the caller, shared with the team.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Notebooks").click()
        row = page.get_by_role("table", name="Notebooks").locator("tbody tr", has_text="Sales exploration")
        expect(row).to_contain_text("running")
        expect(row).to_contain_text("You")
        expect(row).to_contain_text("analysts")
        page.screenshot(path=str(artifacts / "21-notebooks.png"), full_page=True)

        # Another origin (same site: the same host on another port) cannot frame it, even with the cookie.
        headers = context.request.get(f"{server.url}/notebooks/{notebook_id}/").headers  # the browser's cookie
        assert headers["content-security-policy"] == "frame-ancestors 'self'"
        assert headers["x-frame-options"] == "SAMEORIGIN"
        with framing_page(f"{server.url}/notebooks/{notebook_id}/") as framer:
            other = context.new_page()
            seen: list[str] = []
            other.on("response", lambda resp: seen.append(f"{resp.status} {resp.url}"))
            other.on("requestfailed", lambda req: seen.append(f"failed {req.url} {req.failure}"))
            other.goto(framer)
            # The notebook answered (the cookie went with the request): only its headers keep it out of the frame.
            deadline = time.monotonic() + 30
            while f"200 {server.url}/notebooks/{notebook_id}/" not in seen and time.monotonic() < deadline:
                other.wait_for_timeout(200)
            assert f"200 {server.url}/notebooks/{notebook_id}/" in seen, seen
            other.wait_for_timeout(2000)
            blocked = next(f for f in other.frames if f != other.main_frame)
            assert not blocked.url.startswith(server.url), (blocked.url, seen)
            assert other.frame_locator("#f").locator(".cm-editor").count() == 0
            other.close()

        # Stop from its page: the editor goes away, the notebook is stopped.
        row.get_by_role("link", name="Sales exploration").click()
        page.get_by_role("button", name="Open notebook").click()
        expect(page.locator(FRAME)).to_be_visible()
        page.get_by_role("button", name="Stop").click()
        expect(page.locator(FRAME)).to_have_count(0)
        expect(status).to_have_text("stopped", timeout=60_000)
        expect(page.get_by_role("button", name="Start")).to_be_visible()
        assert owner.get(f"/workloads/notebooks/{notebook_id}").json()["included"]["notebooks"][0]["status"] \
            == "stopped"
        notebook_id = ""
    finally:
        context.close()
        if notebook_id:
            r = owner.get(f"/workloads/notebooks/{notebook_id}")
            if r.json()["included"]["notebooks"][0]["status"] not in ("stopped", "failed"):
                stop_stopped(owner, notebook_id)
