"""Deliveries end to end: a job run that really fails → the outbox rows of its transaction → the sender → a
signed webhook on the loopback receiver and an email through the loopback SMTP server; retries; test messages to
every channel type."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from tests.conftest import Mailbox
from tests.data.helpers import build_org
from tests.notifications.helpers import channel, delivered, deliveries, failing_job, failing_run, rule
from tests.runs.live import unique_key
from tests.support.receiver import Answer, Receiver
from tests.support.waiting import wait_until

SECRET = "whsec-" + "s3cr3t-signing-key-0123456789"


@pytest.fixture()
def org(notify_api: str) -> Any:
    return build_org(notify_api)


def test_event_types_include_shortcuts_that_expand_at_rule_creation(org: Any, receiver: Receiver) -> None:
    r = org.dev1.get("/notifications/event-types")
    assert r.status_code == 200, r.text
    types = {t["key"]: t for t in r.json()["items"]}
    assert set(types["job_run.any_terminal"]["expandsTo"]) == {"job_run.succeeded", "job_run.failed",
                                                               "job_run.timeout", "job_run.cancelled"}
    assert types["job_run.failed"]["expandsTo"] == [] and types["job_run.failed"]["resourceType"] == "job_run"
    assert {"session.failed", "notebook.start_failed", "security.api_key_created"} <= set(types)
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}/hook/{unique_key()}"})
    created = rule(org.owner, ["job_run.failed_or_timeout"], [hook["id"]])
    assert created["eventTypes"] == ["job_run.failed", "job_run.timeout"] and created["resourceType"] == "job_run"
    assert org.owner.get(f"/notifications/rules/{created['id']}").json()["item"]["eventTypes"] == created["eventTypes"]


def test_a_failing_run_sends_one_signed_webhook_and_one_email(org: Any, receiver: Receiver,
                                                             mailbox: Mailbox) -> None:
    path = f"/hook/{unique_key()}"
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{path}", "signingSecret": SECRET})
    assert SECRET not in str(hook) and hook["config"] == {"url": f"{receiver.url}{path}", "signingSecretSet": True}
    mail = channel(org.dev1, "email", {}, memberId=org.dev1.member_id)
    assert mail["config"] == {"memberId": org.dev1.member_id}
    rule(org.owner, ["job_run.failed_or_timeout"], [hook["id"]])
    own = rule(org.dev1, ["job_run.any_terminal"], [mail["id"]], "own_resources")
    assert own["memberId"] == org.dev1.member_id

    job, run = failing_run(org.dev1, org.team1)

    request = wait_until(lambda: receiver.at(path), timeout=30)[0]
    body = request.json()
    assert request.signature_valid(SECRET) and not request.signature_valid("another-secret-of-16+")
    assert request.headers["idempotency-key"] == body["id"]
    assert request.headers["lakesail-timestamp"] == str(body["timestamp"])
    assert abs(body["timestamp"] - time.time()) < 120
    assert body["type"] == "job_run.failed" and body["resource"] == {"type": "job_run", "id": run["id"]}
    assert body["data"]["jobRun"]["jobId"] == job["id"] and body["data"]["jobRun"]["status"] == "failed"
    message = mailbox.wait_for(org.dev1.email, timeout=30, subject_contains="Job run failed")
    assert run["id"] in str(message.get_payload())

    hooked, mailed = delivered(org.owner, hook["id"]), delivered(org.dev1, mail["id"])
    assert [(d["status"], d["attempts"], d["responseCode"]) for d in hooked] == [("delivered", 1, 200)]
    assert hooked[0]["id"] == body["id"] and hooked[0]["eventType"] == "job_run.failed"
    assert hooked[0]["deliveredAt"] and hooked[0]["durationMs"] is not None
    assert [(d["status"], d["attempts"]) for d in mailed] == [("delivered", 1)]
    time.sleep(1.0)  # nothing more comes: exactly one of each
    assert len(receiver.at(path)) == 1
    assert len([m for m in mailbox.to(org.dev1.email) if run["id"] in str(m.get_payload())]) == 1
    # The member sees their own channel's delivery and the organization's; another member not theirs, another
    # organization nothing.
    assert {d["channelId"] for d in deliveries(org.dev1)} == {mail["id"], hook["id"]}
    assert {d["channelId"] for d in deliveries(org.dev2)} == {hook["id"]}
    assert deliveries(org.outsider) == []


def test_a_receiver_failing_twice_gets_it_on_the_third_attempt(org: Any, receiver: Receiver) -> None:
    path = f"/hook/{unique_key()}"
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{path}"})
    created = rule(org.owner, ["job_run.failed"], [hook["id"]], "team", teamId=org.team1)
    receiver.answer(Answer(503), Answer(429, headers={"Retry-After": "1"}))
    _, run = failing_run(org.dev1, org.team1)
    [done] = delivered(org.owner, hook["id"])
    assert (done["status"], done["attempts"], done["responseCode"], done["ruleId"]) == ("delivered", 3, 200,
                                                                                         created["id"])
    received = receiver.at(path)
    assert len(received) == 3 and {r.headers["idempotency-key"] for r in received} == {done["id"]}
    assert received[2].at - received[1].at >= 0.9  # Retry-After honoured
    assert all(r.json()["resource"]["id"] == run["id"] for r in received)


def test_a_hundred_runs_failing_at_once_make_a_hundred_deliveries(org: Any, receiver: Receiver) -> None:
    path = f"/hook/{unique_key()}"
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{path}"})
    rule(org.owner, ["job_run.failed"], [hook["id"]], "resource", resourceId=(job := failing_job(org.dev1,
                                                                                                 org.team1))["id"])
    runs = [org.dev1.post(f"/workloads/jobs/{job['id']}/runs", json={}) for _ in range(100)]
    assert all(r.status_code == 201 for r in runs), [r.text for r in runs if r.status_code != 201][:1]
    done = delivered(org.owner, hook["id"], count=100, timeout=180)
    assert len(done) == 100 and {d["status"] for d in done} == {"delivered"}
    time.sleep(1.0)
    received = receiver.at(path)
    assert len(received) == 100
    assert len({r.headers["idempotency-key"] for r in received}) == 100
    assert {r.json()["resource"]["id"] for r in received} == {r.json()["id"] for r in runs}


def test_a_disabled_rule_sends_nothing(org: Any, receiver: Receiver) -> None:
    path = f"/hook/{unique_key()}"
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{path}"})
    off = rule(org.owner, ["job_run.failed"], [hook["id"]])
    r = org.owner.patch(f"/notifications/rules/{off['id']}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    failing_run(org.dev1, org.team1)
    time.sleep(1.0)
    assert receiver.at(path) == [] and deliveries(org.owner, channelId=hook["id"]) == []


def test_test_notifications_reach_every_channel_type(org: Any, receiver: Receiver, mailbox: Mailbox,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    slack_path, routing_key, token = f"/slack/T0/B0/{unique_key()}", "a" * 32, f"rootly-{unique_key()}"
    slack = channel(org.owner, "slack", {"webhookUrl": f"{receiver.url}{slack_path}", "channel": "#alerts"})
    pager = channel(org.owner, "pager_duty", {"routingKey": routing_key, "severity": "critical"})
    rootly = channel(org.owner, "rootly", {"apiToken": token})
    mail = channel(org.owner, "email", {"teamId": org.team1})
    signed_path = f"/hook/{unique_key()}"
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{signed_path}", "signingSecret": SECRET})
    for c in (slack, pager, rootly, mail, hook):
        r = org.owner.post(f"/notifications/channels/{c['id']}/test")
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["attempts"]) == ("delivered", 1), r.text
        item = org.owner.get(f"/notifications/channels/{c['id']}").json()["item"]
        assert item["verifiedAt"]
    text = str(org.owner.get("/notifications/channels").json())
    for secret in (routing_key, token, slack_path, SECRET):
        assert secret not in text and secret not in caplog.text
    assert receiver.at(slack_path)[0].json()["channel"] == "#alerts"
    [pd] = [r for r in receiver.at("/pagerduty/v2/enqueue") if r.json()["routing_key"] == routing_key]
    assert pd.json()["event_action"] == "trigger" and pd.json()["payload"]["severity"] == "critical"
    [alert] = [r for r in receiver.at("/rootly/v1/alerts") if r.headers["authorization"] == f"Bearer {token}"]
    assert alert.json()["data"]["type"] == "alerts" and alert.json()["data"]["attributes"]["summary"]
    assert receiver.at(signed_path)[0].signature_valid(SECRET)
    for member in (org.dev1, org.viewer1):  # the team's members
        mailbox.wait_for(member.email, subject_contains="Test notification")


def test_a_failed_test_is_reported_and_not_verified(org: Any, receiver: Receiver) -> None:
    path = f"/hook/{unique_key()}"
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{path}"})
    receiver.answer(Answer(404))
    r = org.owner.post(f"/notifications/channels/{hook['id']}/test")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["responseCode"]) == ("failed", 404) and "404" in r.json()["lastError"]
    assert org.owner.get(f"/notifications/channels/{hook['id']}").json()["item"].get("verifiedAt") is None
