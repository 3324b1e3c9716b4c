"""Notebook records through the API: the seed's envelopes, defaults, visibility (owner, team members,
other teams and organizations, admins), updates, sharing with teams and deletion."""

from __future__ import annotations

from typing import Any

from sailplane.config import Settings
from tests.notebooks.helpers import (
    SEED_NOTEBOOK_FIELDS,
    SEED_TEAM_FIELDS,
    Org,
    build_org,
    db_rows,
    make_config,
    make_notebook,
    notebook_of,
)
from tests.support.actors import Actor, assert_error
from tests.support.world import create_service_account


def _ids(actor: Actor, path: str = "/workloads/notebooks") -> list[str]:
    r = actor.get(path)
    assert r.status_code == 200, r.text
    return [i["notebookId"] for i in r.json()["items"]]


def _shared(o: Org) -> tuple[str, dict[str, Any]]:
    config = make_config(o.dev1, o.team1)
    return config, make_notebook(o.dev1, config, teamIds=[o.team1])


def test_create_describe_list_in_the_seed_shape(api_url: str) -> None:
    o = build_org(api_url)
    config = make_config(o.dev1, o.team1)
    created = make_notebook(o.dev1, config, description="Daily ETL pipeline for sales data", idleTimeoutSeconds=1800,
                            teamIds=[o.team1])
    assert set(created) == {"item", "included"}
    item = created["item"]
    assert item == {"notebookId": item["notebookId"], "teamIds": [o.team1], "workloadConfigId": config}
    assert set(created["included"]) == {"notebooks", "teams", "workloadConfigs"}
    notebook = notebook_of(created)
    assert set(notebook) == SEED_NOTEBOOK_FIELDS
    assert notebook["status"] == "stopped" and notebook["statusMessage"] is None
    assert notebook["memberId"] == o.dev1.member_id == notebook["createdBy"] == notebook["updatedBy"]
    assert notebook["name"] == "Daily Sales Analysis" and notebook["description"] == "Daily ETL pipeline for sales data"
    assert notebook["idleTimeoutSeconds"] == 1800 and notebook["detachedTimeoutSeconds"] == 14400
    assert notebook["sessionId"] is None and notebook["lastActiveAt"] is None
    [team] = created["included"]["teams"]
    assert set(team) == {"team", "memberCount"} and set(team["team"]) >= SEED_TEAM_FIELDS
    assert team["team"]["id"] == o.team1 and team["memberCount"] == 3  # its creator (the org owner), dev1 and viewer1
    [workload_config] = created["included"]["workloadConfigs"]
    assert workload_config["id"] == config and workload_config["config"]["sail"]["executionMode"] == "standalone"

    described = o.dev1.get(f"/workloads/notebooks/{item['notebookId']}").json()
    assert described == created
    defaults = notebook_of(make_notebook(o.dev1, config, name="Scratch"))
    assert defaults["idleTimeoutSeconds"] == 3600 and defaults["detachedTimeoutSeconds"] == 14400
    assert defaults["description"] is None

    listed = o.dev1.get("/workloads/notebooks").json()
    assert set(listed) == {"total", "items", "included"} and listed["total"] == 2
    assert [i["notebookId"] for i in listed["items"]] == [defaults["id"], item["notebookId"]]  # newest first
    assert listed["items"][1] == item
    assert [n for n in listed["included"]["notebooks"] if n["id"] == item["notebookId"]] == [notebook]
    assert listed["included"]["workloadConfigs"] == [workload_config]
    page = o.dev1.get("/workloads/notebooks", params={"limit": 1}).json()
    assert page["total"] == 2 and [i["notebookId"] for i in page["items"]] == [defaults["id"]]
    empty = o.dev1.get("/workloads/notebooks", params={"limit": 0}).json()
    assert empty["total"] == 2 and empty["items"] == [] and empty["included"]["notebooks"] == []
    assert_error(o.dev1.get("/workloads/notebooks", params={"limit": 101}), 400)  # a bad parameter
    team_listing = o.viewer1.get(f"/workloads/teams/{o.team1}/notebooks").json()
    assert team_listing["total"] == 1 and team_listing["items"] == [item]  # "Scratch" is not shared
    events = o.owner.get("/org/audit-events", params={"resourceId": item["notebookId"]}).json()["items"]
    assert [e["action"] for e in events] == ["notebook.create"]


