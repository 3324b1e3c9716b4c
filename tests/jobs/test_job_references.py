"""Every reference a job names (saved query, its catalog, dependsOn keys, cluster) is checked for
visibility when the job or a version is saved: one the caller cannot see is answered exactly like
one that does not exist (422 naming the field), and one they can see must also be shared with one of
the job's teams, since the job's runs show their output to those teams."""

from __future__ import annotations

from typing import Any

from tests.data.helpers import Org, build_org, make_catalog, make_query
from tests.jobs.helpers import make_job, sql_job, unique_key
from tests.support.actors import assert_error, unknown_reference
from tests.support.world import create_team

UNKNOWN_ID = "ZZZZZZZZZZZZZZZZZZZZ"


def query_job(team_ids: list[str], query_id: str, **fields: Any) -> dict[str, Any]:
    return sql_job(unique_key(), team_ids, config={"sql": {"queryId": query_id}}, **fields)


def version_paths(job: dict[str, Any]) -> list[tuple[str, str]]:
    """The routes that save versioned settings of an existing job (method, path)."""
    path = f"/workloads/jobs/{job['id']}"
    return [("POST", f"{path}/versions"), ("POST", f"{path}/draft")]


def test_a_job_cannot_name_a_query_of_another_team(api_url: str) -> None:
    o = build_org(api_url)
    theirs = make_query(o.dev1, f"t1-only-{unique_key()}", [o.team1], sql="SELECT 'T1 secret' AS s")
    other_org = make_query(o.outsider, f"q-{unique_key()}", [create_team(o.outsider, f"x-{unique_key()}")])
    unknown = unknown_reference(o.dev2.post("/workloads/jobs", json=query_job([o.team2], UNKNOWN_ID)),
                                "config.sql.queryId", UNKNOWN_ID)
    # The probe's attack: T2's member names T1's query. Same answer as for an ID nobody has.
    for query_id in (theirs["id"], other_org["id"]):
        r = o.dev2.post("/workloads/jobs", json=query_job([o.team2], query_id))
        assert unknown_reference(r, "config.sql.queryId", query_id) == unknown
    assert o.dev2.get("/workloads/jobs").json()["total"] == 0

    # Nor through a new version, a draft or a draft update of a job of their own.
    own = make_job(o.dev2, sql_job(unique_key(), [o.team2]))
    body = {"config": {"sql": {"queryId": theirs["id"]}}}
    for method, path in version_paths(own):
        r = o.dev2.request(method, path, json=body)
        assert unknown_reference(r, "config.sql.queryId", theirs["id"]) == unknown, path
    assert o.dev2.post(f"/workloads/jobs/{own['id']}/draft", json={"description": "d"}).status_code == 201
    r = o.dev2.patch(f"/workloads/jobs/{own['id']}/draft", json=body)
    assert unknown_reference(r, "config.sql.queryId", theirs["id"]) == unknown
    assert o.dev2.get(f"/workloads/jobs/{own['id']}/draft").json()["config"]["sql"] == {
        "source": "SELECT 1", "queryId": None}

    # Their own team's query is fine.
    mine = make_query(o.dev2, f"t2-{unique_key()}", [o.team2])
    assert make_job(o.dev2, query_job([o.team2], mine["id"]))["config"]["sql"]["queryId"] == mine["id"]


def test_a_visible_query_must_be_shared_with_one_of_the_jobs_teams(api_url: str) -> None:
    """An organization admin sees T1's query, but a job of T2 would show T2 its SQL and rows."""
    o = build_org(api_url)
    q = make_query(o.dev1, f"t1-{unique_key()}", [o.team1])
    err = assert_error(o.admin.post("/workloads/jobs", json=query_job([o.team2], q["id"])), 422)
    assert err["details"]["fieldErrors"] == {
        "config.sql.queryId": f"the query {q['id']} is not shared with any of the job's teams"}
    assert make_job(o.admin, query_job([o.team1, o.team2], q["id"]))["id"]

    # The query's catalog (its settings and credentials reach the run) must be shared with them too.
    cat = make_catalog(o.dev1, f"c-{unique_key()}", [o.team1])
    both = make_query(o.admin, f"both-{unique_key()}", [o.team1, o.team2], catalogId=cat["id"])
    err = assert_error(o.dev2.post("/workloads/jobs", json=query_job([o.team2], both["id"])), 422)
    assert err["details"]["fieldErrors"] == {
        "config.sql.queryId": f"the catalog of query {both['id']} is not shared with any of the job's teams"}
    assert o.admin.post(f"/data/catalogs/{cat['id']}/teams", json={"teamIds": [o.team2]}).status_code == 200
    assert make_job(o.dev2, query_job([o.team2], both["id"]))["id"]


