"""Every state owner's events reach a rule's webhook: a session that fails or times out (idle, max duration) for
real, a notebook that cannot start or whose server dies once running, a notebook stopped, a security change (API
key created, roles changed); each once, signed."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from sailplane.compute.local_notebooks import LocalNotebookBackend
from tests.data.helpers import build_org
from tests.notebooks.helpers import make_config, make_notebook, notebook_of
from tests.notifications.helpers import SECRET, channel, rule, signed_hook, signed_requests
from tests.runs.live import unique_key
from tests.sessions.helpers import open_session, wait_for_status
from tests.support.receiver import Received, Receiver
from tests.support.server import LiveServer
from tests.support.waiting import wait_until


@pytest.fixture()
def org(notify_api: str) -> Any:
    return build_org(notify_api)


def _hook(org: Any, receiver: Receiver, event_types: list[str]) -> tuple[str, dict[str, Any]]:
    return signed_hook(org.owner, receiver, event_types)


def _one_signed(receiver: Receiver, path: str, org: Any, hook: dict[str, Any], timeout: float = 60) -> Received:
    """The one webhook the receiver got on `path` (signed with SECRET), after a pause in which no second came."""
    return signed_requests(receiver, path, org.owner, hook, timeout=timeout)[0]


def test_a_session_that_fails_to_start_sends_one_webhook(org: Any, receiver: Receiver) -> None:
    path, hook = _hook(org, receiver, ["session.failed"])
    bad_env = {"config": {"sail": {"extraEnv": {"SAIL_EXECUTION__BATCH_SIZE": "not-a-number"}}}}
    session = open_session(org.dev1, org.team1, workloadConfig=bad_env)
    failed = wait_for_status(org.dev1, session["id"], "failed", timeout=60)
    body = _one_signed(receiver, path, org, hook).json()
    assert body["type"] == "session.failed" and body["resource"] == {"type": "session", "id": session["id"]}
    assert body["data"]["session"]["terminationReason"] == failed["terminationReason"] == "instance_start_failed"


def test_a_session_closed_at_its_max_duration_sends_one_webhook(org: Any, receiver: Receiver) -> None:
    path, hook = _hook(org, receiver, ["session.timed_out", "session.failed"])
    session = open_session(org.dev1, org.team1, config={"maxDurationSeconds": 2})
    closed = wait_for_status(org.dev1, session["id"], "closed", timeout=60)
    assert closed["terminationReason"] == "max_duration"
    body = _one_signed(receiver, path, org, hook).json()
    assert body["type"] == "session.timed_out" and body["resource"]["id"] == session["id"]
    assert body["data"]["session"]["terminationReason"] == "max_duration"


def test_a_session_closed_by_its_idle_timeout_sends_one_webhook_to_its_teams_rule(org: Any,
                                                                                    receiver: Receiver) -> None:
    path, hook = signed_hook(org.owner, receiver, ["session.timed_out"], "team", teamId=org.team1)
    session = open_session(org.dev1, org.team1, config={"idleTimeoutSeconds": 1, "idleCloseDelaySeconds": 1})
    closed = wait_for_status(org.dev1, session["id"], "closed", timeout=60)
    assert closed["terminationReason"] == "idle_timeout"
    body = _one_signed(receiver, path, org, hook).json()
    assert body["type"] == "session.timed_out" and body["resource"] == {"type": "session", "id": session["id"]}
    assert body["data"]["session"]["terminationReason"] == "idle_timeout"
    assert body["data"]["session"]["teamId"] == org.team1


def test_a_session_closed_by_its_user_notifies_nobody(org: Any, receiver: Receiver) -> None:
    path, _ = _hook(org, receiver, ["session.timed_out", "session.failed"])
    session = open_session(org.dev1, org.team1)
    assert org.dev1.delete(f"/workloads/sessions/{session['id']}").status_code == 200
    time.sleep(1.5)
    assert receiver.at(path) == []


def _notebook_status(actor: Any, notebook_id: str, *statuses: str) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        r = actor.get(f"/workloads/notebooks/{notebook_id}")
        assert r.status_code == 200, r.text
        found = notebook_of(r.json())
        return found if found["status"] in statuses else None

    return wait_until(seen, timeout=90)  # type: ignore[no-any-return]


def test_a_notebook_that_fails_to_start_sends_one_webhook(org: Any, receiver: Receiver) -> None:
    path, hook = _hook(org, receiver, ["notebook.start_failed", "notebook.stopped"])
    config = make_config(org.dev1, org.team1, sail={"extraEnv": {"SAIL_EXECUTION__BATCH_SIZE": "not-a-number"}})
    notebook = notebook_of(make_notebook(org.dev1, config, teamIds=[org.team1]))
    assert org.dev1.post(f"/workloads/notebooks/{notebook['id']}/start").status_code == 200
    failed = _notebook_status(org.dev1, notebook["id"], "failed", "running")
    assert failed["status"] == "failed"
    body = _one_signed(receiver, path, org, hook).json()
    assert body["type"] == "notebook.start_failed" and body["resource"] == {"type": "notebook", "id": notebook["id"]}
    assert body["data"]["notebook"]["statusMessage"] == failed["statusMessage"]


def test_a_running_notebook_whose_server_dies_sends_one_failed_webhook(org: Any, receiver: Receiver,
                                                                        notify_server: LiveServer) -> None:
    path, hook = _hook(org, receiver, ["notebook.failed", "notebook.start_failed", "notebook.stopped"])
    notebook = notebook_of(make_notebook(org.dev1, make_config(org.dev1, org.team1), teamIds=[org.team1]))
    assert org.dev1.post(f"/workloads/notebooks/{notebook['id']}/start").status_code == 200
    assert _notebook_status(org.dev1, notebook["id"], "running", "failed")["status"] == "running"
    pid = dict(LocalNotebookBackend(notify_server.settings.data_dir).scan()).get(notebook["id"])
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)  # its marimo server dies
    failed = _notebook_status(org.dev1, notebook["id"], "failed")
    body = _one_signed(receiver, path, org, hook).json()
    assert body["type"] == "notebook.failed" and body["resource"] == {"type": "notebook", "id": notebook["id"]}
    assert body["data"]["notebook"]["status"] == "failed"
    assert body["data"]["notebook"]["statusMessage"] == failed["statusMessage"]


def test_a_notebook_stopped_while_starting_sends_one_webhook(org: Any, receiver: Receiver) -> None:
    path, hook = _hook(org, receiver, ["notebook.stopped", "notebook.start_failed"])
    notebook = notebook_of(make_notebook(org.dev1, make_config(org.dev1, org.team1)))
    assert org.dev1.post(f"/workloads/notebooks/{notebook['id']}/start").status_code == 200
    assert org.dev1.post(f"/workloads/notebooks/{notebook['id']}/stop").status_code == 200
    assert _notebook_status(org.dev1, notebook["id"], "stopped", "failed")["status"] == "stopped"
    body = _one_signed(receiver, path, org, hook).json()
    assert body["type"] == "notebook.stopped" and body["data"]["notebook"]["status"] == "stopped"


def test_an_api_key_created_sends_one_webhook_without_its_secret(org: Any, receiver: Receiver) -> None:
    path, hook = _hook(org, receiver, ["security.api_key_created"])
    account = org.owner.post("/org/service-accounts", json={"name": f"bot-{unique_key()}"})
    assert account.status_code == 201, account.text
    r = org.admin.post(f"/org/service-accounts/{account.json()['id']}/api-keys", json={"name": "deploy"})
    assert r.status_code == 201, r.text
    created = r.json()
    request = _one_signed(receiver, path, org, hook)
    body = request.json()
    assert body["type"] == "security.api_key_created"
    assert body["resource"] == {"type": "organization", "id": org.owner.org_id}
    key = body["data"]["apiKey"]
    assert key["id"] == created["id"] and key["serviceAccountId"] == account.json()["id"]
    assert body["data"]["actorId"] == org.admin.member_id
    assert created["secret"] not in request.body.decode()  # only the prefix names it


def test_a_role_change_notifies_and_a_same_roles_update_does_not(org: Any, receiver: Receiver) -> None:
    path, hook = _hook(org, receiver, ["security.role_changed"])
    same = org.owner.put(f"/org/members/{org.dev2.member_id}/roles", json={"roleIds": ["MEMBER"]})
    assert same.status_code == 200, same.text
    changed = org.owner.put(f"/org/members/{org.dev2.member_id}/roles", json={"roleIds": ["ADMIN"]})
    assert changed.status_code == 200, changed.text
    body = _one_signed(receiver, path, org, hook).json()
    assert body["type"] == "security.role_changed"
    assert body["data"]["roleChange"] == {"memberId": org.dev2.member_id, "scope": "organization",
                                          "before": ["MEMBER"], "after": ["ADMIN"]}


def test_an_identity_provider_created_and_a_team_role_change_notify(org: Any, receiver: Receiver) -> None:
    path = f"/hook/{unique_key()}"
    hook = channel(org.owner, "webhook", {"url": f"{receiver.url}{path}", "signingSecret": SECRET})
    rule(org.owner, ["security.identity_provider_created"], [hook["id"]])
    rule(org.owner, ["security.role_changed"], [hook["id"]], "team", teamId=org.team1)
    r = org.owner.post("/auth/idps", json={"name": "Corporate SSO", "providerType": "oidc",
                                           "issuer": "https://sso.example.com", "clientId": "static-client",
                                           "clientSecret": "client-secret-never-sent-123"})
    assert r.status_code == 201, r.text
    changed = org.owner.put(f"/org/teams/{org.team1}/members/{org.dev1.member_id}/roles",
                            json={"roleIds": ["TEAMVIEWER"]})
    assert changed.status_code == 200, changed.text
    other_team = org.owner.put(f"/org/teams/{org.team2}/members/{org.dev2.member_id}/roles",
                               json={"roleIds": ["TEAMVIEWER"]})  # another team's change: not this rule's
    assert other_team.status_code == 200, other_team.text

    got = wait_until(lambda: len(found := receiver.at(path)) >= 2 and found, timeout=30)
    assert all(g.signature_valid(SECRET) for g in got)
    bodies = {g.json()["type"]: g.json() for g in got}
    assert bodies["security.identity_provider_created"]["data"]["identityProvider"]["id"] == r.json()["id"]
    assert "client-secret-never-sent-123" not in str([g.body for g in got])
    change = bodies["security.role_changed"]["data"]["roleChange"]
    assert change["teamId"] == org.team1 and change["memberId"] == org.dev1.member_id
    assert change["after"] == ["TEAMVIEWER"]
    time.sleep(1.0)
    assert len(receiver.at(path)) == 2