def test_who_sees_a_notebook(api_url: str) -> None:
    o = build_org(api_url)
    config, shared = _shared(o)
    nid = shared["item"]["notebookId"]
    private = make_notebook(o.dev1, config, name="Private")["item"]["notebookId"]
    for actor in (o.dev1, o.owner, o.admin):  # the owner and organization admins see both
        assert set(_ids(actor)) == {nid, private}
        assert actor.get(f"/workloads/notebooks/{private}").status_code == 200
    assert _ids(o.viewer1) == [nid]  # a member of the team it is shared with
    assert o.viewer1.get(f"/workloads/notebooks/{nid}").json() == shared
    assert_error(o.viewer1.get(f"/workloads/notebooks/{private}"), 404)
    for outsider in (o.dev2, o.loner, o.outsider):  # another team, no team, another organization
        assert _ids(outsider) == []
        for notebook in (nid, private):
            assert_error(outsider.get(f"/workloads/notebooks/{notebook}"), 404)
            assert_error(outsider.get(f"/workloads/notebooks/{notebook}/teams"), 404)
            assert_error(outsider.patch(f"/workloads/notebooks/{notebook}", json={"name": "x"}), 404)
            assert_error(outsider.delete(f"/workloads/notebooks/{notebook}"), 404)
    assert_error(o.dev2.get(f"/workloads/teams/{o.team1}/notebooks"), 404)
    assert _ids(o.dev2, f"/workloads/teams/{o.team2}/notebooks") == []
    assert_error(o.outsider.get(f"/workloads/teams/{o.team1}/notebooks"), 404)
    # Team members view; only the owner and organization admins change, share or delete.
    assert_error(o.viewer1.patch(f"/workloads/notebooks/{nid}", json={"name": "mine now"}), 403)
    assert_error(o.viewer1.delete(f"/workloads/notebooks/{nid}"), 403)
    assert_error(o.viewer1.post(f"/workloads/notebooks/{nid}/teams", json={"teamIds": [o.team1]}), 403)
    assert_error(o.viewer1.delete(f"/workloads/notebooks/{nid}/teams/{o.team1}"), 403)
    renamed = o.admin.patch(f"/workloads/notebooks/{nid}", json={"name": "Renamed by an admin"})
    assert renamed.status_code == 200 and renamed.json()["updatedBy"] == o.admin.member_id
    assert o.dev1.get(f"/workloads/notebooks/{nid}").json()["item"] == shared["item"]


def test_create_refuses_what_the_caller_may_not_use(api_url: str) -> None:
    o = build_org(api_url)
    config = make_config(o.dev1, o.team1)
    other_team_config = make_config(o.dev2, o.team2)
    other_org_config = make_config(o.outsider, _team_of(o.outsider))
    body = {"workloadConfigId": config, "name": "n"}
    for missing in ("ZZZZZZZZZZZZZZZZZZZZ", other_team_config, other_org_config):
        assert_error(o.dev1.post("/workloads/notebooks", json={**body, "workloadConfigId": missing}), 404)
    # A Viewer sees the team's config but may not build notebooks on it.
    assert_error(o.viewer1.post("/workloads/notebooks", json=body), 403)
    err = assert_error(o.dev1.post("/workloads/notebooks", json={**body, "teamIds": [o.team2]}), 422)
    assert err["details"]["fieldErrors"] == {"teamIds": f"unknown team {o.team2}"}
    for bad in ({"name": ""}, {"name": "a\x00b"}, {"idleTimeoutSeconds": 0}, {"idleTimeoutSeconds": "60"},
                {"detachedTimeoutSeconds": 2_592_001}, {"teamIds": ["lower"]}, {"unknown": 1},
                {"description": "x" * 2001}):
        assert_error(o.dev1.post("/workloads/notebooks", json={**body, **bad}), 422)
    assert_error(o.dev1.post("/workloads/notebooks", json={"name": "no config"}), 422)
    deep: Any = "x"
    for _ in range(40):
        deep = {"d": deep}
    assert_error(o.dev1.post("/workloads/notebooks", json={**body, "description": deep}), 422)
    _, robot = create_service_account(o.owner, "robot", ["CanManageNotebooks"])
    assert_error(robot.post("/workloads/notebooks", json=body), 403)
    assert _ids(o.dev1) == [] and _ids(o.owner) == []  # nothing was created by the refused requests


