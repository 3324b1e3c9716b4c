"""Shared fixtures: one real database (SQLite or PostgreSQL, by SAILPLANE_TEST_DATABASE), a real
SMTP server on loopback, and a real Sailplane server speaking HTTP on loopback, whose DNS lookups go to
a loopback port where the tests that need DNS start a real DNS server (tests.sso.conftest)."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from sailplane.config import Settings
from sailplane.iam.auth.passwords import INSECURE_FAST_HASHING
from tests.support.dnsmasq import Dnsmasq, free_port
from tests.support.postgres import TempPostgres
from tests.support.server import LiveServer

BACKEND = os.environ.get("SAILPLANE_TEST_DATABASE", "sqlite")
# argon2's test profile for the servers the suite starts (in this process, and children given this environment):
# at production strength hashing was ~0.1-0.2 s of CPU per sign-up and sign-in, a large share of the whole run.
# tests/auth/test_password_login.py checks production hashing on a server started without it.
os.environ[INSECURE_FAST_HASHING] = "1"


def pytest_report_header(config: pytest.Config) -> str:
    return f"sailplane test database: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that never asks for `database_url` (directly or through its fixtures) cannot reach the database under
    test, so it would run the same on both: it runs once, in the SQLite run, and the PostgreSQL run deselects it.
    The two runs share two cores, so this is time taken off both."""
    if BACKEND == "sqlite":
        return
    kept: list[pytest.Item] = []
    database_free: list[pytest.Item] = []
    for item in items:
        (kept if "database_url" in getattr(item, "fixturenames", ()) else database_free).append(item)
    if database_free:
        config.hook.pytest_deselected(items=database_free)
        items[:] = kept


_DIRECTORY_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    directory = report.nodeid.split("::")[0].rpartition("/")[0]
    _DIRECTORY_SECONDS[directory] = _DIRECTORY_SECONDS.get(directory, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the run's time went, by test directory (setup, call and teardown): a CI log names what to speed up."""
    if not _DIRECTORY_SECONDS:
        return
    terminalreporter.write_sep("=", "seconds by test directory")
    for directory, seconds in sorted(_DIRECTORY_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f}  {directory}")


def pytest_configure(config: pytest.Config) -> None:
    # PySpark's SparkSession.__del__ joins client threads that are calling the gateway, which in these
    # tests runs in this same process. If the cyclic collector ran that __del__ on the gateway's own
    # thread, both would wait for each other forever; so garbage is collected only on the main thread.
    gc.disable()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Collect garbage after each test, once its fixtures are torn down, and freeze what survives: the next
    collection walks only what the next test made. A full walk of the heap (modules, collected items: ~0.9 M
    objects) took ~0.65 s, as long as a typical test, and was done after every test. What frozen objects leave
    behind when they die (the garbage of module and session fixtures) is collected when the tests of a
    directory are done."""
    result = yield
    if nextitem is None or nextitem.path.parent != item.path.parent:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    return result


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'sailplane.db'}"
        return
    if BACKEND != "postgresql":
        raise RuntimeError(f"unknown SAILPLANE_TEST_DATABASE {BACKEND!r}")
    explicit = os.environ.get("SAILPLANE_TEST_POSTGRES_URL")
    if explicit:
        yield explicit
        return
    pg = TempPostgres()
    pg.start()
    try:
        yield pg.create_database("sailplane_test")
    finally:
        pg.stop()


@dataclass
class Mailbox:
    """Messages received by the loopback SMTP server."""

    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, to: str, timeout: float = 10.0, subject_contains: str = "") -> Message:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for msg in self.messages:
                    if to.lower() in str(msg["To"]).lower() and subject_contains in str(msg["Subject"]):
                        return msg
            time.sleep(0.05)
        raise AssertionError(f"no mail to {to} within {timeout}s")

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201 - aiosmtpd API
        with self.box.lock:
            self.box.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def mailbox(smtp: tuple[Mailbox, int]) -> Mailbox:
    return smtp[0]


def make_settings(data_dir: Path, database_url: str, smtp_port: int | None, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        data_dir=data_dir,
        database_url=database_url,
        secret_key="test-secret-key-for-encryption-at-rest",
        public_url="http://127.0.0.1:8000",
        smtp_host="127.0.0.1" if smtp_port else None,
        smtp_port=smtp_port or 25,
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def dns_port() -> int:
    """The loopback port of the test DNS server: the server under test is configured with it from the start,
    the DNS server itself is started only by the tests that need it."""
    return free_port()


@pytest.fixture(scope="session")
def dns_server(dns_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dnsmasq]:
    """The one DNS server on `dns_port` for the whole run, defined here only: a second definition (a test module
    importing this fixture makes one) would start another dnsmasq on the same port, and records published to one
    would be looked up at the other."""
    server = Dnsmasq(dns_port, tmp_path_factory.mktemp("dns"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, database_url: str, smtp: tuple[Mailbox, int],
             dns_port: int) -> Settings:
    return make_settings(tmp_path_factory.mktemp("data"), database_url, smtp[1],
                         dns_nameservers=(("127.0.0.1", dns_port),))


@pytest.fixture(scope="session")
def server(settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(settings)
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="session")
def api_url(server: LiveServer) -> str:
    return f"{server.url}/api/v1"
