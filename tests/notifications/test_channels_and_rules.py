"""Channels and rules: validation (4xx in the one error shape, naming the field), ownership and access (a member's
own, a team's with CanManageNotifications there, the organization's with it organization-wide; another
organization's are 404), secrets never answered and stored encrypted, the SSRF guard."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text

from sailplane.notifications.urls import UnsafeUrl, check_url
from tests.data.helpers import build_org
from tests.notifications.helpers import channel, rule
from tests.runs.live import unique_key
from tests.support.actors import assert_error
from tests.support.receiver import Receiver
from tests.support.server import LiveServer


@pytest.fixture()
def org(notify_api: str) -> Any:
    return build_org(notify_api)


def _field(response: Any, field: str, status: int = 422) -> None:
    err = assert_error(response, status)
    assert field in err["details"]["fieldErrors"], err


def test_bad_channels_are_refused_naming_the_field(org: Any, receiver: Receiver) -> None:
    post = lambda body: org.owner.post("/notifications/channels", json={"name": "x", **body})  # noqa: E731
    assert_error(post({"type": "carrier_pigeon", "config": {}}), 422)
    _field(post({"type": "webhook", "config": {}}), "config.url")
    _field(post({"type": "webhook", "config": {"url": "ftp://example.com/x"}}), "config.url")
    for private in ("http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://[::ffff:10.1.2.3]/",
                    "http://192.168.1.1/", "http://0.0.0.0:80/"):
        _field(post({"type": "webhook", "config": {"url": private}}), "config.url")
    _field(post({"type": "webhook", "config": {"url": f"{receiver.url}/h", "signingSecret": "short"}}),
           "config.signingSecret")
    _field(post({"type": "webhook", "config": {"url": f"{receiver.url}/h", "secret": "x" * 20}}), "config.secret")
    _field(post({"type": "slack", "config": {"webhookUrl": "https://evil.example/services/x"}}), "config.webhookUrl")
    _field(post({"type": "pager_duty", "config": {"routingKey": "not-a-key"}}), "config.routingKey")
    _field(post({"type": "pager_duty", "config": {"routingKey": "b" * 32, "severity": "meh"}}), "config.severity")
    _field(post({"type": "rootly", "config": {}}), "config.apiToken")
    _field(post({"type": "email", "config": {"memberId": "NOSUCHMEMBER"}}), "config.memberId")
    _field(post({"type": "email", "config": {"memberId": 5}}), "config.memberId")
    _field(post({"type": "email", "config": {"teamId": org.team1, "memberId": org.dev1.member_id}}), "config.teamId")
    _field(post({"type": "email", "teamId": "NOSUCHTEAM", "config": {}}), "teamId")
    assert_error(post({"type": "webhook", "config": {"url": f"{receiver.url}/h"}, "extra": 1}), 422)


def test_bad_rules_are_refused_naming_the_field(org: Any, receiver: Receiver) -> None:
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}/h"})
    post = lambda **body: org.owner.post("/notifications/rules", json={  # noqa: E731
        "name": "r", "eventTypes": ["job_run.failed"], "channelIds": [hook["id"]], "scopeType": "organization",
        **body})
    _field(post(eventTypes=["job_run.exploded"]), "eventTypes[0]")
    _field(post(eventTypes=["job_run.failed", "session.failed"]), "eventTypes")
    _field(post(channelIds=[hook["id"], "NOSUCHCHANNEL"]), "channelIds[1]")  # the channel must exist first
    _field(post(scopeType="team"), "teamId")
    _field(post(scopeType="resource"), "resourceId")
    _field(post(scopeType="resource", resourceId="NOSUCHJOB"), "resourceId")
    _field(post(teamId=org.team1), "teamId")
    assert_error(post(eventTypes=[]), 422)
    assert_error(post(scopeType="galaxy"), 422)
    created = rule(org.owner, ["job_run.failed"], [hook["id"]])
    _field(org.owner.patch(f"/notifications/rules/{created['id']}", json={"eventTypes": ["session.failed"]}),
           "eventTypes")
    assert_error(org.owner.patch(f"/notifications/rules/{created['id']}", json={"enabled": None}), 422)


def test_access_to_channels(org: Any, receiver: Receiver) -> None:
    mine = channel(org.dev1, "email", {}, memberId=org.dev1.member_id)
    team = channel(org.dev1, "webhook", {"url": f"{receiver.url}/t"}, teamId=org.team1)
    whole = channel(org.owner, "webhook", {"url": f"{receiver.url}/o"})
    url = lambda c: f"/notifications/channels/{c['id']}"  # noqa: E731
    # Another organization: 404 for everything, nothing listed.
    for c in (mine, team, whole):
        assert_error(org.outsider.get(url(c)), 404)
        assert_error(org.outsider.patch(url(c), json={"name": "mine now"}), 404)
        assert_error(org.outsider.delete(url(c)), 404)
        assert_error(org.outsider.post(f"{url(c)}/test"), 404)
    assert org.outsider.get("/notifications/channels").json()["items"] == []
    # A member's own channel: theirs and the organization admins'; other members do not see it.
    assert_error(org.dev2.get(url(mine)), 404)
    assert_error(org.viewer1.patch(url(mine), json={"name": "x"}), 404)
    assert org.admin.get(url(mine)).status_code == 200
    assert_error(org.dev2.post("/notifications/channels", json={"type": "email", "name": "x", "config": {},
                                                                "memberId": org.dev1.member_id}), 403)
    # A team's: seen by its members, changed by those with CanManageNotifications there (not a viewer).
    assert org.viewer1.get(url(team)).status_code == 200
    assert_error(org.viewer1.patch(url(team), json={"name": "x"}), 403)
    assert_error(org.viewer1.post("/notifications/channels", json={
        "type": "webhook", "name": "x", "teamId": org.team1, "config": {"url": f"{receiver.url}/v"}}), 403)
    assert_error(org.dev2.get(url(team)), 404)
    assert org.dev1.patch(url(team), json={"name": "renamed"}).json()["name"] == "renamed"
    # The organization's: seen by everyone of it, changed only with the permission organization-wide.
    assert org.loner.get(url(whole)).status_code == 200
    assert_error(org.dev1.patch(url(whole), json={"name": "x"}), 403)
    assert_error(org.dev1.delete(url(whole)), 403)
    assert_error(org.dev1.post(f"{url(whole)}/test"), 403)
    assert_error(org.dev1.post("/notifications/channels", json={
        "type": "webhook", "name": "x", "config": {"url": f"{receiver.url}/v"}}), 403)
    listed = {c["id"] for c in org.dev2.get("/notifications/channels").json()["items"]}
    assert whole["id"] in listed and mine["id"] not in listed and team["id"] not in listed
    assert {c["id"] for c in org.dev1.get("/notifications/channels", params={"teamId": org.team1})
            .json()["items"]} == {team["id"]}
    assert org.owner.delete(url(whole)).status_code == 200
    assert_error(org.owner.get(url(whole)), 404)


def test_access_to_rules(org: Any, receiver: Receiver) -> None:
    whole = channel(org.owner, "webhook", {"url": f"{receiver.url}/o"})
    mine = channel(org.dev1, "email", {}, memberId=org.dev1.member_id)
    org_rule = rule(org.owner, ["job_run.failed"], [whole["id"]])
    own = rule(org.dev1, ["job_run.failed"], [mine["id"]], "own_resources")
    team_rule = rule(org.dev1, ["job_run.failed"], [whole["id"]], "team", teamId=org.team1)
    assert_error(org.dev1.post("/notifications/rules", json={
        "name": "r", "eventTypes": ["job_run.failed"], "channelIds": [whole["id"]], "scopeType": "organization"}), 403)
    assert_error(org.viewer1.post("/notifications/rules", json={
        "name": "r", "eventTypes": ["job_run.failed"], "channelIds": [whole["id"]], "scopeType": "team",
        "teamId": org.team1}), 403)
    # Another member's channel is unknown to a rule of mine.
    _field(org.dev2.post("/notifications/rules", json={
        "name": "r", "eventTypes": ["job_run.failed"], "channelIds": [mine["id"]], "scopeType": "own_resources"}),
        "channelIds[0]")
    for r in (org_rule, own, team_rule):
        assert_error(org.outsider.get(f"/notifications/rules/{r['id']}"), 404)
        assert_error(org.outsider.patch(f"/notifications/rules/{r['id']}", json={"enabled": False}), 404)
    assert_error(org.dev2.get(f"/notifications/rules/{own['id']}"), 404)
    assert_error(org.dev1.patch(f"/notifications/rules/{org_rule['id']}", json={"enabled": False}), 403)
    assert org.dev1.patch(f"/notifications/rules/{own['id']}", json={"enabled": False}).json()["enabled"] is False
    listed = org.dev1.get("/notifications/rules", params={"scopeType": "own_resources"}).json()["items"]
    assert [r["id"] for r in listed] == [own["id"]]
    assert [r["id"] for r in org.owner.get("/notifications/rules", params={"teamId": org.team1})
            .json()["items"]] == [team_rule["id"]]
    assert org.outsider.get("/notifications/rules").json()["items"] == []
    # Deleting a channel takes it out of its rules; a rule left without channels is disabled.
    assert org.owner.delete(f"/notifications/channels/{whole['id']}").status_code == 200
    left = org.owner.get(f"/notifications/rules/{org_rule['id']}").json()["item"]
    assert left["channelIds"] == [] and left["enabled"] is False
    assert org.dev1.delete(f"/notifications/rules/{own['id']}").status_code == 200
    assert_error(org.dev1.get(f"/notifications/rules/{own['id']}"), 404)


def test_secrets_are_encrypted_at_rest_and_never_answered(org: Any, receiver: Receiver,
                                                          notify_server: LiveServer) -> None:
    secret, token = f"signing-{unique_key()}", f"rootly-{unique_key()}"
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}/s", "signingSecret": secret})
    rootly = channel(org.owner, "rootly", {"apiToken": token})
    updated = org.owner.patch(f"/notifications/channels/{hook['id']}", json={"config": {"url": f"{receiver.url}/s2"}})
    assert updated.status_code == 200 and updated.json()["config"]["signingSecretSet"] is True
    answers = [updated.text, org.owner.get("/notifications/channels").text,
               org.owner.get(f"/notifications/channels/{rootly['id']}").text, str(hook), str(rootly)]
    assert not any(secret in a or token in a for a in answers)
    engine = create_engine(notify_server.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT config, secret FROM notification_channels WHERE id IN (:a, :b)"),
                                {"a": hook["id"], "b": rootly["id"]}).all()
    finally:
        engine.dispose()
    assert len(rows) == 2 and all(r.secret for r in rows)
    assert not any(secret in str(tuple(r)) or token in str(tuple(r)) for r in rows)


def test_the_ssrf_guard() -> None:
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]/x"):
        with pytest.raises(UnsafeUrl):
            check_url(url, allow_loopback=False)
        check_url(url, allow_loopback=True)
    for url in ("http://10.1.2.3/", "https://172.16.0.1/", "http://169.254.169.254/", "http://user:pw@127.0.0.1/",
                "gopher://127.0.0.1/", "http://[fd00::1]/"):
        with pytest.raises(UnsafeUrl):
            check_url(url, allow_loopback=True)
    check_url("https://203.0.113.7/hook", allow_loopback=False, resolve=False)
