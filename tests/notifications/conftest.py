"""A Sailplane server for notification tests: a database of its own (runs and deliveries of other tests' servers
stay out), compute on (job runs fail for real), the loopback SMTP server, webhooks allowed to loopback, Slack,
PagerDuty and Rootly base URLs on the loopback receiver, and fast sender loops and retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sailplane.config import Settings
from tests.conftest import Mailbox, make_settings
from tests.sso.conftest import oidc_issuer  # noqa: F401 - the real OpenID provider (auto-setup), shared
from tests.support.databases import fresh_database
from tests.support.receiver import Receiver
from tests.support.server import RUNNER_EXTRA, LiveServer


@pytest.fixture(scope="package")
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


def notification_settings(data_dir: Path, database_url: str, smtp_port: int, receiver: Receiver,
                          **overrides: object) -> Settings:
    sources = data_dir.parent / f"{data_dir.name}-git-sources"
    sources.mkdir(exist_ok=True)
    values: dict[str, object] = dict(
        controller_interval_seconds=0.2, compute_start_timeout_seconds=60.0, source_roots=(sources,),
        extra=dict(RUNNER_EXTRA), notifications_interval_seconds=0.1, notifications_retry_seconds=0.2,
        notifications_lease_seconds=5.0, notifications_timeout_seconds=2.0, notifications_allow_loopback=True,
        slack_webhook_base=f"{receiver.url}/slack/", pagerduty_events_url=f"{receiver.url}/pagerduty",
        rootly_api_url=f"{receiver.url}/rootly")
    values.update(overrides)
    return make_settings(data_dir, database_url, smtp_port, **values)


@pytest.fixture(scope="package")
def notify_server(tmp_path_factory: pytest.TempPathFactory, database_url: str, smtp: tuple[Mailbox, int],
                  receiver: Receiver) -> Iterator[LiveServer]:
    database = fresh_database(database_url, tmp_path_factory.mktemp("notify-db"))
    live = LiveServer(notification_settings(tmp_path_factory.mktemp("notify-node"), database, smtp[1], receiver))
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="package")
def notify_api(notify_server: LiveServer) -> str:
    return f"{notify_server.url}/api/v1"
