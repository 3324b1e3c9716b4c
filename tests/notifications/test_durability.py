"""Deliveries survive the server: written in the run's transaction, they are sent by the next server after a
SIGKILL (once), and a receiver that never recovers is given up after the bounded time with its last error kept."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from sailplane.notifications.outbox import Event, record
from tests.conftest import Mailbox
from tests.data.helpers import build_org
from tests.notifications.conftest import notification_settings
from tests.notifications.helpers import channel, delivered, deliveries, failing_run, rule
from tests.runs.live import unique_key
from tests.support.databases import fresh_database
from tests.support.metrics import scrape, value
from tests.support.receiver import Answer, Receiver
from tests.support.server import LiveServer, ServerProcess

SECRET = "durable-signing-secret-0123456789"


def test_a_delivery_written_before_a_kill_9_is_sent_once_by_the_next_server(
        tmp_path: Path, database_url: str, receiver: Receiver) -> None:
    database = fresh_database(database_url, tmp_path)
    data_dir = tmp_path / "node"
    fast = {"SAILPLANE_NOTIFICATIONS_ALLOW_LOOPBACK": "1", "SAILPLANE_NOTIFICATIONS_INTERVAL_SECONDS": "0.1"}
    first = ServerProcess(data_dir, database)
    first.env.update(fast | {"SAILPLANE_NOTIFICATIONS_ENABLED": "0"})  # this server never sends
    path = f"/hook/{unique_key()}"
    try:
        first.start()
        org = build_org(first.api)
        hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{path}", "signingSecret": SECRET})
        rule(org.owner, ["job_run.failed"], [hook["id"]])
        _, run = failing_run(org.dev1, org.team1)
        [pending] = deliveries(org.owner, channelId=hook["id"])
        assert (pending["status"], pending["attempts"]) == ("pending", 0)
        time.sleep(0.5)
        assert receiver.at(path) == []
        waiting = scrape(first.api.removesuffix("/api/v1"))  # what an operator's alert on unsent deliveries sees
        assert value(waiting, "sailplane_notification_deliveries", status="pending") == 1
        assert value(waiting, "sailplane_notification_deliveries", status="delivering") == 0
    finally:
        first.kill()
    second = ServerProcess(data_dir, database)
    second.env.update(fast)
    try:
        second.start()
        owner = dataclasses.replace(org.owner, base_url=second.api)
        [done] = delivered(owner, hook["id"])
        assert (done["id"], done["status"], done["attempts"]) == (pending["id"], "delivered", 1)
        time.sleep(1.0)
        [received] = receiver.at(path)
        assert received.signature_valid(SECRET) and received.json()["resource"]["id"] == run["id"]
    finally:
        second.stop()


def test_a_receiver_that_never_recovers_is_given_up_with_its_last_error(
        tmp_path: Path, database_url: str, smtp: tuple[Mailbox, int], receiver: Receiver) -> None:
    database = fresh_database(database_url, tmp_path)
    live = LiveServer(notification_settings(tmp_path / "node", database, smtp[1], receiver,
                                            notifications_give_up_seconds=1.5))
    live.start()
    path = f"/hook/{unique_key()}"
    try:
        org = build_org(f"{live.url}/api/v1")
        hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{path}"})
        rule(org.owner, ["job_run.failed"], [hook["id"]])
        receiver.answer(*[Answer(500, body=b"receiver is down")] * 30)
        failing_run(org.dev1, org.team1)
        [done] = delivered(org.owner, hook["id"])
        assert done["status"] == "failed" and done["responseCode"] == 500
        assert "Given up" in done["lastError"] and "receiver is down" in done["lastError"]
        assert done["attempts"] == len(receiver.at(path)) >= 2
        time.sleep(1.0)
        assert done["attempts"] == len(receiver.at(path))  # nothing after giving up
        assert deliveries(org.owner, status="failed") == [done]
    finally:
        live.stop()
        with receiver.lock:
            receiver.script.clear()


def test_an_event_recorded_twice_is_delivered_once(notify_server: LiveServer, notify_api: str,
                                                   receiver: Receiver) -> None:
    org = build_org(notify_api)
    path = f"/hook/{unique_key()}"
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{path}"})
    rule(org.owner, ["job_run.failed"], [hook["id"]])
    run_id = new_id()
    event = Event(org.owner.org_id or "", "job_run.failed", f"job_run:{run_id}:1:failed", "job_run", run_id)
    db = Database(notify_server.settings.database_url, pool_size=1, max_overflow=0)
    try:
        for _ in range(2):  # e.g. a state owner's step replayed after a crash
            with db.session() as s:
                record(s, [event])
                s.commit()
    finally:
        db.dispose()
    [done] = delivered(org.owner, hook["id"])
    assert done["status"] == "delivered" and done["resourceId"] == run_id
    time.sleep(0.5)
    assert len(receiver.at(path)) == 1
