"""A real marimo server for a notebook, started directly by the test (`marimo edit --headless`), and the
notebook's row moved to `running` with its server columns through `workloads.notebooks.states.transition`.

Stand-in until the notebook runtime (start/stop) is merged: then these tests start the notebook through
`POST /workloads/notebooks/{notebook}/start` instead.

The marimo executable: SAILPLANE_TEST_MARIMO, else /tmp/marimo-venv/bin/marimo (marimo==0.25.2; with
pyspark-client, pandas and pyarrow for the Spark test).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from sailplane.kit.clock import utcnow
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import Database
from sailplane.workloads.notebooks import states
from tests.support.dnsmasq import free_port

MARIMO = os.environ.get("SAILPLANE_TEST_MARIMO", "/tmp/marimo-venv/bin/marimo")


def require_marimo() -> str:
    if not Path(MARIMO).exists():
        pytest.skip(f"marimo is not installed at {MARIMO} (SAILPLANE_TEST_MARIMO)")
    return MARIMO


class MarimoServer:
    """`marimo edit <file> --headless` on a loopback port, under the notebook's proxy base URL."""

    def __init__(self, notebook_id: str, source: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.notebook_id = notebook_id
        self.port = free_port()
        self.token = secrets.token_urlsafe(24)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.file = workdir / "notebook.py"
        self.file.write_text(source)
        self.log = workdir / "marimo.log"
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
                    "XDG_CONFIG_HOME": str(workdir / "config"), "XDG_CACHE_HOME": str(workdir / "cache"),
                    "XDG_STATE_HOME": str(workdir / "state"), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"/notebooks/{self.notebook_id}"

    def start(self) -> MarimoServer:
        cmd = [require_marimo(), "edit", str(self.file), "--headless", "--host", "127.0.0.1", "--port", str(self.port),
               "--token-password", self.token, "--base-url", self.base_url, "--skip-update-check", "--no-sandbox"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"marimo exited: {self.log.read_text()[-3000:]}")
            try:
                r = httpx.get(f"http://127.0.0.1:{self.port}{self.base_url}/health", timeout=2)
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"marimo did not answer: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def mark_running(db: Database, secret_key: str, notebook_id: str, server: MarimoServer | None,
                 *, host: str = "127.0.0.1", port: int | None = None, token: str = "unused") -> None:
    """stopped → starting → running with the marimo server's columns, as the notebook runtime will."""
    with db.session() as session:
        assert states.transition(session, notebook_id, states.STARTING)
        values = {"node": "test-node", "server_ref": f"test:{notebook_id}", "server_host": host,
                  "server_port": server.port if server is not None else port,
                  "server_secret": Encryptor(secret_key).encrypt(server.token if server is not None else token),
                  "started_at": utcnow()}
        assert states.transition(session, notebook_id, states.RUNNING, values=values)
        session.commit()


def mark_stopped(db: Database, notebook_id: str) -> None:
    """running/idle/detached → stopping → stopped, clearing the server columns."""
    with db.session() as session:
        assert states.transition(session, notebook_id, states.STOPPING)
        values = {"node": None, "server_ref": None, "server_host": None, "server_port": None, "server_secret": None,
                  "started_at": None}
        assert states.transition(session, notebook_id, states.STOPPED, values=values)
        session.commit()
