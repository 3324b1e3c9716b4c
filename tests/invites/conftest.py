"""Extra servers on the same database: one whose invitations expire after a second, one whose
SMTP server refuses connections."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import pytest

from sailplane.config import Settings
from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def short_ttl_api_url(settings: Settings, server: LiveServer) -> Iterator[str]:
    live = LiveServer(dataclasses.replace(settings, invite_ttl_seconds=1))
    live.start()
    try:
        yield f"{live.url}/api/v1"
    finally:
        live.stop()


@pytest.fixture(scope="module")
def broken_mail_api_url(settings: Settings, server: LiveServer) -> Iterator[str]:
    with socket.socket() as s:  # a port that nothing listens on once this socket closes
        s.bind(("127.0.0.1", 0))
        closed_port = int(s.getsockname()[1])
    live = LiveServer(dataclasses.replace(settings, smtp_port=closed_port))
    live.start()
    try:
        yield f"{live.url}/api/v1"
    finally:
        live.stop()
