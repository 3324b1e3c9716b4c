"""The sender is woken by the commit that wrote deliveries, on this server: with a sender that otherwise looks only
once a minute, a request's event (an API key created) and a loop's event (a job run failing in the dispatcher)
each reach the webhook within seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Mailbox
from tests.data.helpers import build_org
from tests.notifications.conftest import notification_settings
from tests.notifications.helpers import channel, failing_run, rule
from tests.runs.live import unique_key
from tests.support.databases import fresh_database
from tests.support.receiver import Receiver
from tests.support.server import LiveServer
from tests.support.waiting import wait_until

SLOW_TICK = 120.0  # without a wake, nothing would be sent during a test


@pytest.fixture(scope="module")
def slow_api(tmp_path_factory: pytest.TempPathFactory, database_url: str, smtp: tuple[Mailbox, int],
             receiver: Receiver) -> Iterator[str]:
    database = fresh_database(database_url, tmp_path_factory.mktemp("wake-db"))
    live = LiveServer(notification_settings(tmp_path_factory.mktemp("wake-node"), database, smtp[1], receiver,
                                            notifications_interval_seconds=SLOW_TICK))
    live.start()
    try:
        yield f"{live.url}/api/v1"
    finally:
        live.stop()


def test_a_commit_that_wrote_deliveries_wakes_the_sender(slow_api: str, receiver: Receiver) -> None:
    org: Any = build_org(slow_api)
    time.sleep(1.0)  # the sender's first tick (at its start) is over
    path = f"/hook/{unique_key()}"
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{path}"})
    rule(org.owner, ["security.api_key_created"], [hook["id"]])
    rule(org.owner, ["job_run.failed"], [hook["id"]])

    account = org.owner.post("/org/service-accounts", json={"name": f"bot-{unique_key()}"})
    assert account.status_code == 201, account.text
    started = time.monotonic()
    assert org.owner.post(f"/org/service-accounts/{account.json()['id']}/api-keys",
                          json={"name": "deploy"}).status_code == 201
    [first] = wait_until(lambda: receiver.at(path), timeout=10)
    assert first.json()["type"] == "security.api_key_created" and time.monotonic() - started < 10

    _, run = failing_run(org.dev1, org.team1)  # ends in the dispatcher's loop (the background sessions)
    got = wait_until(lambda: len(r := receiver.at(path)) >= 2 and r, timeout=10)
    assert got[1].json()["type"] == "job_run.failed" and got[1].json()["resource"]["id"] == run["id"]
