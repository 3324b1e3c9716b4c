"""A real Sailplane server on a loopback port (uvicorn in a thread), for tests that speak HTTP."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

from sailplane.app import create_app
from sailplane.config import Settings


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
                                proxy_headers=True, forwarded_allow_ips="127.0.0.1", lifespan="on")
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
