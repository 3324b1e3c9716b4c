"""The `sailplane` command, run as a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.actors import PASSWORD, login

SAILPLANE = [sys.executable, "-m", "sailplane.cli"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SAILPLANE, *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


def test_help_explains_each_command() -> None:
    out = run(["--help"], {}).stdout
    for command in ("serve", "migrate", "admin"):
        assert command in out
    assert "create-owner" in run(["admin", "--help"], {}).stdout


def test_migrate_and_create_owner_then_sign_in(tmp_path: Path, database_url: str, api_url: str) -> None:
    env = {"SAILPLANE_DATA_DIR": str(tmp_path), "SAILPLANE_DATABASE_URL": database_url,
           "SAILPLANE_OWNER_PASSWORD": PASSWORD}
    assert run(["migrate"], env).returncode == 0
    email = f"cli-owner-{time.time_ns()}@example.com"
    created = run(["admin", "create-owner", "--email", email, "--organization", "CLI Org"], env)
    assert created.returncode == 0, created.stderr
    assert PASSWORD not in created.stdout + created.stderr
    again = run(["admin", "create-owner", "--email", email, "--organization", "CLI Org"], env)
    assert again.returncode == 0 and "already exists" in again.stdout
    r = login(api_url, email, PASSWORD)  # the live test server shares this database
    assert r.status_code == 200, r.text


def test_create_owner_refuses_a_missing_or_weak_password(tmp_path: Path, database_url: str) -> None:
    env = {"SAILPLANE_DATA_DIR": str(tmp_path), "SAILPLANE_DATABASE_URL": database_url}
    assert run(["admin", "create-owner", "--email", "x@example.com", "--organization", "O"], env).returncode == 2
    weak = run(["admin", "create-owner", "--email", "x@example.com", "--organization", "O"],
               {**env, "SAILPLANE_OWNER_PASSWORD": "short"})
    assert weak.returncode == 2


@pytest.mark.skipif(os.environ.get("SAILPLANE_TEST_DATABASE", "sqlite") != "sqlite", reason="serve defaults to SQLite")
def test_serve_on_a_fresh_data_directory(tmp_path: Path) -> None:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SAILPLANE_DATA_DIR": str(tmp_path / "data")}
    env.pop("SAILPLANE_DATABASE_URL", None)
    proc = subprocess.Popen([*SAILPLANE, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("serve did not become ready")
        assert (tmp_path / "data" / "sailplane.db").exists()
        assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o077 == 0
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/api/v1/docs" in out
    assert "signup" in out