def test_activating_or_resuming_rechecks_the_query(api_url: str) -> None:
    o = build_org(api_url)
    q = make_query(o.admin, f"q-{unique_key()}", [o.team1, o.team2])
    versioned = make_job(o.dev2, query_job([o.team2], q["id"]))
    paused = make_job(o.dev2, query_job([o.team2], q["id"], status="paused"))
    path = f"/workloads/jobs/{versioned['id']}"
    assert o.dev2.post(f"{path}/versions", json={"config": {"sql": {"source": "SELECT 2"}}}).status_code == 201
    unknown = unknown_reference(o.dev2.post(f"{path}/versions", json={"config": {"sql": {"queryId": UNKNOWN_ID}}}),
                                "config.sql.queryId", UNKNOWN_ID)
    # T1 takes its query back from T2: the version using it cannot become current again, nor the paused
    # job that uses it resume.
    assert o.dev1.delete(f"/workloads/queries/{q['id']}/teams/{o.team2}").status_code == 200
    r = o.dev2.post(f"{path}/activate-version", json={"version": 1})
    assert unknown_reference(r, "config.sql.queryId", q["id"]) == unknown
    assert o.dev2.get(path).json()["included"]["jobs"][0]["currentVersion"] == 2
    r = o.dev2.patch(f"/workloads/jobs/{paused['id']}", json={"status": "active"})
    assert unknown_reference(r, "config.sql.queryId", q["id"]) == unknown
    assert o.dev2.get(f"/workloads/jobs/{paused['id']}").json()["included"]["jobs"][0]["status"] == "paused"


def test_depends_on_an_invisible_job_looks_like_an_unknown_key(api_url: str) -> None:
    o = build_org(api_url)
    hidden = make_job(o.dev1, sql_job(unique_key("t1"), [o.team1]))
    theirs = make_job(o.outsider, sql_job(unique_key("x"), [create_team(o.outsider, f"x-{unique_key()}")]))
    nobody = unique_key("nobody")
    body = sql_job(unique_key(), [o.team2], dependsOn=[{"jobKey": nobody}])
    unknown = unknown_reference(o.dev2.post("/workloads/jobs", json=body), "dependsOn", nobody)
    for key in (hidden["jobKey"], theirs["jobKey"]):
        body = sql_job(unique_key(), [o.team2], dependsOn=[{"jobKey": key}])
        assert unknown_reference(o.dev2.post("/workloads/jobs", json=body), "dependsOn", key) == unknown
    own = make_job(o.dev2, sql_job(unique_key(), [o.team2]))
    for method, path in version_paths(own):
        r = o.dev2.request(method, path, json={"dependsOn": [{"jobKey": hidden["jobKey"]}]})
        assert unknown_reference(r, "dependsOn", hidden["jobKey"]) == unknown, path

    # The admin sees T1's job, but T2's job may only follow jobs shared with one of its teams.
    err = assert_error(o.admin.post("/workloads/jobs", json=sql_job(
        unique_key(), [o.team2], dependsOn=[{"jobKey": hidden["jobKey"]}])), 422)
    assert err["details"]["fieldErrors"] == {
        "dependsOn": f"job {hidden['jobKey']} is not shared with any of this job's teams"}
    ok = make_job(o.admin, sql_job(unique_key(), [o.team1, o.team2], dependsOn=[{"jobKey": hidden["jobKey"]}]))
    assert ok["dependsOn"] == [{"jobKey": hidden["jobKey"]}]


