"""What a user command loads to start (issue 18: `sailplane jobs list` within a few times `curl` of the same page):
a real `sailplane jobs list` in a fresh interpreter, against a real server, lists the jobs and leaves out what it
does not use: the server's modules, pydantic (typer's parameter checks), httpx's own command line, the other
command groups, and rich when the output is JSON. Each check fails if an eager import comes back."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

from sailplane.client.cli.profiles import DEFAULT_PROFILE, Profile, save
from sailplane.client.core import server_trust
from tests.support.actors import signup
from tests.support.server import LiveServer
from tests.support.world import create_team

# Runs the command as the `sailplane` entry point does, then names the loaded modules that are not expected.
ENTRY = """
import json, sys
args, unwanted, modules = (json.loads(a) for a in sys.argv[1:])
sys.argv = ["sailplane", *args]
from sailplane.cli import app
try:
    app(prog_name="sailplane")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted(m for m in sys.modules if m.split(".")[0] in unwanted or m in modules)
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""
SERVER = ["fastapi", "starlette", "sqlalchemy", "uvicorn", "alembic"]
# The server's own modules, httpx's command line, and the user command groups other than `jobs`.
MODULES = ["sailplane.app", "sailplane.config", "sailplane.kit", "httpx._main", "sailplane.client.cli.teams",
           "sailplane.client.cli.sessions", "sailplane.client.cli.notebooks", "sailplane.client.cli.configs",
           "sailplane.client.cli.queries"]


def run(config: Path, args: list[str], unwanted: list[str]) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAILPLANE_", "_SAILPLANE"))}
    env["SAILPLANE_CONFIG_DIR"] = str(config)
    done = subprocess.run([sys.executable, "-c", ENTRY, json.dumps(args), json.dumps(unwanted),
                           json.dumps(MODULES)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return done, report


def test_jobs_list_loads_only_what_it_uses(sdk_server: LiveServer, tmp_path: Path) -> None:
    owner = signup(f"{sdk_server.url}/api/v1")
    team = create_team(owner, "Startup")
    made = owner.post("/workloads/jobs", json={"jobKey": "startup-job", "clusterId": "LOCAL", "teamIds": [team],
                                               "config": {"python": {"source": "print(1)"}}})
    assert made.status_code == 201, made.text
    config = tmp_path / "config"
    os.environ["SAILPLANE_CONFIG_DIR"] = str(config)
    try:
        save(DEFAULT_PROFILE, Profile(sdk_server.url, owner.token, owner.org_id, owner.email))
    finally:
        del os.environ["SAILPLANE_CONFIG_DIR"]

    done, report = run(config, ["jobs", "list", "--output", "json"], [*SERVER, "pydantic", "rich", "click"])
    assert report["code"] == 0, done.stderr
    assert [j["jobKey"] for j in json.loads(done.stdout)] == ["startup-job"]
    assert report["loaded"] == [], report["loaded"]

    # A table needs rich, still not pydantic nor the server.
    done, report = run(config, ["jobs", "list"], [*SERVER, "pydantic"])
    assert report["code"] == 0 and "startup-job" in done.stdout, done.stderr
    assert report["loaded"] == [], report["loaded"]

    # A value that is not a `str` is still checked by typer's own (pydantic) coercion: refused before any request...
    done, report = run(config, ["jobs", "runs", "startup-job", "--limit", "many"], [])
    assert report["code"] == 2 and "--limit" in done.stderr and "valid integer" in done.stderr, done.stderr
    # ...and converted when valid.
    done, report = run(config, ["jobs", "runs", "startup-job", "--limit", "5", "--output", "json"], [])
    assert report["code"] == 0 and json.loads(done.stdout) == [], done.stderr


def test_a_plain_http_server_needs_no_ca_bundle() -> None:
    """An http:// server's client loads no certificates (it never shakes hands over TLS), and its context would
    refuse an unverified server rather than accept one; an https:// server gets httpx's default trust."""
    context = server_trust("HTTP://127.0.0.1:1")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0
    assert server_trust("https://sailplane.example.com") is True