def _team_of(actor: Actor) -> str:
    r = actor.post("/org/teams", json={"name": "their team"})
    assert r.status_code == 201, r.text
    return str(r.json()["team"]["id"])


def test_update(api_url: str, settings: Settings) -> None:
    o = build_org(api_url)
    config, shared = _shared(o)
    nid = shared["item"]["notebookId"]
    r = o.dev1.patch(f"/workloads/notebooks/{nid}", json={"name": "Weekly", "description": None,
                                                           "idleTimeoutSeconds": 120, "detachedTimeoutSeconds": 60})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert set(updated) == SEED_NOTEBOOK_FIELDS
    assert (updated["name"], updated["description"], updated["idleTimeoutSeconds"],
            updated["detachedTimeoutSeconds"]) == ("Weekly", None, 120, 60)
    assert notebook_of(o.dev1.get(f"/workloads/notebooks/{nid}").json()) == updated
    for bad in ({"name": None}, {"idleTimeoutSeconds": None}, {"workloadConfigId": None}, {"status": "running"},
                {"name": " "}):
        assert_error(o.dev1.patch(f"/workloads/notebooks/{nid}", json=bad), 422)
    # The workload config changes while the notebook is stopped, to one the caller may use.
    other = make_config(o.dev1, o.team1)
    moved = o.dev1.patch(f"/workloads/notebooks/{nid}", json={"workloadConfigId": other}).json()
    assert moved["workloadConfigId"] == other
    described = o.dev1.get(f"/workloads/notebooks/{nid}").json()
    assert described["item"]["workloadConfigId"] == other
    assert [c["id"] for c in described["included"]["workloadConfigs"]] == [other]
    assert_error(o.dev1.patch(f"/workloads/notebooks/{nid}", json={"workloadConfigId": make_config(o.dev2, o.team2)}),
                 404)
    # Not while it runs (start comes with the runtime: the state is set here as a start would).
    db_rows(settings.database_url, "UPDATE notebooks SET status = 'running' WHERE id = :id", id=nid)
    err = assert_error(o.dev1.patch(f"/workloads/notebooks/{nid}", json={"workloadConfigId": config, "name": "No"}),
                       409, "notebook_not_stopped")
    assert "running" in err["message"]
    after = notebook_of(o.dev1.get(f"/workloads/notebooks/{nid}").json())
    assert after["workloadConfigId"] == other and after["name"] == "Weekly"  # nothing half-written
    assert o.dev1.patch(f"/workloads/notebooks/{nid}", json={"name": "Renamed while running"}).status_code == 200
    db_rows(settings.database_url, "UPDATE notebooks SET status = 'stopped' WHERE id = :id", id=nid)
    events = o.owner.get("/org/audit-events", params={"resourceId": nid}).json()["items"]
    assert [e["action"] for e in events].count("notebook.update") == 3