def test_conflicts_do_not_name_jobs_the_caller_cannot_see(api_url: str) -> None:
    o = build_org(api_url)
    shared = make_job(o.admin, sql_job(unique_key("shared"), [o.team1, o.team2]))
    follower = make_job(o.dev1, sql_job(unique_key("t1"), [o.team1], dependsOn=[{"jobKey": shared["jobKey"]}]))
    # Renaming a job others depend on: T2's member learns that one does, not its key.
    err = assert_error(o.dev2.patch(f"/workloads/jobs/{shared['id']}", json={"jobKey": unique_key()}), 409,
                       "job_key_in_use")
    assert follower["jobKey"] not in err["message"] and "1 job(s) you cannot see" in err["message"]
    err = assert_error(o.dev1.patch(f"/workloads/jobs/{shared['id']}", json={"jobKey": unique_key()}), 409)
    assert follower["jobKey"] in err["message"]

    # Deleting a query a job of another team runs.
    q = make_query(o.admin, f"q-{unique_key()}", [o.team1, o.team2])
    user = make_job(o.dev1, query_job([o.team1], q["id"]))
    err = assert_error(o.dev2.delete(f"/workloads/queries/{q['id']}"), 409, "query_in_use")
    assert user["jobKey"] not in err["message"] and "1 job(s) you cannot see" in err["message"]
    err = assert_error(o.dev1.delete(f"/workloads/queries/{q['id']}"), 409, "query_in_use")
    assert user["jobKey"] in err["message"]


def test_a_cycle_through_an_invisible_job_does_not_name_it(api_url: str) -> None:
    o = build_org(api_url)
    x = make_job(o.dev2, sql_job(unique_key("x"), [o.team2]))
    z = make_job(o.admin, sql_job(unique_key("z"), [o.team1, o.team2], dependsOn=[{"jobKey": x["jobKey"]}]))
    y = make_job(o.admin, sql_job(unique_key("y"), [o.team1, o.team2], dependsOn=[{"jobKey": z["jobKey"]}]))
    assert o.admin.delete(f"/workloads/jobs/{z['id']}/teams/{o.team2}").status_code == 200  # z: T1 only now
    err = assert_error(o.dev2.post(f"/workloads/jobs/{x['id']}/versions",
                                   json={"dependsOn": [{"jobKey": y["jobKey"]}]}), 422)
    assert err["details"]["fieldErrors"] == {"dependsOn": (
        f"would create a dependency cycle: {x['jobKey']} -> {y['jobKey']} -> (a job you cannot see) -> {x['jobKey']}")}


def test_unknown_clusters(api_url: str) -> None:
    o: Org = build_org(api_url)
    unknown = unknown_reference(o.dev1.post("/workloads/jobs", json=sql_job(unique_key(), [o.team1]) | {
        "clusterId": UNKNOWN_ID}), "clusterId", UNKNOWN_ID)
    own = make_job(o.dev1, sql_job(unique_key(), [o.team1]))
    for method, path in version_paths(own):
        r = o.dev1.request(method, path, json={"clusterId": UNKNOWN_ID})
        assert unknown_reference(r, "clusterId", UNKNOWN_ID) == unknown, path


def test_a_query_cannot_name_a_catalog_of_another_team(api_url: str) -> None:
    o = build_org(api_url)
    theirs = make_catalog(o.dev1, f"t1-{unique_key()}", [o.team1])
    other_org = make_catalog(o.outsider, f"x-{unique_key()}", [create_team(o.outsider, f"x-{unique_key()}")])

    def create(catalog_id: str) -> Any:
        return o.dev2.post("/workloads/queries", json={"name": f"q-{unique_key()}", "sql": "SELECT 1",
                                                       "teamIds": [o.team2], "catalogId": catalog_id})

    unknown = unknown_reference(create(UNKNOWN_ID), "catalogId", UNKNOWN_ID)
    for catalog_id in (theirs["id"], other_org["id"]):
        assert unknown_reference(create(catalog_id), "catalogId", catalog_id) == unknown
    mine = make_query(o.dev2, f"q-{unique_key()}", [o.team2])
    r = o.dev2.patch(f"/workloads/queries/{mine['id']}", json={"catalogId": theirs["id"]})
    assert unknown_reference(r, "catalogId", theirs["id"]) == unknown
    assert o.dev2.get(f"/workloads/queries/{mine['id']}").json()["item"]["catalogId"] is None
