"""Who sees which sessions, who may close them or get tokens, and bad input."""

from __future__ import annotations

import pytest

from tests.sessions.helpers import close, open_session, org_with_team
from tests.support.actors import Actor, assert_error, unknown_reference
from tests.support.world import add_to_team, create_member, create_service_account, create_team


def _ids(actor: Actor, **params: object) -> list[str]:
    r = actor.get("/workloads/sessions", params=params)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def test_visibility_owner_team_admin_member_and_other_org(compute_api: str) -> None:
    owner, team = org_with_team(compute_api)
    other_team = create_team(owner, "elsewhere")
    team_admin, dev, other_dev, plain = (create_member(owner) for _ in range(4))
    add_to_team(owner, team, team_admin, "TEAMADMIN")
    add_to_team(owner, team, dev)
    add_to_team(owner, other_team, other_dev)
    outsider, _ = org_with_team(compute_api)

    dev_session = open_session(dev, team)
    admin_session = open_session(team_admin, team)
    other_session = open_session(other_dev, other_team)
    all_three = {dev_session["id"], admin_session["id"], other_session["id"]}

    assert set(_ids(owner)) == all_three  # org admin: everything
    assert set(_ids(team_admin)) == {dev_session["id"], admin_session["id"]}  # their team's
    assert _ids(dev) == [dev_session["id"]]  # members: their own
    assert _ids(other_dev) == [other_session["id"]]
    assert _ids(plain) == [] and _ids(outsider) == []

    # Describe: the same rule; 404 otherwise. connectionInfo only for the owner.
    assert owner.get(f"/workloads/sessions/{dev_session['id']}").json()["connectionInfo"] is None
    assert team_admin.get(f"/workloads/sessions/{dev_session['id']}").json()["connectionInfo"] is None
    assert dev.get(f"/workloads/sessions/{dev_session['id']}").json()["connectionInfo"]["grpcEndpoint"]
    for stranger in (other_dev, plain, outsider):
        assert_error(stranger.get(f"/workloads/sessions/{dev_session['id']}"), 404)
    assert_error(dev.get(f"/workloads/sessions/{admin_session['id']}"), 404)
    # In the list envelope too, only the owner's entry carries connectionInfo.
    listed = owner.get("/workloads/sessions").json()
    assert {s["id"]: s["connectionInfo"] for s in listed["included"]["sessions"]} == dict.fromkeys(all_three)
    assert len(listed["included"]["members"]) == 3
    assert {m["email"] for m in listed["included"]["members"]} == {dev.email, team_admin.email, other_dev.email}
    assert len(listed["included"]["workloads"]) == 3 and len(listed["included"]["workloadConfigs"]) == 2

    # Tokens: owner or org admin; a team admin sees the session but may not get a token.
    assert owner.post(f"/workloads/sessions/{dev_session['id']}/token", json={}).status_code == 200
    assert_error(team_admin.post(f"/workloads/sessions/{dev_session['id']}/token", json={}), 403)
    assert_error(outsider.post(f"/workloads/sessions/{dev_session['id']}/token", json={}), 404)

    # Close: owner, team admin, org admin; others 404.
    assert_error(other_dev.delete(f"/workloads/sessions/{dev_session['id']}"), 404)
    assert_error(outsider.delete(f"/workloads/sessions/{admin_session['id']}"), 404)
    close(team_admin, dev_session["id"])
    close(owner, admin_session["id"])
    close(other_dev, other_session["id"])


