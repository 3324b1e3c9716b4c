"""A real Sailplane server on a loopback port for tests that speak HTTP: in a thread (LiveServer), or as a child
process that a test can kill like a crash (ServerProcess)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from sailplane.app import create_app
from sailplane.cli import KEEP_ALIVE_SECONDS
from sailplane.config import Settings
from tests.support.load import Served

# Fast loops so lifecycle tests take seconds: leases, retries and kept instances. The stop grace is long, so a test
# sees a process that ignores SIGTERM still stopping however loaded the machine (it then ends that process itself);
# every other test's processes end at SIGTERM and never wait for it.
RUNNER_EXTRA = {
    "runs_poll_interval": "0.2", "runs_lease_seconds": "3", "runs_renew_interval": "0.5",
    "runs_retain_seconds": "3", "runs_retry_backoff": "0.2", "runs_pool_size": "2", "runs_stop_grace": "60",
}


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        # The socket is bound here and handed to uvicorn, not closed and re-bound by number: the SQLite and
        # PostgreSQL runs share the machine, and a port found free can be taken before uvicorn binds it.
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                proxy_headers=True, forwarded_allow_ips="127.0.0.1", lifespan="on",
                                timeout_keep_alive=KEEP_ALIVE_SECONDS)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="sailplane-test-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise RuntimeError("test server failed to start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


def openapi_document(api_url: str) -> dict:
    """The server's OpenAPI document. Its first build takes ~1.6 s of CPU (every route's schemas); with both
    databases' suites and their workloads on two cores that has passed httpx's 5 s default, so wait longer."""
    response = httpx.get(f"{api_url}/openapi.json", timeout=60)
    response.raise_for_status()
    document: dict = response.json()
    return document


class ServerProcess(Served):
    """`sailplane serve` as a child process with the run tests' fast loops and a fixed secret key, so a test can
    SIGKILL it mid-run like a crash (or restart another on the same data). `env` may be changed before start."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        super().__init__(data_dir, database_url, env={
            "SAILPLANE_SECRET_KEY": "test-secret-key-for-encryption-at-rest",
            "SAILPLANE_CONTROLLER_INTERVAL_SECONDS": "0.2",
            **{f"SAILPLANE_{k.upper()}": v for k, v in RUNNER_EXTRA.items()}})

    @property
    def env(self) -> dict[str, str]:
        return self._env

    def start(self, timeout: float = 120) -> ServerProcess:
        super().start(timeout)
        return self

    def stop(self) -> None:
        """SIGTERM: a graceful shutdown (SIGKILL only if it has not ended in two minutes)."""
        if self.proc is not None and self.proc.poll() is None:
            self.terminate(timeout=120)
