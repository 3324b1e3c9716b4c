"""`sailplane serve --log-format json`: every line a log collector reads is one JSON object, and each request
leaves a line carrying the same request ID as its error body and X-Request-Id header."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.actors import signup
from tests.support.load import served
from tests.support.waiting import wait_until


@pytest.mark.skipif(os.environ.get("SAILPLANE_TEST_DATABASE", "sqlite") != "sqlite", reason="serve defaults to SQLite")
def test_request_lines_carry_the_request_id(tmp_path: Path) -> None:
    with served(tmp_path / "data", args=("--log-level", "info", "--log-format", "json")) as server:
        owner = signup(server.api)
        missing = owner.get("/org/teams/01JB00000000000000AB")
        assert missing.status_code == 404
        request_id = missing.json()["error"]["details"]["requestId"]
        assert missing.headers["x-request-id"] == request_id

        def request_line() -> dict[str, Any] | None:
            for entry in entries(server.log()):
                if entry.get("logger") == "sailplane.request" and entry.get("requestId") == request_id:
                    return entry
            return None

        line = wait_until(request_line, timeout=10)
        assert line["status"] == 404 and line["operation"] == "describeTeam" and line["method"] == "GET"
        assert line["path"] == "/api/v1/org/teams/01JB00000000000000AB" and line["duration_ms"] >= 0
        assert line["level"] == "info" and line["time"].endswith("+00:00")
        ok = httpx.get(f"{server.base}/healthz", headers={"X-Request-Id": "01JB00000000000000AC"})
        assert ok.headers["x-request-id"] == "01JB00000000000000AC"  # a caller's own ID is kept and logged
        wait_until(lambda: any(e.get("requestId") == "01JB00000000000000AC" and e.get("operation") == "health"
                               for e in entries(server.log())), timeout=10)
        # The start-up banner is log lines too, and the token given to the user never reaches the log.
        log = server.log()
        assert any("API docs:" in e["message"] for e in entries(log))
        assert owner.token and owner.token not in log
    every = [line for line in log.splitlines() if line.strip()]
    assert every and all(isinstance(json.loads(line), dict) for line in every), \
        [line for line in every if not line.startswith("{")][:5]


def entries(log: str) -> list[dict[str, Any]]:
    found = []
    for line in log.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found
