"""Shortcuts for notification tests: channels, rules, a job run that fails for real, deliveries, signed
webhooks received."""

from __future__ import annotations

import time
from typing import Any

from tests.runs.live import make_job, unique_key, wait_for
from tests.support.actors import Actor
from tests.support.receiver import Received, Receiver
from tests.support.waiting import wait_until

SECRET = "whsec-" + "emitters-signing-key-0123456789"


def channel(actor: Actor, type_: str, config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    r = actor.post("/notifications/channels", json={"type": type_, "name": f"c-{unique_key()}", "config": config,
                                                     **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def rule(actor: Actor, event_types: list[str], channel_ids: list[str], scope_type: str = "organization",
         **fields: Any) -> dict[str, Any]:
    r = actor.post("/notifications/rules", json={"name": f"r-{unique_key()}", "eventTypes": event_types,
                                                  "channelIds": channel_ids, "scopeType": scope_type, **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def failing_job(actor: Actor, team: str) -> dict[str, Any]:
    """A job whose runs fail for real at once (its saved query is gone: no retries, no Sail server needed)."""
    query = actor.post("/workloads/queries", json={"name": f"q-{unique_key()}", "sql": "SELECT 1",
                                                   "teamIds": [team]})
    assert query.status_code == 201, query.text
    job = make_job(actor, team, {"sql": {"queryId": query.json()["id"]}}, maxConcurrentRuns=100,
                   status="paused")  # paused: its query may be deleted
    assert actor.delete(f"/workloads/queries/{query.json()['id']}").status_code == 200
    return job


def failing_run(actor: Actor, team: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run of a `failing_job`, once it failed."""
    job = failing_job(actor, team)
    r = actor.post(f"/workloads/jobs/{job['id']}/runs", json={})
    assert r.status_code == 201, r.text
    run = wait_for(actor, job["id"], r.json()["id"], "failed", timeout=60)
    return job, run


def deliveries(actor: Actor, **params: str) -> list[dict[str, Any]]:
    r = actor.get("/notifications/deliveries", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def delivered(actor: Actor, channel_id: str, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        items = deliveries(actor, channelId=channel_id)
        return items if len(items) >= count and all(d["status"] in ("delivered", "failed") for d in items) else None

    return wait_until(done, timeout=timeout)  # type: ignore[no-any-return]


def signed_hook(owner: Actor, receiver: Receiver, event_types: list[str], scope_type: str = "organization",
                **fields: Any) -> tuple[str, dict[str, Any]]:
    """A webhook channel on its own receiver path, signed with SECRET, and a rule sending `event_types` to it."""
    path = f"/hook/{unique_key()}"
    hook = channel(owner, "webhook", {"url": f"{receiver.url}{path}", "signingSecret": SECRET})
    rule(owner, event_types, [hook["id"]], scope_type, **fields)
    return path, hook


def signed_requests(receiver: Receiver, path: str, owner: Actor, hook: dict[str, Any], count: int = 1,
                    timeout: float = 60) -> list[Received]:
    """The `count` webhooks the receiver got on `path`, each signed with SECRET, all delivered, after a pause in
    which no more came."""
    got = wait_until(lambda: len(found := receiver.at(path)) >= count and found, timeout=timeout)
    assert all(request.signature_valid(SECRET) for request in got)
    assert [d["status"] for d in delivered(owner, hook["id"], count)] == ["delivered"] * count
    time.sleep(1.0)
    assert len(receiver.at(path)) == count
    return receiver.at(path)
