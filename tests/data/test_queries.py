"""Saved queries through HTTP: CRUD, sharing, visibility, catalogs, bad input, the in-use hook."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sailplane.workloads.jobs import service as jobs_service
from tests.data.helpers import build_org, make_catalog, make_query
from tests.support.actors import assert_error
from tests.support.world import create_service_account, create_team

QUERY_FIELDS = {"id", "organizationId", "name", "description", "sql", "catalogId", "schema", "createdAt",
                "createdBy", "updatedAt", "updatedBy"}


def test_query_lifecycle(api_url: str) -> None:
    o = build_org(api_url)
    cat = make_catalog(o.dev1, "warehouse", [o.team1])
    r = o.dev1.post("/workloads/queries", json={"name": "daily", "description": "d", "sql": "SELECT * FROM t",
                                                 "catalogId": cat["id"], "schema": "sales", "teamIds": [o.team1]})
    assert r.status_code == 201, r.text
    q = r.json()
    assert set(q) == QUERY_FIELDS
    assert q["sql"] == "SELECT * FROM t" and q["catalogId"] == cat["id"] and q["schema"] == "sales"
    assert q["createdBy"] == o.dev1.member_id

    d = o.viewer1.get(f"/workloads/queries/{q['id']}").json()
    assert d["item"] == {"queryId": q["id"], "catalogId": cat["id"], "teamIds": [o.team1]}
    assert d["included"]["queries"] == [q]
    assert [c["id"] for c in d["included"]["catalogs"]] == [cat["id"]]
    assert d["included"]["catalogs"][0]["provider"] == "iceberg_rest"
    assert [t["id"] for t in d["included"]["teams"]] == [o.team1]

    u = o.dev1.patch(f"/workloads/queries/{q['id']}", json={"sql": "SELECT 2", "schema": None, "catalogId": None,
                                                            "name": "daily2"})
    assert u.status_code == 200, u.text
    u = u.json()
    assert (u["sql"], u["schema"], u["catalogId"], u["name"]) == ("SELECT 2", None, None, "daily2")
    assert u["description"] == "d"
    u = o.dev1.patch(f"/workloads/queries/{q['id']}", json={"catalogId": cat["id"]}).json()
    assert u["catalogId"] == cat["id"]

    links = o.owner.post(f"/workloads/queries/{q['id']}/teams", json={"teamIds": [o.team2]})
    assert links.status_code == 200, links.text
    assert [(x["queryId"], x["teamId"]) for x in links.json()["items"]] == [(q["id"], o.team2)]
    teams = o.owner.get(f"/workloads/queries/{q['id']}/teams").json()
    assert teams["total"] == 2 and {i["team"]["id"] for i in teams["items"]} == {o.team1, o.team2}
    # team details follow team visibility: dev1 is not in team 2 (the IDs stay in teamIds)
    assert [i["team"]["id"] for i in o.dev1.get(f"/workloads/queries/{q['id']}/teams").json()["items"]] == [o.team1]
    mine = o.dev1.get(f"/workloads/queries/{q['id']}").json()
    assert set(mine["item"]["teamIds"]) == {o.team1, o.team2}
    assert [t["id"] for t in mine["included"]["teams"]] == [o.team1]
    assert o.dev2.get(f"/workloads/queries/{q['id']}").status_code == 200
    # dev2 sees the query but not its catalog (not shared with team 2)
    assert o.dev2.get(f"/workloads/queries/{q['id']}").json()["included"]["catalogs"] == []
    assert [i["queryId"] for i in o.dev2.get(f"/workloads/teams/{o.team2}/queries").json()["items"]] == [q["id"]]
    assert o.dev2.delete(f"/workloads/queries/{q['id']}/teams/{o.team1}").status_code == 200
    assert_error(o.dev1.get(f"/workloads/queries/{q['id']}"), 404)
    assert_error(o.dev2.delete(f"/workloads/queries/{q['id']}/teams/{o.team2}"), 409, "last_team")

    assert o.dev2.delete(f"/workloads/queries/{q['id']}").status_code == 200
    assert_error(o.dev2.get(f"/workloads/queries/{q['id']}"), 404)
    actions = [e["action"] for e in o.owner.get("/org/audit-events", params={"resourceId": q["id"]}).json()["items"]]
    assert {"query.create", "query.update", "query.add_teams", "query.remove_team", "query.delete"} <= set(actions)


def test_visibility_and_permissions(api_url: str) -> None:
    o = build_org(api_url)
    q = make_query(o.dev1, "t1-q", [o.team1])
    q2 = make_query(o.dev2, "t2-q", [o.team2])
    path = f"/workloads/queries/{q['id']}"
    for actor in (o.owner, o.admin, o.dev1, o.viewer1):
        assert actor.get(path).status_code == 200
    for actor in (o.dev2, o.loner, o.outsider, o.outsider.as_org(o.owner.org_id or "")):
        assert_error(actor.get(path), 404)
        assert_error(actor.patch(path, json={"sql": "SELECT 3"}), 404)
        assert_error(actor.delete(path), 404)
        assert_error(actor.get(f"{path}/teams"), 404)
    assert_error(o.viewer1.patch(path, json={"sql": "SELECT 3"}), 403)
    assert_error(o.viewer1.delete(path), 403)
    assert_error(o.viewer1.delete(f"{path}/teams/{o.team1}"), 403)
    assert_error(o.viewer1.post("/workloads/queries", json={"name": "v", "sql": "SELECT 1", "teamIds": [o.team1]}),
                 403)
    assert o.admin.patch(path, json={"description": "admin"}).status_code == 200
    assert {i["queryId"] for i in o.admin.get("/workloads/queries").json()["items"]} == {q["id"], q2["id"]}
    assert [i["queryId"] for i in o.dev1.get("/workloads/queries").json()["items"]] == [q["id"]]
    assert [i["queryId"] for i in o.dev2.get("/me/queries").json()["items"]] == [q2["id"]]
    assert o.loner.get("/me/queries").json() == {"total": 0, "items": [],
                                                 "included": {"queries": [], "catalogs": [], "teams": []}}
    assert o.outsider.get("/workloads/queries").json()["total"] == 0
    assert_error(o.dev2.get(f"/workloads/teams/{o.team1}/queries"), 404)
    assert_error(o.outsider.get(f"/workloads/teams/{o.team1}/queries"), 404)
    # catalogs: only one the caller can see in this organization
    cat2 = make_catalog(o.dev2, "t2-cat", [o.team2])
    other_org_cat = make_catalog(o.outsider, "theirs", [create_team(o.outsider, 'their team')])
    for catalog_id in (cat2["id"], other_org_cat["id"], "ZZZZZZZZZZZZZZZZZZZZ"):
        err = assert_error(o.dev1.post("/workloads/queries", json={
            "name": "x", "sql": "SELECT 1", "teamIds": [o.team1], "catalogId": catalog_id}), 422)
        assert "catalogId" in err["details"]["fieldErrors"]
        assert_error(o.dev1.patch(path, json={"catalogId": catalog_id}), 422)
    # catalog queries only list queries the caller can see
    shared = make_query(o.owner, "both", [o.team1, o.team2], catalogId=cat2["id"])
    hidden = make_query(o.owner, "t2-only", [o.team2], catalogId=cat2["id"])
    assert {i["queryId"] for i in o.dev2.get(f"/data/catalogs/{cat2['id']}/queries").json()["items"]} == {
        shared["id"], hidden["id"]}
    assert_error(o.dev1.get(f"/data/catalogs/{cat2['id']}/queries"), 404)
    _, robot = create_service_account(o.owner, "q-robot", ["CanViewQueries"])
    assert robot.get(path).status_code == 200
    assert_error(robot.patch(path, json={"sql": "SELECT 9"}), 403)
    _, writer = create_service_account(o.owner, "q-writer", ["CanManageQueries"])
    created = writer.post("/workloads/queries", json={"name": "by-robot", "sql": "SELECT 1", "teamIds": [o.team2]})
    assert created.status_code == 201, created.text
    assert created.json()["id"] in {i["queryId"] for i in o.dev2.get("/me/queries").json()["items"]}
    anon = o.owner.__class__(o.owner.base_url)
    assert_error(anon.get("/me/queries"), 401)
    assert_error(anon.post("/workloads/queries", json={}), 401)


def test_my_queries_paging_and_sorting(api_url: str) -> None:
    o = build_org(api_url)
    ids = {n: make_query(o.dev1, n, [o.team1])["id"] for n in ("b", "a", "c")}
    # default: updatedAt ascending
    body = o.dev1.get("/me/queries").json()
    assert body["total"] == 3 and [i["queryId"] for i in body["items"]] == [ids["b"], ids["a"], ids["c"]]
    o.dev1.patch(f"/workloads/queries/{ids['b']}", json={"description": "newest"})
    assert o.dev1.get("/me/queries").json()["items"][-1]["queryId"] == ids["b"]
    by_name = o.dev1.get("/me/queries", params={"sortBy": "name", "sortDirection": "desc"}).json()
    assert [i["queryId"] for i in by_name["items"]] == [ids["c"], ids["b"], ids["a"]]
    page = o.dev1.get("/me/queries", params={"sortBy": "name", "page": 2, "limit": 2}).json()
    assert page["total"] == 3 and [i["queryId"] for i in page["items"]] == [ids["c"]]
    assert [q["id"] for q in page["included"]["queries"]] == [ids["c"]]
    assert_error(o.dev1.get("/me/queries", params={"sortBy": "sql"}), 400, "invalid_sort_field")
    assert_error(o.dev1.get("/me/queries", params={"limit": 101}), 400)
    assert_error(o.dev1.get("/workloads/queries", params={"limit": "x"}), 400)
    limited = o.dev1.get(f"/workloads/teams/{o.team1}/queries", params={"limit": 1}).json()
    assert limited["total"] == 3 and len(limited["items"]) == 1


def test_bad_input(api_url: str) -> None:
    o = build_org(api_url)
    q = make_query(o.dev1, "dup", [o.team1])
    base = {"name": "n", "sql": "SELECT 1", "teamIds": [o.team1]}
    assert_error(o.dev1.post("/workloads/queries", json=base | {"name": "dup"}), 409, "query_name_taken")
    assert_error(o.dev1.post("/workloads/queries", json=base | {"name": "Dup"}), 409)
    make_query(o.dev1, "other", [o.team1])
    assert_error(o.dev1.patch(f"/workloads/queries/{q['id']}", json={"name": "other"}), 409)
    big = "SELECT '" + "x" * (1024 * 1024) + "'"
    multibyte = "SELECT '" + "é" * (600 * 1024) + "'"  # under a million characters, over 1 MB
    cases = [
        (base | {"sql": ""}, "sql"), (base | {"sql": "   "}, "sql"), (base | {"sql": big}, "sql"),
        (base | {"sql": multibyte}, "sql"), (base | {"teamIds": []}, "teamIds"),
        ({k: v for k, v in base.items() if k != "sql"}, "sql"), (base | {"extra": 1}, "extra"),
        (base | {"catalogId": "bad id"}, "catalogId"), (base | {"teamIds": ["ZZZZZZZZZZZZZZZZZZZZ"]}, "teamIds"),
        (base | {"schema": ""}, "schema"),
    ]
    for body, field in cases:
        err = assert_error(o.dev1.post("/workloads/queries", json=body), 422)
        assert field in err["details"]["fieldErrors"], (field, err)
    for body, field in (({"sql": None}, "sql"), ({"name": None}, "name"), ({"sql": " "}, "sql"),
                        ({"unknown": 1}, "unknown")):
        err = assert_error(o.dev1.patch(f"/workloads/queries/{q['id']}", json=body), 422)
        assert field in err["details"]["fieldErrors"], (field, err)
    assert_error(o.dev1.get("/workloads/queries/lower-case"), 400)
    assert_error(o.dev1.get("/workloads/queries/ZZZZZZZZZZZZZZZZZZZZ"), 404)
    assert_error(o.dev1.post(f"/workloads/queries/{q['id']}/teams", json={"teamIds": ["bad"]}), 422)
    assert_error(o.dev1.delete(f"/workloads/queries/{q['id']}/teams/ZZZZZZZZZZZZZZZZZZZZ"), 404)
    assert_error(o.dev1.get("/workloads/teams/bad-id/queries"), 400)
    assert {i["name"] for i in o.owner.get("/workloads/queries").json()["included"]["queries"]} == {"dup", "other"}
    ok = o.dev1.post("/workloads/queries", json=base | {"name": "big-ok", "sql": "SELECT '" + "x" * 1000 + "'"})
    assert ok.status_code == 201


@pytest.fixture
def blocking_jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Stands in for a job that runs the query: the server runs in this process and deleteQuery looks the
    jobs' check up at call time, so a patched one is live."""
    used: set[str] = set()
    real = jobs_service.active_jobs_using_query

    def check(db, principal, query_id):  # type: ignore[no-untyped-def]
        return [*real(db, principal, query_id), *(["daily-sales-etl"] if query_id in used else [])]

    monkeypatch.setattr(jobs_service, "active_jobs_using_query", check)
    yield used


def test_delete_refused_while_an_active_job_uses_the_query(api_url: str, blocking_jobs: set[str]) -> None:
    o = build_org(api_url)
    q = make_query(o.dev1, "in-use", [o.team1])
    blocking_jobs.add(q["id"])
    err = assert_error(o.dev1.delete(f"/workloads/queries/{q['id']}"), 409, "query_in_use")
    assert "daily-sales-etl" in err["message"]
    assert o.dev1.get(f"/workloads/queries/{q['id']}").status_code == 200
    blocking_jobs.discard(q["id"])
    assert o.dev1.delete(f"/workloads/queries/{q['id']}").status_code == 200