def test_list_filters_and_pages(compute_api: str) -> None:
    owner, team = org_with_team(compute_api)
    second_team = create_team(owner, "second")
    a, b, c = open_session(owner, team), open_session(owner, team), open_session(owner, second_team)
    close(owner, a["id"])
    assert _ids(owner) == [c["id"], b["id"], a["id"]]  # newest first
    body = owner.get("/workloads/sessions").json()
    assert body["total"] == 3 and body["marker"] is None
    assert set(body["items"][0]) == {"id", "computeInstanceId", "memberId", "serviceAccountId"}
    assert set(body["included"]) == {"sessions", "members", "serviceAccounts", "workloads", "workloadConfigs"}
    assert _ids(owner, teamId=team) == [b["id"], a["id"]]
    assert _ids(owner, status="closed") == [a["id"]]
    assert set(_ids(owner, status="pending")) | set(_ids(owner, status="active")) == {b["id"], c["id"]}
    assert len(_ids(owner, endpoint_type="spark_connect")) == 3
    first = owner.get("/workloads/sessions", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["total"] == 3 and first["marker"] == b["id"]
    rest = owner.get("/workloads/sessions", params={"limit": 2, "marker": first["marker"]}).json()
    assert [i["id"] for i in rest["items"]] == [a["id"]] and rest["marker"] is None
    assert owner.get("/workloads/sessions", params={"limit": 0}).json()["items"] == []
    assert_error(owner.get("/workloads/sessions", params={"status": "running"}), 400)
    assert_error(owner.get("/workloads/sessions", params={"endpoint_type": "http"}), 400)
    assert_error(owner.get("/workloads/sessions", params={"teamId": "bad-id"}), 400)
    assert_error(owner.get("/workloads/sessions", params={"limit": 101}), 400)
    assert_error(owner.get("/workloads/sessions/not-an-id!"), 400)
    for s in (b, c):
        close(owner, s["id"])


def test_service_account_sessions(compute_api: str) -> None:
    owner, team = org_with_team(compute_api)
    sa_id, robot = create_service_account(owner, "etl-bot", ["CanViewTeam", "CanCreateSessions"])
    session = open_session(robot, team)
    assert session["serviceAccountId"] == sa_id and session["memberId"] is None
    assert session["connectionInfo"]["grpcEndpoint"]
    listed = robot.get("/workloads/sessions").json()
    assert [i["id"] for i in listed["items"]] == [session["id"]]
    assert [a["username"] for a in listed["included"]["serviceAccounts"]] == ["etl-bot"]
    assert robot.post(f"/workloads/sessions/{session['id']}/token", json={}).status_code == 200
    _, idle_robot = create_service_account(owner, "no-grants", None)
    assert_error(idle_robot.post("/workloads/sessions", json={"teamId": team}), 404)  # cannot see the team
    _, viewer_robot = create_service_account(owner, "viewer-bot", ["CanViewTeam"])
    assert_error(viewer_robot.post("/workloads/sessions", json={"teamId": team}), 403)
    assert_error(idle_robot.get(f"/workloads/sessions/{session['id']}"), 404)
    close(robot, session["id"])


@pytest.fixture(scope="module")
def bad_input_org(compute_api: str) -> tuple[Actor, str]:
    """One organization for the many bad-input cases (none of them may write anything)."""
    return org_with_team(compute_api)


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"config": {"idleTimeoutSeconds": 0}}, 422, "config.idleTimeoutSeconds"),
    ({"config": {"idleCloseDelaySeconds": -1}}, 422, "config.idleCloseDelaySeconds"),
    ({"config": {"maxDurationSeconds": 10**9}}, 422, "config.maxDurationSeconds"),
    ({"config": {"idleTimeout": 5}}, 422, "config.idleTimeout"),
    ({"endpointType": "http"}, 422, "endpointType"),
    ({"metadata": {"k": 1}}, 422, "metadata.k"),
    ({"allowShared": "sometimes"}, 422, "allowShared"),
    ({"workloadConfig": {"config": {"sail": {"executionMode": "turbo"}}}}, 422,
     "workloadConfig.config.sail.executionMode"),
    ({"workloadConfig": {"config": {"sail": {"extraEnv": {"SAIL_MODE": "local"}}}}}, 422,
     "workloadConfig.config.sail.extraEnv"),
    ({"workloadConfig": {"config": {"sail": {"executionMode": "cluster",
                                             "compute": {"worker": {"maxNodes": 64}}}}}}, 422,
     "workloadConfig.config.sail.compute.worker.maxNodes"),
    ({"workloadConfig": {"clusterId": "NOSUCHCLUSTER"}}, 422, "workloadConfig.clusterId"),
    ({"workloadConfigId": "NOSUCHCONFIG"}, 422, "workloadConfigId"),
    ({"notebookId": "NOSUCHNOTEBOOK"}, 404, None),
    ({"memberId": "SOMEONEELSE"}, 422, "memberId"),
    ({"teamId": "NOSUCHTEAM"}, 404, None),
    ({"teamId": None}, 422, "teamId"),
])
def test_bad_session_requests(bad_input_org: tuple[Actor, str], body: dict[str, object], status: int,
                              field: str | None) -> None:
    owner, team = bad_input_org
    request = {"teamId": team, **body}
    if request["teamId"] is None:
        del request["teamId"]
    err = assert_error(owner.post("/workloads/sessions", json=request), status)
    if field is not None:
        assert field in err["details"]["fieldErrors"], err
    assert owner.get("/workloads/sessions").json()["total"] == 0  # nothing half-written


def test_who_may_create_sessions_where(compute_api: str) -> None:
    owner, team = org_with_team(compute_api)
    other_team = create_team(owner, "other")
    viewer, dev = create_member(owner), create_member(owner)
    add_to_team(owner, team, viewer, "TEAMVIEWER")
    add_to_team(owner, team, dev)
    assert_error(viewer.post("/workloads/sessions", json={"teamId": team}), 403)
    assert_error(dev.post("/workloads/sessions", json={"teamId": other_team}), 404)  # not their team
    r = owner.post("/workloads/compute-configs", json={"name": "other-cfg", "teamId": other_team})
    assert r.status_code == 201, r.text
    other_config = r.json()["id"]
    # Another team's (or organization's) workload config is answered exactly like one that does not exist.
    unknown = unknown_reference(dev.post("/workloads/sessions", json={"workloadConfigId": "NOSUCHCONFIG"}),
                                "workloadConfigId", "NOSUCHCONFIG")
    assert unknown_reference(dev.post("/workloads/sessions", json={"workloadConfigId": other_config}),
                             "workloadConfigId", other_config) == unknown
    err = assert_error(owner.post("/workloads/sessions", json={"workloadConfigId": other_config, "teamId": team}),
                       422)
    assert "teamId" in err["details"]["fieldErrors"]
    outsider, _ = org_with_team(compute_api)
    assert unknown_reference(outsider.post("/workloads/sessions", json={"workloadConfigId": other_config}),
                             "workloadConfigId", other_config) == unknown
    assert_error(outsider.post("/workloads/sessions", json={"teamId": team}), 404)
    assert_error(Actor(compute_api).post("/workloads/sessions", json={"teamId": team}), 401)
    assert_error(Actor(compute_api).get("/workloads/sessions"), 401)
