"""`sailplane notebooks list|start|stop|open` against a real compute node (a real Sail session and marimo server).
`open` hands the URL to the browser named by BROWSER: here a script that records it, and the test then follows it
as the browser would (the notebook proxy's 303 into the notebook, with its cookie)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from sailplane.workloads.notebooks.opening import COOKIE_NAME
from tests.client.test_cli import Cli, one_line_error
from tests.notebooks.helpers import make_config, make_notebook
from tests.support.actors import PASSWORD, signup
from tests.support.server import LiveServer
from tests.support.world import create_team


def recording_browser(tmp_path: Path) -> tuple[Path, Path]:
    """A BROWSER command that writes the URL it is given to a file, as a browser would open it."""
    script, seen = tmp_path / "browser.py", tmp_path / "opened.txt"
    script.write_text(f"#!{sys.executable}\nimport sys\nopen({str(seen)!r}, 'a').write(sys.argv[1] + '\\n')\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, seen


def follow(node: LiveServer, url: str, notebook: str) -> httpx.Client:
    """What the browser does with the URL (the server's public URL is another port: its path and query here)."""
    parts = urlsplit(url)
    browser = httpx.Client(base_url=node.url, follow_redirects=False, timeout=30, headers={"Accept": "text/html"})
    r = browser.get(f"{parts.path}?{parts.query}")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/notebooks/{notebook}/"
    assert any(c.name == COOKIE_NAME for c in browser.cookies.jar)
    return browser


def test_list_start_open_in_the_browser_and_stop(compute_server: LiveServer, tmp_path: Path) -> None:
    owner = signup(f"{compute_server.url}/api/v1")
    team = create_team(owner, "CLI notebooks")
    config = make_config(owner, team)
    notebook = make_notebook(owner, config, name="CLI notebook", teamIds=[team])["item"]["notebookId"]
    cli = Cli(tmp_path / "config")
    assert cli("login", "--url", compute_server.url, "--email", owner.email or "", password=PASSWORD).returncode == 0

    [listed] = cli.json("notebooks", "list")
    assert (listed["id"], listed["name"], listed["status"], listed["teamIds"]) == \
        (notebook, "CLI notebook", "stopped", [team])
    table = cli("notebooks", "list", env={"COLUMNS": "160"}).stdout
    assert f"│ {notebook} │ CLI notebook │ stopped │ {team} │" in table
    not_running = cli("notebooks", "open", "CLI notebook", "--print")
    one_line_error(not_running, 1, "is stopped", "notebook_not_running", "HTTP 409")
    one_line_error(cli("notebooks", "start", "No such notebook"), 1, "no notebook", "'No such notebook'")

    started = cli.json("notebooks", "start", "CLI notebook", "--wait")
    try:
        assert started["status"] == "running", started
        script, seen = recording_browser(tmp_path)
        opened = cli("notebooks", "open", "CLI notebook", env={"BROWSER": str(script)})
        assert opened.returncode == 0, opened.stderr
        assert opened.stdout == "" and "Opened notebook CLI notebook in your browser" in opened.stderr
        [url] = seen.read_text().splitlines()
        page = follow(compute_server, url, notebook).get(f"/notebooks/{notebook}/")
        assert page.status_code == 200 and "marimo" in page.text.lower()

        # --print (and no browser to open: no BROWSER, no display) prints a URL that works the same, once.
        for args in (["--print"], []):
            printed = cli("notebooks", "open", notebook, *args, env={"BROWSER": str(script)} if args else {})
            assert printed.returncode == 0, printed.stderr
            follow(compute_server, printed.stdout.strip(), notebook)
        assert len(seen.read_text().splitlines()) == 1  # the browser was not run for them
    finally:
        stopped = cli.json("notebooks", "stop", notebook, "--wait")
    assert stopped["status"] == "stopped"
    assert [n["status"] for n in cli.json("notebooks", "list")] == ["stopped"]
