"""An idle keep-alive connection outlives a client's own idle expiry, on `sailplane serve` itself.

httpx (and so our SDK) reuses a connection idle for up to 5 s; a server closing at 5 s races it, and the
client's next POST fails with "connection reset" (seen in the fuzzing test's world setup)."""

from __future__ import annotations

import http.client
import socket
import time
from pathlib import Path

from tests.support.load import served

CLIENT_EXPIRY = 5.0  # httpx's default keepalive_expiry


def _closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""  # end of stream: the server closed it
    except BlockingIOError:
        return False  # nothing to read and no FIN: still open
    finally:
        sock.setblocking(True)


def test_an_idle_connection_is_still_open_after_a_clients_idle_expiry(tmp_path: Path) -> None:
    with served(tmp_path / "node") as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            first = conn.getresponse()
            assert (first.status, first.read()) == (200, b'{"status":"ok"}')
            sock = conn.sock
            time.sleep(CLIENT_EXPIRY + 1.5)
            assert sock is not None and not _closed_by_server(sock), \
                "the server closed an idle connection a client may still reuse"
            conn.request("GET", "/healthz")
            assert conn.sock is sock and conn.getresponse().status == 200
        finally:
            conn.close()
