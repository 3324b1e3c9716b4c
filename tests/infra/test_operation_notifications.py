"""An operation's end notifies: a template sync that succeeds and one that fails (its stack deleted) against the
moto server → one signed webhook each (`operation.succeeded`, `operation.failed`) on a loopback receiver."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.conftest import infra_settings
from tests.infra.helpers import verified, wait_operation
from tests.notifications.helpers import channel, delivered, rule
from tests.runs.live import unique_key
from tests.support.actors import signup
from tests.support.databases import fresh_database
from tests.support.receiver import Receiver
from tests.support.server import LiveServer
from tests.support.waiting import wait_until

SECRET = "whsec-" + "operations-signing-key-0123456"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def notifying_infra_api(tmp_path_factory: pytest.TempPathFactory, database_url: str, moto_url: str,
                        aws_credentials: None) -> Iterator[str]:
    """An infra server (its own database: no other runner takes these operations) whose sender may post to loopback."""
    database = fresh_database(database_url, tmp_path_factory.mktemp("infra-notify-db"))
    live = LiveServer(infra_settings(tmp_path_factory.mktemp("infra-notify-node"), database, moto_url,
                                     notifications_interval_seconds=0.1, notifications_allow_loopback=True))
    live.start()
    try:
        yield f"{live.url}/api/v1"
    finally:
        live.stop()


def test_each_operation_end_sends_one_signed_webhook(notifying_infra_api: str, customer_aws: Any,
                                                     receiver: Receiver) -> None:
    owner = signup(notifying_infra_api)
    path = f"/hook/{unique_key()}"
    hook = channel(owner, "webhook", {"url": f"{receiver.url}{path}", "signingSecret": SECRET})
    rule(owner, ["operation.succeeded", "operation.failed"], [hook["id"]])
    connection = verified(owner, customer_aws)

    ok = wait_operation(owner, owner.post(f"/infra/connections/{connection['id']}/sync-template").json()["id"])
    assert ok["status"] == "succeeded", ok
    # The stack is deleted (the role made again so only the stack is missing): the next sync fails.
    customer_aws("cloudformation").delete_stack(StackName=connection["template"]["stackName"])
    customer_aws("iam").create_role(RoleName=f"SailplaneConnection-{connection['id']}",
                                    AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    failed = wait_operation(owner, owner.post(f"/infra/connections/{connection['id']}/sync-template").json()["id"])
    assert failed["status"] == "failed", failed

    requests = wait_until(lambda: len(got := receiver.at(path)) >= 2 and got, timeout=30)
    assert all(r.signature_valid(SECRET) for r in requests)
    bodies = sorted((r.json() for r in requests), key=lambda b: b["type"])
    assert [(b["type"], b["resource"]["id"]) for b in bodies] == [("operation.failed", failed["id"]),
                                                                   ("operation.succeeded", ok["id"])]
    assert bodies[0]["data"]["operation"]["error"]["code"] == "stack_not_found"
    assert bodies[1]["data"]["operation"]["resource"] == {"type": "connection", "id": connection["id"]}
    assert [d["status"] for d in delivered(owner, hook["id"], count=2)] == ["delivered", "delivered"]
    time.sleep(1.0)
    assert len(receiver.at(path)) == 2
