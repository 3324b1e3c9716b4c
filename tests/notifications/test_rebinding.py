"""The sender connects only to an address its SSRF guard checked. A channel's host is looked up by the connection
itself (through the configured nameservers) and refused when an address may not be called; a hostile DNS server
(tests.support.scripted_dns) that answers loopback — a test receiver's address, allowed here — to the checks and
then the cloud metadata address gets the delivery refused, never sent there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Mailbox
from tests.notifications.conftest import notification_settings
from tests.notifications.helpers import channel
from tests.runs.live import unique_key
from tests.support.actors import Actor, signup
from tests.support.databases import fresh_database
from tests.support.receiver import Receiver
from tests.support.scripted_dns import ScriptedDns
from tests.support.server import LiveServer

METADATA = "169.254.169.254"


@pytest.fixture
def hostile_dns() -> Iterator[ScriptedDns]:
    server = ScriptedDns().start()
    yield server
    server.stop()


@pytest.fixture
def owner(tmp_path: Path, database_url: str, smtp: tuple[Mailbox, int], receiver: Receiver,
          hostile_dns: ScriptedDns) -> Iterator[Actor]:
    settings = notification_settings(tmp_path / "node", fresh_database(database_url, tmp_path), smtp[1], receiver,
                                     compute_enabled=False, dns_nameservers=(("127.0.0.1", hostile_dns.port),),
                                     dns_timeout_seconds=2.0)
    server = LiveServer(settings)
    server.start()
    try:
        yield signup(f"{server.url}/api/v1")
    finally:
        server.stop()


def send_test(owner: Actor, hook: dict[str, Any]) -> dict[str, Any]:
    r = owner.post(f"/notifications/channels/{hook['id']}/test")
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_the_connection_goes_only_to_a_checked_address(owner: Actor, receiver: Receiver,
                                                       hostile_dns: ScriptedDns) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    path = f"/hook/{unique_key()}"
    hostile_dns.script("hook.rebind.example", ["127.0.0.1"])
    hook = channel(owner, "webhook", {"url": f"http://hook.rebind.example:{port}{path}"})
    # The name exists only on our nameserver: a delivery that arrives went where the guard's lookup said.
    delivered = send_test(owner, hook)
    assert (delivered["status"], delivered["attempts"]) == ("delivered", 1), delivered
    assert len(receiver.at(path)) == 1

    # The attacker points the name at the cloud metadata service: refused, nothing sent.
    hostile_dns.script("hook.rebind.example", [METADATA])
    refused = send_test(owner, hook)
    assert refused["status"] == "failed" and "public address" in refused["lastError"], refused
    assert len(receiver.at(path)) == 1

    # Rebinding between the check and the connection: the creation's and the send's checks get loopback, the
    # connection's own lookup the metadata address. It is refused there (a connection never uses an unchecked
    # answer), and only the connection's lookup decided where to connect.
    other = f"/hook/{unique_key()}"
    hostile_dns.script("rebind.rebind.example", ["127.0.0.1", "127.0.0.1", METADATA])
    rebound = channel(owner, "webhook", {"url": f"http://rebind.rebind.example:{port}{other}"})
    before = hostile_dns.a_queries("rebind.rebind.example")
    result = send_test(owner, rebound)
    assert result["status"] == "failed" and "public address" in result["lastError"], result
    assert receiver.at(other) == []
    assert hostile_dns.a_queries("rebind.rebind.example") == before + 2  # the send's check, the connection's
