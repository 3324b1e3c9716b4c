"""The user commands of `sailplane`, run as real subprocesses against real servers: a journey from `login` to a
job run followed with `logs --follow`, JSON output parsed, sessions with their SPARK_REMOTE string, and one clear
line with a non-zero exit for a wrong password, an expired (revoked) token and a server that is down."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sailplane.client import AuthenticationError, Client
from sailplane.config import Settings
from tests.runs.live import python_job
from tests.support.actors import PASSWORD, Actor, signup
from tests.support.clients import run_script
from tests.support.databases import fresh_database
from tests.support.server import LiveServer
from tests.support.world import create_member, create_team

SAILPLANE = [sys.executable, "-m", "sailplane.cli"]
# A PySpark client on the URL it is given: 40 + 2 computed by the session's Sail server.
ANSWER = ("import sys\nfrom pyspark.sql import SparkSession\n"
          "spark = SparkSession.builder.remote(sys.argv[1]).create()\n"
          "print(spark.sql('select 40 + 2 AS n').collect()[0]['n'])\nspark.stop()\n")


class Cli:
    """`sailplane` with a config directory of its own."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir

    def __call__(self, *args: str, password: str | None = None, timeout: float = 180,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Without a display nor BROWSER (unless `env` names one), as on a server."""
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SAILPLANE_")
                  and k not in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY")}, **(env or {})}
        env["SAILPLANE_CONFIG_DIR"] = str(self.config_dir)
        if password is not None:
            env["SAILPLANE_PASSWORD"] = password
        return subprocess.run([*SAILPLANE, *args], env=env, capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)

    def json(self, *args: str) -> Any:
        done = self(*args, "--output", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sailplane: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


def test_login_run_a_job_and_follow_its_logs(compute_server: LiveServer, tmp_path: Path) -> None:
    owner = signup(f"{compute_server.url}/api/v1")
    team = create_team(owner, "CLI journey")
    code = "import time\nfor i in range(20):\n    print(f'line {i}', flush=True)\n    time.sleep(0.1)\n"
    # more than the server's 1 MiB a call, then a failure
    noisy = "for i in range(1200):\n    print(f'{i:06d} ' + 'x' * 1000)\nraise SystemExit(3)\n"
    failing = python_job(owner, team, noisy, jobKey="cli-failing")
    cli = Cli(tmp_path / "config")

    done = cli("login", "--url", compute_server.url, "--email", owner.email or "", password=PASSWORD)
    assert done.returncode == 0, done.stderr
    definition = tmp_path / "job.json"
    definition.write_text(json.dumps({"jobKey": "cli-journey", "clusterId": "LOCAL", "teamIds": [team],
                                      "config": {"python": {"source": code}}}))
    job = cli.json("jobs", "create", str(definition))
    assert job["jobKey"] == "cli-journey" and job["status"] == "active"
    credentials = tmp_path / "config" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert PASSWORD not in credentials.read_text() and PASSWORD not in done.stdout

    orgs = cli.json("orgs")
    assert [o["id"] for o in orgs] == [owner.org_id]
    assert cli("use", orgs[0]["name"]).returncode == 0
    one_line_error(cli("use", "No Such Org"), 1, "not a member")
    assert team in [t["team"]["id"] for t in cli.json("teams", "list")]
    listed = {j["jobKey"]: j for j in cli.json("jobs", "list")}
    assert listed["cli-journey"]["id"] == job["id"] and listed["cli-journey"]["latestJobRun"] is None

    run = cli.json("jobs", "run", "cli-journey")
    followed = cli("jobs", "logs", "cli-journey", run["id"], "--follow")
    assert followed.returncode == 0, followed.stderr
    assert [f"line {i}" for i in range(20)] == [x for x in followed.stdout.splitlines() if x.startswith("line ")]
    runs = cli.json("jobs", "runs", job["id"])
    assert [(r["id"], r["status"]) for r in runs] == [(run["id"], "succeeded")]
    assert cli("jobs", "logs", job["id"], run["id"]).stdout == followed.stdout

    waited = cli("jobs", "run", "cli-failing", "--wait", "--output", "json")
    assert waited.returncode == 1, waited.stderr
    assert json.loads(waited.stdout)["status"] == "failed"
    failed_runs = cli.json("jobs", "runs", failing["id"])
    assert [r["status"] for r in failed_runs] == ["failed"]
    printed = cli("jobs", "logs", "cli-failing", failed_runs[0]["id"]).stdout
    numbered = {line[:6] for line in printed.splitlines() if line.endswith("x" * 1000)}
    assert len(printed) > 1024 * 1024 and numbered == {f"{i:06d}" for i in range(1200)}

    cancelled = cli.json("jobs", "run", "cli-journey", "--hold")
    assert cli.json("jobs", "cancel", "cli-journey", cancelled["id"])["status"] == "cancelled"
    again = cli("jobs", "cancel", "cli-journey", cancelled["id"])
    one_line_error(again, 1, "HTTP 409")


def test_sessions_and_their_spark_remote(compute_server: LiveServer, tmp_path: Path) -> None:
    owner = signup(f"{compute_server.url}/api/v1")
    team = create_team(owner, "CLI sessions")
    cli = Cli(tmp_path / "config")
    assert cli("login", "--url", compute_server.url, "--email", owner.email or "", "--profile", "work",
               password=PASSWORD).returncode == 0
    one_line_error(cli("sessions", "list"), 1, "not logged in", "profile 'default'")  # the default profile is empty
    session = cli.json("sessions", "create", "--team", team, "--name", "cli", "--profile", "work")
    try:
        assert session["id"] in [s["id"] for s in cli.json("sessions", "list", "--profile", "work")]
        first = cli("sessions", "connect", session["id"], "--no-use-ssl", "--profile", "work")
        second = cli("sessions", "connect", session["id"], "--export", "--profile", "work")
        assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
        remote = first.stdout.strip()
        assert remote.startswith("sc://") and ";token=" in remote and "use_ssl" not in remote
        assert second.stdout.startswith("export SPARK_REMOTE='sc://") and "use_ssl=true" in second.stdout
        assert remote.split(";token=")[1] not in second.stdout  # a fresh token each time
        # The printed string is all a PySpark client needs.
        out = run_script(sys.executable, ANSWER, remote, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip().splitlines()[-1] == "42"
        one_line_error(cli("sessions", "connect", session["id"], "--export", "--pyspark", "--profile", "work"), 2,
                       "not both")
        # --pyspark runs Spark's `pyspark` launcher when it is on PATH, SPARK_REMOTE in its environment (here a
        # script in its place that shows it; the shell itself is in test_cli_terminal.py).
        launcher = tmp_path / "bin" / "pyspark"
        launcher.parent.mkdir()
        launcher.write_text('#!/bin/sh\necho "launcher $SPARK_REMOTE $*"\n')
        launcher.chmod(0o755)
        shell = cli("sessions", "connect", session["id"], "--pyspark", "--profile", "work",
                    env={"PATH": f"{launcher.parent}:{os.environ['PATH']}"})
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout.startswith("launcher sc://") and shell.stdout.strip().endswith(";use_ssl=true")
    finally:
        assert cli("sessions", "close", session["id"], "--profile", "work").returncode == 0


def test_failures_are_one_clear_line(sdk_server: LiveServer, settings: Settings, tmp_path: Path) -> None:
    owner: Actor = signup(f"{sdk_server.url}/api/v1")
    cli = Cli(tmp_path / "config")

    wrong = cli("login", "--url", sdk_server.url, "--email", owner.email or "", password="not-the-password")
    one_line_error(wrong, 3, "incorrect")
    assert wrong.stdout == "" and not (tmp_path / "config" / "credentials.json").exists()

    assert cli("login", "--url", sdk_server.url, "--email", owner.email or "", password=PASSWORD).returncode == 0
    assert cli.json("teams", "list") == []
    saved = json.loads((tmp_path / "config" / "credentials.json").read_text())["profiles"]["default"]
    with Client(sdk_server.url, token=saved["token"]) as client:
        client.logout()  # the stored token is no longer valid: as an expired one, the server answers 401
    one_line_error(cli("teams", "list"), 3, "expired or was revoked", "sailplane login")

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = cli("login", "--url", f"http://127.0.0.1:{port}", "--email", "x@example.com", "--profile", "down",
               password=PASSWORD)
    one_line_error(down, 4, f"127.0.0.1:{port}")
    one_line_error(cli("teams", "list", "--output", "yaml"), 2, "--output")

    assert cli("login", "--url", sdk_server.url, "--email", owner.email or "", password=PASSWORD).returncode == 0
    token = json.loads((tmp_path / "config" / "credentials.json").read_text())["profiles"]["default"]["token"]
    assert cli("logout").returncode == 0
    one_line_error(cli("teams", "list"), 1, "not logged in")
    with Client(sdk_server.url, token=token) as client, pytest.raises(AuthenticationError):
        client.me()  # revoked on the server too


def test_help_loads_no_server_code() -> None:
    code = ("import sys; sys.argv = ['sailplane', '--help']\n"
            "from sailplane.cli import app\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlalchemy', 'uvicorn', 'httpx')"
            " or m in ('sailplane.app', 'sailplane.config')]\n"
            "print('LOADED', loaded, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "jobs" in done.stdout and "login" in done.stdout
    assert "LOADED []" in done.stderr, done.stderr


def test_an_expired_login_is_one_line(settings: Settings, database_url: str, tmp_path: Path) -> None:
    from dataclasses import replace

    live = LiveServer(replace(settings, database_url=fresh_database(database_url, tmp_path),
                              data_dir=tmp_path / "data", compute_enabled=False, operations_enabled=False,
                              login_ttl_seconds=2))
    live.start()
    try:
        owner = signup(f"{live.url}/api/v1")
        cli = Cli(tmp_path / "config")
        assert cli("login", "--url", live.url, "--email", owner.email or "", password=PASSWORD).returncode == 0
        assert cli.json("orgs")[0]["id"] == owner.org_id
        time.sleep(2.5)
        one_line_error(cli("orgs"), 3, "expired", "run `sailplane login`")
    finally:
        live.stop()


def test_configs_and_saved_queries(sdk_server: LiveServer, tmp_path: Path) -> None:
    owner: Actor = signup(f"{sdk_server.url}/api/v1")
    team = create_team(owner, "Analysts")
    made = owner.post("/workloads/compute-configs", json={"name": "small", "teamId": team})
    assert made.status_code == 201, made.text
    config_id = made.json()["id"]
    saved = owner.post("/workloads/queries", json={"name": "daily totals", "sql": "SELECT 42 AS answer",
                                                   "teamIds": [team]})
    assert saved.status_code == 201, saved.text
    query_id = saved.json()["id"]
    cli = Cli(tmp_path / "config")
    assert cli("login", "--url", sdk_server.url, "--email", owner.email or "", password=PASSWORD).returncode == 0

    listed = cli.json("configs", "list")
    assert [(c["id"], c["name"], c["teamId"]) for c in listed] == [(config_id, "small", team)]
    assert cli.json("configs", "describe", "small")["id"] == config_id
    table = cli("configs", "describe", config_id)
    assert table.returncode == 0 and "NAME" in table.stdout and "small" in table.stdout
    one_line_error(cli("configs", "describe", "no-such-config"), 1, "no-such-config")

    queries = cli.json("queries", "list")
    assert [(q["id"], q["name"], q["teamIds"]) for q in queries] == [(query_id, "daily totals", [team])]
    described = cli.json("queries", "describe", "daily totals")
    assert (described["id"], described["sql"]) == (query_id, "SELECT 42 AS answer")
    table = cli("queries", "describe", query_id)
    assert table.returncode == 0 and "SELECT 42 AS answer" in table.stdout
    one_line_error(cli("queries", "describe", "nothing"), 1, "nothing")


def test_shell_completion_script_and_answers() -> None:
    """`sailplane --show-completion bash` prints the script; the script's own call completes commands."""
    entry = "import sys; sys.argv[0] = 'sailplane'; from sailplane.cli import app; app(prog_name='sailplane')"
    env = {k: v for k, v in os.environ.items() if not k.startswith("_SAILPLANE")}
    # typer finds the shell among the command's ancestors (its `bash` argument is not read): run it from bash,
    # as a user would, also when the suite itself was started by no shell.
    shown = subprocess.run(["bash", "-c", '"$0" -c "$1" --show-completion bash; exit $?', sys.executable, entry],
                           env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    script = shown.stdout
    assert "complete -o default -F _sailplane_completion sailplane" in script
    assert "_SAILPLANE_COMPLETE=complete_bash" in script

    def complete(words: str, cword: int) -> list[str]:
        done = subprocess.run([sys.executable, "-c", entry], capture_output=True, text=True, timeout=60, check=True,
                              env={**env, "_SAILPLANE_COMPLETE": "complete_bash", "COMP_WORDS": words,
                                   "COMP_CWORD": str(cword)})
        return done.stdout.split()

    assert complete("sailplane jo", 1) == ["jobs"]
    assert set(complete("sailplane queries ", 2)) == {"list", "describe"}


def test_teams_create_and_their_members(sdk_server: LiveServer, tmp_path: Path) -> None:
    owner = signup(f"{sdk_server.url}/api/v1")
    developer = create_member(owner)
    cli = Cli(tmp_path / "config")
    assert cli("login", "--url", sdk_server.url, "--email", owner.email or "", password=PASSWORD).returncode == 0
    roles = {r["role"]["name"]: r["role"]["id"] for r in owner.get("/org/team-roles").json()["items"]}
    viewer_role = next(name for name, role_id in roles.items() if role_id == "TEAMVIEWER")

    team = cli.json("teams", "create", "Data Eng", "--description", "Pipelines", "--default-role", viewer_role)
    assert team["team"]["name"] == "Data Eng" and team["team"]["defaultRoleId"] == "TEAMVIEWER"
    one_line_error(cli("teams", "create", "Data Eng"), 1, "HTTP 409")
    assert "Data Eng" in [t["team"]["name"] for t in cli.json("teams", "list")]

    added = cli.json("teams", "members", "add", "Data Eng", developer.email or "", "--role", "TEAMDEVELOPER")
    assert added["member"]["id"] == developer.member_id and added["roleIds"] == ["TEAMDEVELOPER"]
    listed = {m["member"]["email"]: m["roleIds"] for m in cli.json("teams", "members", "list", team["team"]["id"])}
    assert listed[developer.email or ""] == ["TEAMDEVELOPER"]
    assert developer.email in cli("teams", "members", "list", "Data Eng", env={"COLUMNS": "200"}).stdout
    # Without --role a member gets the team's default role; as seen from the API the CLI stands for.
    other = create_member(owner)
    assert cli.json("teams", "members", "add", "Data Eng", other.member_id or "")["roleIds"] == ["TEAMVIEWER"]

    removed = cli("teams", "members", "remove", "Data Eng", developer.email or "")
    assert removed.returncode == 0, removed.stderr
    members = owner.get(f"/org/teams/{team['team']['id']}/members").json()["items"]
    assert developer.member_id not in [m["member"]["id"] for m in members]
    one_line_error(cli("teams", "members", "add", "Data Eng", "nobody@example.com"), 1, "no member", "nobody@")
    one_line_error(cli("teams", "members", "list", "No Such Team"), 1, "no team", "'No Such Team'")

    # A member who is not an admin may not create teams: the server's refusal, in one line.
    member_cli = Cli(tmp_path / "member")
    assert member_cli("login", "--url", sdk_server.url, "--email", developer.email or "",
                      password=PASSWORD).returncode == 0
    one_line_error(member_cli("teams", "create", "Rogue"), 1, "HTTP 403")
