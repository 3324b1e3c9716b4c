"""`sailplane notebooks list|start|stop|open`: marimo notebooks on Sail. A notebook is named by its ID or its name.

`open` asks the server for a one-time URL (valid 5 minutes) and hands it to the user's browser, or prints it where
no browser can be opened (`--print`, or no display and no BROWSER: e.g. over SSH, where the URL is pasted into the
laptop's browser)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sailplane.client.cli.common import (
    OutputOption,
    ProfileOption,
    api,
    by_id,
    can_open_a_browser,
    emit,
    fail,
    one_named,
)
from sailplane.client.cli.profiles import DEFAULT_PROFILE

if TYPE_CHECKING:
    from sailplane.client import Client

notebooks = typer.Typer(help="marimo notebooks on Sail.", no_args_is_help=True)
NotebookArg = Annotated[str, typer.Argument(help="The notebook's ID or name.")]
WaitOption = Annotated[bool, typer.Option("--wait", help="Wait until it is running (start) or stopped (stop); "
                                                         "exit 1 if it fails.")]
COLUMNS = [("ID", lambda n: n["id"]), ("NAME", lambda n: n.get("name")), ("STATUS", lambda n: n.get("status")),
           ("TEAMS", lambda n: ", ".join(n.get("teamIds") or [])),
           ("LAST ACTIVE", lambda n: n.get("lastActiveAt"))]
# Where a start or stop settles (`--wait`); openNotebook accepts running, idle and detached.
SETTLED = {"start": {"running", "idle", "detached", "failed", "stopped"}, "stop": {"stopped", "failed"}}


def _all(client: Client) -> list[dict[str, Any]]:
    body = client.call("listNotebooks", query={"limit": 100})
    records = by_id(body.get("included", {}).get("notebooks"))
    return [{**records[ref["notebookId"]], "teamIds": ref.get("teamIds")}
            for ref in body.get("items") or [] if ref["notebookId"] in records]


def _find(client: Client, notebook: str) -> dict[str, Any]:
    return one_named(_all(client), notebook, "notebook", "notebooks")


@notebooks.command("list")
def list_notebooks(profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """Your notebooks and those shared with your teams, newest first."""
    with api(profile) as client:
        rows = _all(client)
    emit(output, rows, COLUMNS)


@notebooks.command("start")
def start(notebook: NotebookArg, wait: WaitOption = False, profile: ProfileOption = DEFAULT_PROFILE,
          output: OutputOption = "table") -> None:
    """Start a notebook: its Sail session and its marimo server."""
    _act("start", ("running", "idle", "detached"), notebook, wait, profile, output)


@notebooks.command("stop")
def stop(notebook: NotebookArg, wait: WaitOption = False, profile: ProfileOption = DEFAULT_PROFILE,
         output: OutputOption = "table") -> None:
    """Stop a notebook (its source is kept)."""
    _act("stop", ("stopped",), notebook, wait, profile, output)


def _act(action: str, settled: tuple[str, ...], notebook: str, wait: bool, profile: str, output: str) -> None:
    """startNotebook or stopNotebook; with `wait`, until it settles (exit 1 unless in one of `settled`)."""
    with api(profile) as client:
        record = client.call(f"{action}Notebook", {"notebook": _find(client, notebook)["id"]})
        if wait:
            record = _wait(client, record, action, quiet=output == "json")
    emit(output, record, COLUMNS, rows=[record])
    if wait and record["status"] not in settled:
        fail(f"notebook {record['id']} did not {action}: {record['status']} ({record.get('statusMessage')})")


def _wait(client: Client, record: dict[str, Any], action: str, *, quiet: bool) -> dict[str, Any]:
    """Poll the notebook until it settles, with a spinner and its status on a terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    status = console.status(f"notebook {record['name']}: {record['status']}") \
        if console.is_terminal and not quiet else None
    if status:
        status.start()
    try:
        while record["status"] not in SETTLED[action]:
            time.sleep(0.5)
            body = client.call("describeNotebook", {"notebook": record["id"]})
            record = {**by_id(body["included"]["notebooks"])[record["id"]], "teamIds": body["item"].get("teamIds")}
            if status:
                status.update(f"notebook {record['name']}: {record['status']}")
    finally:
        if status:
            status.stop()
    return record


@notebooks.command("open")
def open_notebook(notebook: NotebookArg,
                  print_only: Annotated[bool, typer.Option("--print", help="Print the URL instead of opening a "
                                                                           "browser.")] = False,
                  profile: ProfileOption = DEFAULT_PROFILE) -> None:
    """Open a running notebook in your browser (a one-time sign-in URL, valid for 5 minutes)."""
    with api(profile) as client:
        found = _find(client, notebook)
        url = str(client.call("openNotebook", {"notebook": found["id"]})["url"])
    if print_only or not can_open_a_browser():
        print(url)
        return
    import webbrowser

    if not webbrowser.open(url):
        print(url)  # no browser after all: the user opens it by hand
        return
    print(f"Opened notebook {found['name']} in your browser.", file=sys.stderr)
