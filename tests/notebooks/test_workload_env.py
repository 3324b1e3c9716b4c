"""Workload configs as the notebooks seed shows them: `sail.maxRetries` and `{"type", "value"}` extraEnv
values, accepted wherever configs are taken (compute configs, a session's inline config); a `secret` is
encrypted at rest, never returned, and reaches only the workload's (Sail server's) environment."""

from __future__ import annotations

import json

from sailplane.compute.processes import process_environ
from sailplane.config import Settings
from sailplane.kit.crypto import Encryptor
from tests.notebooks.helpers import build_org, db_rows, make_notebook
from tests.sessions.helpers import close, open_session, org_with_team, sail_pids, wait_until
from tests.support.actors import assert_error
from tests.support.server import LiveServer

SECRET = "s3cr3t-Value-9Xq"
TYPED = {"sail": {"maxRetries": 3, "extraEnv": {
    "PLAIN": "as-is", "TYPED": {"type": "string", "value": "typed-value"},
    "TOKEN": {"type": "secret", "value": SECRET}}}}
SHOWN = {"PLAIN": "as-is", "TYPED": {"type": "string", "value": "typed-value"}, "TOKEN": {"type": "secret"}}


def test_typed_values_and_secrets_in_compute_configs(api_url: str, settings: Settings) -> None:
    o = build_org(api_url)
    r = o.dev1.post("/workloads/compute-configs", json={"name": "typed", "teamId": o.team1, "config": TYPED})
    assert r.status_code == 201, r.text
    created = r.json()
    cid = created["id"]
    assert created["config"]["sail"]["extraEnv"] == SHOWN and created["config"]["sail"]["maxRetries"] == 3
    notebook = make_notebook(o.dev1, cid, teamIds=[o.team1])
    responses = [json.dumps(created), o.dev1.get(f"/workloads/compute-configs/{cid}").text,
                 o.dev1.get("/workloads/compute-configs").text, json.dumps(notebook),
                 o.viewer1.get("/workloads/notebooks").text, o.owner.get("/org/audit-events").text]
    assert o.dev1.get(f"/workloads/compute-configs/{cid}").json() == created
    [shown] = notebook["included"]["workloadConfigs"]
    assert shown["config"]["sail"]["extraEnv"] == SHOWN
    assert all(SECRET not in text for text in responses)
    # At rest: only the ciphertext, which the server's key opens.
    [row] = db_rows(settings.database_url, "SELECT config FROM workload_configs WHERE id = :id", id=cid)
    stored = row["config"] if isinstance(row["config"], dict) else json.loads(row["config"])
    assert SECRET not in json.dumps(stored)
    token = stored["sail"]["extraEnv"]["TOKEN"]
    assert set(token) == {"type", "encryptedValue"} and token["type"] == "secret"
    assert Encryptor(settings.secret_key).decrypt(token["encryptedValue"]) == SECRET
    assert stored["sail"]["extraEnv"]["PLAIN"] == "as-is"  # plain strings are stored as they always were


def test_typed_values_are_validated(api_url: str) -> None:
    o = build_org(api_url)

    def create(sail: dict[str, object]) -> object:
        return o.dev1.post("/workloads/compute-configs", json={"name": "bad", "teamId": o.team1,
                                                                "config": {"sail": sail}})

    for bad in ({"maxRetries": 11}, {"maxRetries": -1}, {"maxRetries": "3"},
                {"extraEnv": {"A": {"type": "bogus", "value": "x"}}}, {"extraEnv": {"A": {"type": "secret"}}},
                {"extraEnv": {"A": {"type": "string", "value": 1}}},
                {"extraEnv": {"A": {"type": "string", "value": "x", "extra": "y"}}},
                {"extraEnv": {"SAILPLANE_X": {"type": "secret", "value": "x"}}},
                {"extraEnv": {"A": {"type": "secret", "value": "x" * 4097}}}):
        err = assert_error(create(bad), 422)  # type: ignore[arg-type]
        assert any(k.startswith("config.sail.") for k in err["details"]["fieldErrors"]), err
    assert o.dev1.get("/workloads/compute-configs").json()["items"] == []


def test_a_session_gets_the_typed_and_secret_values_in_its_environment(compute_api: str,
                                                                         compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    session = open_session(owner, team, workloadConfig={"config": TYPED})
    try:
        described = owner.get(f"/workloads/sessions/{session['id']}").json()
        assert SECRET not in json.dumps(described)
        instance = session["workloadId"]
        pid = wait_until(lambda: sail_pids(compute_server).get(instance), timeout=60)
        env = process_environ(pid)
        assert (env["PLAIN"], env["TYPED"], env["TOKEN"]) == ("as-is", "typed-value", SECRET)
        assert env["SAIL_CLUSTER__TASK_MAX_ATTEMPTS"] == "4"  # maxRetries 3: four attempts
        listed = owner.get("/workloads/sessions").json()
        assert listed["included"]["workloadConfigs"][0]["config"]["sail"]["extraEnv"] == SHOWN
        assert SECRET not in json.dumps(listed)
        # The same inline content is the same inline config (its hash covers the secret by a keyed digest).
        again = open_session(owner, team, workloadConfig={"config": TYPED})
        close(owner, again["id"])
        workloads = owner.get("/workloads/sessions").json()["included"]["workloads"]
        assert len(workloads) == 2 and len({w["workloadConfigId"] for w in workloads}) == 1
    finally:
        close(owner, session["id"])
    wait_until(lambda: session["workloadId"] not in sail_pids(compute_server))