def test_teams(api_url: str) -> None:
    o = build_org(api_url)
    _, shared = _shared(o)
    nid = shared["item"]["notebookId"]
    links = o.viewer1.get(f"/workloads/notebooks/{nid}/teams").json()
    assert set(links) == {"items"}
    [link] = links["items"]
    assert set(link) == {"notebookId", "teamId", "createdAt", "createdBy", "updatedAt", "updatedBy"}
    assert (link["notebookId"], link["teamId"], link["createdBy"]) == (nid, o.team1, o.dev1.member_id)
    # The owner shares only with teams they can see: team2 is not one of dev1's.
    err = assert_error(o.dev1.post(f"/workloads/notebooks/{nid}/teams", json={"teamIds": [o.team2]}), 422)
    assert err["details"]["fieldErrors"] == {"teamIds": f"unknown team {o.team2}"}
    assert_error(o.dev1.post(f"/workloads/notebooks/{nid}/teams", json={"teamIds": []}), 422)
    added = o.owner.post(f"/workloads/notebooks/{nid}/teams", json={"teamIds": [o.team2, o.team1]})
    assert added.status_code == 200, added.text
    assert [(x["teamId"], x["createdBy"]) for x in added.json()["items"]] == [
        (o.team1, o.dev1.member_id), (o.team2, o.owner.member_id)]
    again = o.owner.post(f"/workloads/notebooks/{nid}/teams", json={"teamIds": [o.team2]}).json()["items"]
    assert [x["teamId"] for x in again] == [o.team2]  # idempotent
    assert _ids(o.dev2) == [nid] and _ids(o.dev2, f"/workloads/teams/{o.team2}/notebooks") == [nid]
    assert o.dev2.get(f"/workloads/notebooks/{nid}").json()["item"]["teamIds"] == [o.team1, o.team2]
    # dev2 sees the notebook and team2, not team1's details.
    assert [t["team"]["id"] for t in o.dev2.get(f"/workloads/notebooks/{nid}").json()["included"]["teams"]] == [o.team2]
    assert [x["teamId"] for x in o.dev1.get(f"/workloads/notebooks/{nid}/teams", params={"limit": 1}).json()["items"]] \
        == [o.team1]
    assert_error(o.dev2.delete(f"/workloads/notebooks/{nid}/teams/{o.team2}"), 403)  # not the owner
    done = o.dev1.delete(f"/workloads/notebooks/{nid}/teams/{o.team2}")
    assert done.status_code == 200 and done.json() == {"message": "The requested operation was done successfully."}
    assert_error(o.dev1.delete(f"/workloads/notebooks/{nid}/teams/{o.team2}"), 404)
    assert_error(o.dev2.get(f"/workloads/notebooks/{nid}"), 404)
    assert _ids(o.dev2) == []
    # The last team may go: the owner keeps the notebook, the team's members lose it.
    assert o.dev1.delete(f"/workloads/notebooks/{nid}/teams/{o.team1}").status_code == 200
    assert_error(o.viewer1.get(f"/workloads/notebooks/{nid}"), 404)
    assert o.dev1.get(f"/workloads/notebooks/{nid}").json()["item"]["teamIds"] == []


def test_delete(api_url: str, settings: Settings) -> None:
    o = build_org(api_url)
    config, shared = _shared(o)
    nid = shared["item"]["notebookId"]
    assert o.dev1.put(f"/workloads/notebooks/{nid}/source", content=b"import marimo\n").status_code == 200
    done = o.dev1.delete(f"/workloads/notebooks/{nid}")
    assert done.status_code == 200 and done.json() == {"message": "The requested operation was done successfully."}
    assert_error(o.dev1.get(f"/workloads/notebooks/{nid}"), 404)
    assert_error(o.dev1.delete(f"/workloads/notebooks/{nid}"), 404)
    assert _ids(o.viewer1, f"/workloads/teams/{o.team1}/notebooks") == []
    for table in ("notebook_teams", "notebook_revisions"):
        assert db_rows(settings.database_url, f"SELECT * FROM {table} WHERE notebook_id = :id", id=nid) == []
    # An organization admin deletes anyone's notebook.
    other = make_notebook(o.dev1, config)["item"]["notebookId"]
    assert o.admin.delete(f"/workloads/notebooks/{other}").status_code == 200
    assert _ids(o.dev1) == []
