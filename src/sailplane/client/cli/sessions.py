"""`sailplane sessions create|list|close|connect`: interactive Spark Connect sessions. `connect` prints the
SPARK_REMOTE string with a fresh session token, exports it for a shell, or opens a PySpark shell on it."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from sailplane.client.cli.common import OutputOption, ProfileOption, api, by_id, emit, fail
from sailplane.client.cli.profiles import DEFAULT_PROFILE

sessions = typer.Typer(help="Interactive Spark Connect sessions.", no_args_is_help=True)
SessionArg = Annotated[str, typer.Argument(help="The session ID.")]
COLUMNS = [("ID", lambda s: s["id"]), ("NAME", lambda s: s.get("name")), ("STATUS", lambda s: s["status"]),
           ("TEAM", lambda s: s.get("teamId")), ("CREATED", lambda s: s.get("createdAt"))]


@sessions.command("create")
def create(config: Annotated[str | None, typer.Option(help="The workload config ID to run it with.")] = None,
           team: Annotated[str | None, typer.Option(help="The team (default: the config's).")] = None,
           name: Annotated[str | None, typer.Option(help="A name for the session.")] = None,
           profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """Open a session (its Sail server starts in the background)."""
    with api(profile) as client:
        session = client.call("createSession", body={k: v for k, v in {
            "workloadConfigId": config, "teamId": team, "name": name}.items() if v is not None})
    emit(output, session, COLUMNS, rows=[session])


@sessions.command("list")
def list_sessions(status: Annotated[str | None, typer.Option(help="Only sessions in this state.")] = None,
                  profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """Your sessions and those of your teams you can see."""
    rows: list[dict[str, Any]] = []
    with api(profile) as client:
        for page in client.pages("listSessions", query={"status": status}):
            records = by_id(page.get("included", {}).get("sessions"))
            rows.extend(records[item["id"]] for item in page.get("items") or [] if item["id"] in records)
    emit(output, rows, COLUMNS)


@sessions.command("close")
def close(session: SessionArg, profile: ProfileOption = DEFAULT_PROFILE) -> None:
    """Close a session and stop its Sail server."""
    with api(profile) as client:
        client.close_session(session)
    print(f"Session {session} is closing.")


@sessions.command("connect")
def connect(session: SessionArg,
            export: Annotated[bool, typer.Option("--export", help="Print `export SPARK_REMOTE=…` for a shell "
                                                                  "(eval \"$(sailplane sessions connect ID "
                                                                  "--export)\").")] = False,
            pyspark: Annotated[bool, typer.Option("--pyspark", help="Open a PySpark shell on the session instead "
                                                                    "(`pyspark` on PATH, else this Python's "
                                                                    "pyspark).")] = False,
            use_ssl: Annotated[bool, typer.Option(help="The gateway serves TLS (the server's default).")] = True,
            profile: ProfileOption = DEFAULT_PROFILE) -> None:
    """Print the SPARK_REMOTE connection string of a session, with a fresh session token."""
    if export and pyspark:
        fail("give --export or --pyspark, not both", 2)
    shell = _pyspark_shell() if pyspark else None  # before a token is issued for nothing
    with api(profile) as client:
        described = client.describe_session(session)
        endpoint = (described.get("connectionInfo") or {}).get("grpcEndpoint")
        if not endpoint:
            fail(f"session {session} has no Spark Connect endpoint (status {described.get('status')}; only "
                 "its owner can connect, and the server must run its gateway)")
        token = client.issue_session_token(session)["token"]
    remote = f"{endpoint}/;token={token}" + (";use_ssl=true" if use_ssl else "")
    if shell is None:
        print(f"export SPARK_REMOTE='{remote}'" if export else remote)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # The token goes through the environment only: not on a command line other users' `ps` shows.
    os.execve(shell[0], shell, {**os.environ, "SPARK_REMOTE": remote, "SPARK_CONNECT_MODE_ENABLED": "1"})


def _pyspark_shell() -> list[str]:
    """The command of a PySpark shell: Spark's `pyspark` launcher when it is on PATH, else an interactive Python
    with `spark` made by `pyspark_shell` (this Python's PySpark, e.g. pyspark-client)."""
    import importlib.util
    import shutil

    launcher = shutil.which("pyspark")
    if launcher:
        return [launcher]
    if importlib.util.find_spec("pyspark") is None:
        fail("no PySpark here: install a client (pip install pyspark-client) or put `pyspark` on PATH; "
             "without --pyspark the command prints the SPARK_REMOTE string for your own")
    return [sys.executable, "-i", "-m", "sailplane.client.cli.pyspark_shell"]
