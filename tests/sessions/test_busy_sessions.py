"""Every duty of the session controller while several sessions are busy at once.

Real PySpark clients call through the gateway without pause on several sessions, so every controller
tick has the activity of several sessions to write. Meanwhile: their activity must reach the database
(other nodes and restarts read it from there, not from this node's memory), a session closed with DELETE
must have its Sail server stopped, an idle session and one at its maximum duration must close on time, a
killed Sail server must be noticed, and no tick may fail. (A flush of several sessions' activity once
failed every such tick, skipping everything after it: health checks, timeouts and releasing instances.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from pyspark.sql.connect.client.retries import DefaultPolicy
from sqlalchemy import select

from sailplane.kit.db import Database
from sailplane.workloads.models import ComputeInstance, InteractiveSession
from tests.sessions.helpers import (
    close,
    describe,
    issue_token,
    open_session,
    org_with_team,
    sail_pids,
    spark_session,
    spark_url,
    wait_for_status,
    wait_until,
)
from tests.support.actors import Actor
from tests.support.server import LiveServer

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")

ON_TIME = 3.0  # seconds of slack for "promptly" and "on time" (the test server's tick is 0.1 s)
FRESH = 2.0  # the database's lastActivityAt of a busy session is at most this old


class BusyClient:
    """A PySpark client calling its session without pause, in a thread of its own, until stopped or refused."""

    def __init__(self, session: dict[str, Any], token: str) -> None:
        self.session = session
        self.url = spark_url(session, token)
        self.calls = 0
        self.last_call: float | None = None
        self.ended: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"busy-{session['id']}", daemon=True)

    def start(self) -> BusyClient:
        self._thread.start()
        return self

    def _run(self) -> None:
        with spark_session(self.url) as spark:
            # Retry UNAVAILABLE only briefly (PySpark's default keeps at it for minutes): a refusal must end it.
            spark.client.set_retry_policies([DefaultPolicy(max_retries=4, initial_backoff=50, max_backoff=400)])
            while not self._stop.is_set():
                try:
                    assert spark.sql("SELECT 1").collect()[0][0] == 1
                except Exception as exc:  # noqa: BLE001 - refused once its session ended; the test checks when
                    self.ended = exc
                    return
                self.calls += 1
                self.last_call = time.time()
                time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@contextlib.contextmanager
def controller_errors() -> Iterator[list[logging.LogRecord]]:
    """Errors the session controller logs (a failed tick is logged with its traceback)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.ERROR)
    logger = logging.getLogger("sailplane.workloads.controller")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _recorded_activity(db: Database, sessions: list[dict[str, Any]]) -> dict[str, tuple[float | None, float | None]]:
    """Session ID → (the session's, its instance's) last_activity_at as stored in the database."""
    with db.session() as s:
        rows = s.execute(select(InteractiveSession.id, InteractiveSession.last_activity_at,
                                ComputeInstance.last_activity_at)
                         .join(ComputeInstance, ComputeInstance.id == InteractiveSession.compute_instance_id)
                         .where(InteractiveSession.id.in_([x["id"] for x in sessions]))).all()
    return {sid: (a.timestamp() if a else None, b.timestamp() if b else None) for sid, a, b in rows}


def _busy(owner: Actor, team: str, **config: int) -> tuple[dict[str, Any], BusyClient]:
    session = open_session(owner, team, config=config) if config else open_session(owner, team)
    return session, BusyClient(session, issue_token(owner, session["id"])).start()


def test_every_duty_while_several_sessions_are_busy(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    db = Database(compute_server.settings.database_url, pool_size=1, max_overflow=1)
    clients: list[BusyClient] = []
    with controller_errors() as errors:
        try:
            # Three sessions stay busy throughout; three more are busy until the controller ends them: one
            # closed with DELETE, one whose Sail server is killed, one at its maximum duration.
            steady = [_busy(owner, team) for _ in range(3)]
            deleted, killed = _busy(owner, team), _busy(owner, team)
            clients += [c for _, c in (*steady, deleted, killed)]
            wait_until(lambda: all(c.calls >= 3 for c in clients), timeout=90)
            expiring = _busy(owner, team, maxDurationSeconds=6)
            clients.append(expiring[1])
            # One session used once, then left alone: idle 2 s after that call, closed 2 s later.
            idle = open_session(owner, team, config={"idleTimeoutSeconds": 2, "idleCloseDelaySeconds": 2})
            with spark_session(spark_url(idle, issue_token(owner, idle["id"]))) as spark:
                assert spark.sql("SELECT 2").collect()[0][0] == 2
            wait_until(lambda: expiring[1].calls >= 3, timeout=60)
            assert all(c.ended is None for c in clients), [c.ended for c in clients]

            # Activity reaches the database, for every busy session and its instance.
            busy = [s for s, _ in (*steady, deleted, killed, expiring)]
            for _ in range(3):
                now = time.time()
                recorded = _recorded_activity(db, busy)
                for s in busy:
                    session_at, instance_at = recorded[s["id"]]
                    assert session_at is not None and now - session_at <= FRESH, (s["id"], now - (session_at or 0))
                    assert instance_at is not None and now - instance_at <= FRESH, (s["id"], now - (instance_at or 0))
                time.sleep(0.7)

            # Closed with DELETE while busy: its Sail server is stopped promptly, its client refused.
            close(owner, deleted[0]["id"])
            closed_at = time.monotonic()
            wait_until(lambda: deleted[0]["workloadId"] not in sail_pids(compute_server), timeout=ON_TIME)
            assert time.monotonic() - closed_at <= ON_TIME

            # A Sail server dies: noticed at once, its session failed.
            os.kill(sail_pids(compute_server)[killed[0]["workloadId"]], signal.SIGKILL)
            failed = wait_for_status(owner, killed[0]["id"], "failed", timeout=ON_TIME)
            assert failed["terminationReason"] == "instance_failed", failed

            # Idle on time, then closed on time, its Sail server stopped.
            idled = wait_for_status(owner, idle["id"], "idle", timeout=15)
            assert _ts(idled["idleSince"]) - _ts(idled["lastActivityAt"]) <= 2 + ON_TIME, idled
            ended = wait_for_status(owner, idle["id"], "closed", timeout=15)
            assert ended["terminationReason"] == "idle_timeout", ended
            assert _ts(ended["closedAt"]) - _ts(ended["idleSince"]) <= 2 + ON_TIME, ended
            wait_until(lambda: idle["workloadId"] not in sail_pids(compute_server), timeout=ON_TIME)

            # Closed at its maximum duration although busy.
            expired = wait_for_status(owner, expiring[0]["id"], "closed", timeout=30)
            assert expired["terminationReason"] == "max_duration", expired
            assert 0 <= _ts(expired["closedAt"]) - _ts(expired["timeoutAt"]) <= ON_TIME, expired
            wait_until(lambda: expiring[0]["workloadId"] not in sail_pids(compute_server), timeout=ON_TIME)

            # The steady ones were busy all along, and still are.
            for s, c in steady:
                assert c.ended is None, c.ended
                assert describe(owner, s["id"])["status"] == "active"
            for _, c in (deleted, killed, expiring):
                assert c.ended is not None, "its client was never refused"
        finally:
            for c in clients:
                c.stop()
            db.dispose()
        for s, _ in steady:
            close(owner, s["id"])
        wait_until(lambda: not {s["workloadId"] for s, _ in steady} & set(sail_pids(compute_server)), timeout=10)
    assert errors == [], [r.getMessage() for r in errors]
