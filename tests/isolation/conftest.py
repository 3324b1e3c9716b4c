"""A compute node whose data directory holds what an attacker wants: a `secret.key` like the one
`sailplane serve` writes when SAILPLANE_SECRET_KEY is unset, the gateway's signing key, a mail in
the outbox and (on SQLite) the database. Workloads of every kind try to read them."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sailplane.kit.ids import new_id
from tests.runs.live import assert_nothing_left, runner_settings
from tests.support.databases import fresh_database
from tests.support.server import LiveServer


@dataclass(frozen=True)
class Node:
    server: LiveServer
    api: str
    data_dir: Path
    canary: str  # the content of every planted secret
    targets: dict[str, str]  # path -> text that must never reach a workload

    @property
    def workload_uid(self) -> int:
        """The uid workloads run as: the sandbox's user when the server is root, else ours."""
        if os.geteuid() != 0:
            return os.geteuid()
        return pwd.getpwnam(self.server.settings.workload_user or "").pw_uid


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Node]:
    data_dir = tmp_path_factory.mktemp("isolated-node")
    canary = f"canary-{new_id()}"
    (data_dir / "secret.key").write_text(canary)
    (data_dir / "outbox").mkdir()
    (data_dir / "outbox" / "invite.eml").write_text(f"Subject: invitation\n\nAccept: /invites/{canary}\n")
    database = fresh_database(database_url, tmp_path_factory.mktemp("isolated-db"))
    live = LiveServer(runner_settings(data_dir, database))
    live.start()
    targets = {
        str(data_dir / "secret.key"): canary,
        str(data_dir / "outbox" / "invite.eml"): canary,
        str(data_dir / "gateway-signing-key.pem"): "PRIVATE KEY",
        "/etc/shadow": "root:",
    }
    if database.startswith("sqlite:///"):
        targets[database.removeprefix("sqlite:///")] = "SQLite format 3"
    try:
        yield Node(live, f"{live.url}/api/v1", data_dir, canary, targets)
    finally:
        live.stop()
        assert_nothing_left(data_dir)
