"""Job definitions through HTTP: create, list, describe, update, delete, teams and visibility."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.data.helpers import make_query
from tests.jobs.helpers import build_org, make_job, python_job, sql_job, unique_key
from tests.support.actors import assert_error
from tests.support.world import add_to_team, create_member, create_service_account, create_team

JOB_FIELDS = {"id", "memberId", "jobKey", "version", "currentVersion", "draftVersion", "basedOnVersion", "status",
              "clusterId", "description", "config", "timeoutSeconds", "sourceConfig", "dependsOn", "cronExpression",
              "cronTimezone", "concurrencyPolicy", "maxConcurrentRuns", "missedSchedulePolicy", "createdAt",
              "createdBy", "updatedAt", "nextRunAt", "lastScheduledAt", "updatedBy"}


def test_job_lifecycle(api_url: str) -> None:
    o = build_org(api_url)
    key = unique_key("daily-sales-etl")
    body = python_job(key, [o.team1], description="Daily ETL pipeline for sales data", timeoutSeconds=3600,
                      sourceConfig={"url": "https://github.com/acme/data-pipelines.git", "provider": "github",
                                    "reference": {"type": "branch", "value": "main"},
                                    "snapshotCommit": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"},
                      cronExpression="0 2 * * *", cronTimezone="America/New_York")
    body["config"]["lakesail"] = {"executionMode": "standalone", "maxRetries": 3, "spark.sql.shuffle.partitions": "8"}
    job = make_job(o.dev1, body)
    assert set(job) == JOB_FIELDS
    assert (job["jobKey"], job["status"], job["clusterId"]) == (key, "active", "LOCAL")
    assert (job["version"], job["currentVersion"], job["draftVersion"], job["basedOnVersion"]) == (0, 1, None, None)
    assert job["memberId"] == job["createdBy"] == o.dev1.member_id
    assert job["config"]["python"]["parameters"] == [["--name=job", "one", "two"]]
    assert job["config"]["python"]["namedParameters"] == {"date": "2026-04-06"}
    assert job["config"]["lakesail"]["maxRetries"] == 3
    assert job["config"]["lakesail"]["spark.sql.shuffle.partitions"] == "8"
    assert job["sourceConfig"] == {"url": "https://github.com/acme/data-pipelines.git", "provider": "github",
                                   "reference": {"type": "branch", "value": "main"}, "snapshotCommit": None}
    assert (job["concurrencyPolicy"], job["maxConcurrentRuns"], job["missedSchedulePolicy"]) == ("skip", 1, "latest")
    assert job["dependsOn"] == [] and job["lastScheduledAt"] is None
    next_run = datetime.fromisoformat(job["nextRunAt"].replace("Z", "+00:00"))
    assert next_run > datetime.now(UTC) and next_run.minute == 0 and next_run.hour in (6, 7)  # 02:00 New York

    d = o.viewer1.get(f"/workloads/jobs/{job['id']}")
    assert d.status_code == 200, d.text
    d = d.json()
    assert d["item"] == {"jobId": job["id"], "latestJobRunId": None, "teamIds": [o.team1]}
    assert d["included"]["jobs"] == [job]
    assert d["included"]["jobRuns"] == []
    assert [t["id"] for t in d["included"]["teams"]] == [o.team1]

    listed = o.dev1.get("/workloads/jobs").json()
    assert listed["total"] == 1 and listed["items"] == [d["item"]] and listed["included"]["jobs"] == [job]
    assert o.dev1.get("/me/jobs").json()["items"] == [d["item"]]

    # metadata update with the optimistic lock
    u = o.dev1.patch(f"/workloads/jobs/{job['id']}", json={"description": "new words", "version": 0})
    assert u.status_code == 200, u.text
    u = u.json()
    assert (u["description"], u["version"], u["currentVersion"]) == ("new words", 1, 1)
    err = assert_error(o.dev1.patch(f"/workloads/jobs/{job['id']}", json={"status": "paused", "version": 0}), 409,
                       "version_conflict")
    assert "version 1" in err["message"]
    paused = o.dev1.patch(f"/workloads/jobs/{job['id']}", json={"status": "paused", "version": 1}).json()
    assert (paused["status"], paused["nextRunAt"], paused["version"]) == ("paused", None, 2)
    renamed = o.dev1.patch(f"/workloads/jobs/{job['id']}", json={"jobKey": key + "-2"}).json()  # no version: no check
    assert renamed["jobKey"] == key + "-2" and renamed["version"] == 3
    resumed = o.dev1.patch(f"/workloads/jobs/{job['id']}", json={"status": "active"}).json()
    assert resumed["nextRunAt"] == job["nextRunAt"]
    for bad, field in (({"status": None}, "status"), ({"jobKey": None}, "jobKey"), ({"status": "gone"}, "status"),
                       ({"version": -1}, "version"), ({"clusterId": "LOCAL"}, "clusterId")):
        err = assert_error(o.dev1.patch(f"/workloads/jobs/{job['id']}", json=bad), 422)
        assert field in err["details"]["fieldErrors"], (bad, err)

    assert o.dev1.delete(f"/workloads/jobs/{job['id']}").status_code == 200
    assert_error(o.dev1.get(f"/workloads/jobs/{job['id']}"), 404)
    assert_error(o.dev1.delete(f"/workloads/jobs/{job['id']}"), 404)
    actions = [e["action"] for e in o.owner.get("/org/audit-events", params={"resourceId": job["id"]}).json()["items"]]
    assert {"job.create", "job.update", "job.delete"} <= set(actions)


def test_create_requires_cluster_teams_and_unique_key(api_url: str) -> None:
    o = build_org(api_url)
    key = unique_key()
    make_job(o.dev1, sql_job(key, [o.team1]))
    assert_error(o.dev1.post("/workloads/jobs", json=sql_job(key, [o.team1])), 409, "job_key_taken")
    # the same key in another organization is fine
    make_job(o.outsider, sql_job(key, [create_team(o.outsider, "theirs")]))
    err = assert_error(o.dev1.post("/workloads/jobs", json=sql_job(unique_key(), [o.team1], clusterId="NOSUCHCLUSTER")),
                       422)
    assert "clusterId" in err["details"]["fieldErrors"]
    for teams in ([], ["ZZZZZZZZZZZZZZZZZZZZ"], [o.team1, "ZZZZZZZZZZZZZZZZZZZZ"]):
        err = assert_error(o.dev1.post("/workloads/jobs", json=sql_job(unique_key(), teams)), 422)
        assert "teamIds" in err["details"]["fieldErrors"]
    # a team the caller is not in is unknown to them; one they only view cannot get jobs from them
    assert_error(o.dev1.post("/workloads/jobs", json=sql_job(unique_key(), [o.team2])), 422)
    assert_error(o.viewer1.post("/workloads/jobs", json=sql_job(unique_key(), [o.team1])), 403)
    assert_error(o.loner.post("/workloads/jobs", json=sql_job(unique_key(), [o.team1])), 422)
    # organization admins may create jobs for any team
    assert o.admin.post("/workloads/jobs", json=sql_job(unique_key(), [o.team1, o.team2])).status_code == 201
    # saved queries: one of this organization
    q = make_query(o.dev1, f"q-{unique_key()}", [o.team1])
    by_query = make_job(o.dev1, sql_job(unique_key(), [o.team1], config={"sql": {"queryId": q["id"]}}))
    assert by_query["config"]["sql"] == {"source": None, "queryId": q["id"]}
    theirs = make_query(o.outsider, "their-query", [create_team(o.outsider, "their team 2")])
    for query_id in (theirs["id"], "ZZZZZZZZZZZZZZZZZZZZ"):
        err = assert_error(o.dev1.post("/workloads/jobs", json=sql_job(
            unique_key(), [o.team1], config={"sql": {"queryId": query_id}})), 422)
        assert "config.sql.queryId" in err["details"]["fieldErrors"]


def test_bad_input_names_the_field(api_url: str) -> None:
    o = build_org(api_url)
    dep = make_job(o.dev1, sql_job(unique_key(), [o.team1]))
    base = sql_job(unique_key(), [o.team1])
    py = python_job(unique_key(), [o.team1])
    cases = [
        (base | {"cronExpression": "not a cron"}, "cronExpression"),
        (base | {"cronExpression": "0 2 * * * *"}, "cronExpression"),
        (base | {"cronExpression": "0 0 30 2 *"}, "cronExpression"),
        (base | {"cronExpression": "61 * * * *"}, "cronExpression"),
        (base | {"cronExpression": "0 2 * * *", "cronTimezone": "Mars/Olympus_Mons"}, "cronTimezone"),
        (base | {"cronTimezone": "../../etc/passwd"}, "cronTimezone"),
        (base | {"dependsOn": [{"jobKey": "no-such-job"}]}, "dependsOn"),
        (base | {"dependsOn": [{"jobKey": base["jobKey"]}]}, "dependsOn"),
        (base | {"dependsOn": ["just-a-key"]}, "dependsOn.0"),
        (base | {"config": {}}, "config"),
        (base | {"config": {"sql": {"source": "SELECT 1"}, "python": {"source": "a.py"}}}, "config"),
        (base | {"config": {"sql": {}}}, "config.sql"),
        (base | {"config": {"sql": {"source": "SELECT 1", "queryId": dep["id"]}}}, "config.sql"),
        (base | {"config": {"sql": {"source": ""}}}, "config.sql.source"),
        (base | {"config": {"sql": {"source": "SELECT 1", "extra": 1}}}, "config.sql.extra"),
        (base | {"config": {"python": {"packageName": "pkg"}}}, "config.python"),
        (base | {"config": {"python": {"source": "a.py", "packageName": "pkg", "entryPoint": "main"}}},
         "config.python"),
        (py | {"config": {"python": {"source": "a.py", "parameters": ["--flat"]}}}, "config.python.parameters.0"),
        (py | {"config": {"python": {"source": "a.py", "parameters": [[1, 2]]}}}, "config.python.parameters.0.0"),
        (py | {"config": {"python": {"source": "a.py", "namedParameters": {"n": 1}}}},
         "config.python.namedParameters.n"),
        (py | {"config": {"python": {"source": "a.py", "namedParameters": ["a"]}}}, "config.python.namedParameters"),
        (base | {"config": {"sql": {"source": "SELECT 1"}, "lakesail": {"maxRetries": 11}}},
         "config.lakesail.maxRetries"),
        (base | {"config": {"sql": {"source": "SELECT 1"}, "lakesail": {"executionMode": "serverless"}}},
         "config.lakesail.executionMode"),
        (base | {"config": {"sql": {"source": "SELECT 1"}, "lakesail": {"custom": 5}}}, "config.lakesail.custom"),
        (base | {"config": {"sql": {"source": "SELECT 1"}, "compute": {"worker": {"maxNodes": 0}}}},
         "config.compute.worker.maxNodes"),
        (base | {"concurrencyPolicy": "forbid"}, "concurrencyPolicy"),
        (base | {"maxConcurrentRuns": 0}, "maxConcurrentRuns"),
        (base | {"missedSchedulePolicy": "first"}, "missedSchedulePolicy"),
        (base | {"timeoutSeconds": 0}, "timeoutSeconds"),
        (base | {"status": "deleted"}, "status"),
        (base | {"jobKey": "has space"}, "jobKey"),
        (base | {"jobKey": ""}, "jobKey"),
        (base | {"sourceConfig": {"url": "https://x/y.git", "reference": {"type": "sha", "value": "a"}}},
         "sourceConfig.reference.type"),
        (base | {"sourceConfig": {"provider": "github"}}, "sourceConfig.url"),
        ({k: v for k, v in base.items() if k != "config"}, "config"),
        ({k: v for k, v in base.items() if k != "clusterId"}, "clusterId"),
        (base | {"unknown": 1}, "unknown"),
    ]
    for body, field in cases:
        err = assert_error(o.dev1.post("/workloads/jobs", json=body), 422)
        assert field in err["details"]["fieldErrors"], (field, err)
    assert_error(o.dev1.post("/workloads/jobs", content=b"{not json", headers={"content-type": "application/json"}),
                 400, "malformed_json")
    assert_error(o.dev1.get("/workloads/jobs/lower-case"), 400)
    assert_error(o.dev1.get("/workloads/jobs/ZZZZZZZZZZZZZZZZZZZZ"), 404)
    # nothing half-written: only the dependency exists
    assert [i["jobId"] for i in o.dev1.get("/workloads/jobs").json()["items"]] == [dep["id"]]
    # valid variants of the same fields
    ok = make_job(o.dev1, base | {"cronExpression": "@daily", "dependsOn": [{"jobKey": dep["jobKey"]}],
                                  "concurrencyPolicy": "replace", "maxConcurrentRuns": 3,
                                  "missedSchedulePolicy": "all", "status": "paused"})
    assert ok["dependsOn"] == [{"jobKey": dep["jobKey"]}] and ok["cronTimezone"] is None
    assert ok["status"] == "paused" and ok["nextRunAt"] is None
    wheel = make_job(o.dev1, python_job(unique_key(), [o.team1], config={
        "python": {"packageName": "acme_etl", "entryPoint": "main"}}))
    assert wheel["config"]["python"]["packageName"] == "acme_etl"


def test_dependency_cycles_are_refused(api_url: str) -> None:
    o = build_org(api_url)
    a = make_job(o.dev1, sql_job(unique_key("a"), [o.team1]))
    b = make_job(o.dev1, sql_job(unique_key("b"), [o.team1], dependsOn=[{"jobKey": a["jobKey"]}]))
    c = make_job(o.dev1, sql_job(unique_key("c"), [o.team1], dependsOn=[{"jobKey": b["jobKey"]}]))
    # a -> c would close a -> c -> b -> a
    err = assert_error(o.dev1.post(f"/workloads/jobs/{a['id']}/versions",
                                   json={"dependsOn": [{"jobKey": c["jobKey"]}]}), 422)
    assert "dependsOn" in err["details"]["fieldErrors"] and "cycle" in err["message"]
    err = assert_error(o.dev1.post(f"/workloads/jobs/{a['id']}/draft", json={"dependsOn": [{"jobKey": b["jobKey"]}]}),
                       422)
    assert "dependsOn" in err["details"]["fieldErrors"]
    assert o.dev1.get(f"/workloads/jobs/{a['id']}").json()["included"]["jobs"][0]["currentVersion"] == 1
    # a diamond is not a cycle
    d = make_job(o.dev1, sql_job(unique_key("d"), [o.team1],
                                 dependsOn=[{"jobKey": b["jobKey"]}, {"jobKey": c["jobKey"]}]))
    assert len(d["dependsOn"]) == 2
    # renaming a key that other jobs depend on would break them
    assert_error(o.dev1.patch(f"/workloads/jobs/{a['id']}", json={"jobKey": unique_key("renamed")}), 409,
                 "job_key_in_use")


def test_teams_and_visibility(api_url: str) -> None:
    o = build_org(api_url)
    job = make_job(o.dev1, sql_job(unique_key(), [o.team1]))
    path = f"/workloads/jobs/{job['id']}"
    for actor in (o.owner, o.admin, o.dev1, o.viewer1):
        assert actor.get(path).status_code == 200
    for actor in (o.dev2, o.loner, o.outsider, o.outsider.as_org(o.owner.org_id or "")):
        for method, sub, body in (("GET", "", None), ("PATCH", "", {"description": "x"}), ("DELETE", "", None),
                                  ("GET", "/teams", None), ("GET", "/versions", None), ("GET", "/versions/1", None),
                                  ("POST", "/draft", {}), ("GET", "/draft", None),
                                  ("POST", "/activate-version", {"version": 1})):
            r = actor.request(method, path + sub, **({"json": body} if body is not None else {}))
            err = assert_error(r, 404)
            assert job["jobKey"] not in r.text, err
    for method, sub, body in (("PATCH", "", {"description": "x"}), ("DELETE", "", None), ("POST", "/draft", {}),
                              ("POST", "/versions", {}), ("POST", "/activate-version", {"version": 1}),
                              ("POST", "/teams", {"teamIds": [o.team1]}), ("DELETE", f"/teams/{o.team1}", None),
                              ("POST", "/draft/publish", None)):
        r = o.viewer1.request(method, path + sub, **({"json": body} if body is not None else {}))
        assert_error(r, 403)
    assert o.viewer1.get(f"{path}/versions").json()["total"] == 1

    links = o.dev1.post(f"{path}/teams", json={"teamIds": [o.team1, o.team2]})
    assert_error(links, 422)  # dev1 cannot see team 2
    links = o.owner.post(f"{path}/teams", json={"teamIds": [o.team2]})
    assert links.status_code == 200, links.text
    assert [(x["jobId"], x["teamId"]) for x in links.json()["items"]] == [(job["id"], o.team2)]
    assert set(links.json()["items"][0]) == {"jobId", "teamId", "createdAt", "createdBy", "updatedAt", "updatedBy"}
    again = o.owner.post(f"{path}/teams", json={"teamIds": [o.team2]}).json()
    assert again == links.json()
    teams = o.owner.get(f"{path}/teams").json()
    assert teams["total"] == 2 and {i["team"]["id"] for i in teams["items"]} == {o.team1, o.team2}
    assert {i["memberCount"] for i in teams["items"]} == {3, 2}  # the owner created (and is in) both
    assert [i["team"]["id"] for i in o.dev1.get(f"{path}/teams").json()["items"]] == [o.team1]
    mine = o.dev1.get(path).json()
    assert set(mine["item"]["teamIds"]) == {o.team1, o.team2}
    assert [t["id"] for t in mine["included"]["teams"]] == [o.team1]
    assert o.dev2.get(path).status_code == 200
    assert [i["jobId"] for i in o.dev2.get(f"/workloads/teams/{o.team2}/jobs").json()["items"]] == [job["id"]]
    assert o.dev2.delete(f"{path}/teams/{o.team1}").status_code == 200
    assert_error(o.dev1.get(path), 404)
    assert_error(o.dev2.delete(f"{path}/teams/{o.team2}"), 409, "last_team")
    assert_error(o.dev2.delete(f"{path}/teams/{o.team1}"), 404)
    assert_error(o.dev2.delete(f"{path}/teams/ZZZZZZZZZZZZZZZZZZZZ"), 404)

    # service accounts: view or manage organization-wide through a policy
    _, reader = create_service_account(o.owner, f"job-reader-{unique_key()}", ["CanViewJobs"])
    assert reader.get(path).status_code == 200
    assert_error(reader.patch(path, json={"description": "x"}), 403)
    _, writer = create_service_account(o.owner, f"job-writer-{unique_key()}", ["CanManageJobs"])
    created = writer.post("/workloads/jobs", json=sql_job(unique_key(), [o.team2]))
    assert created.status_code == 201, created.text
    assert created.json()["memberId"] == created.json()["createdBy"]
    assert created.json()["id"] in {i["jobId"] for i in o.dev2.get("/me/jobs").json()["items"]}
    anon = o.owner.__class__(o.owner.base_url)
    assert_error(anon.get("/me/jobs"), 401)
    assert_error(anon.get(path), 401)
    # a viewer added as developer later may manage
    add_to_team(o.owner, o.team2, o.viewer1)
    assert o.viewer1.patch(path, json={"description": "now I can"}).status_code == 200
    actions = [e["action"] for e in o.owner.get("/org/audit-events", params={"resourceId": job["id"]}).json()["items"]]
    assert {"job.add_teams", "job.remove_team"} <= set(actions)


def test_listings(api_url: str) -> None:
    o = build_org(api_url)
    keys = {n: f"{n}-{unique_key()}" for n in ("b", "a", "c")}
    ids = {n: make_job(o.dev1, sql_job(k, [o.team1]))["id"] for n, k in keys.items()}
    other = make_job(o.dev2, sql_job(unique_key("z"), [o.team2]))
    # default: createdAt ascending
    body = o.dev1.get("/me/jobs").json()
    assert body["total"] == 3 and [i["jobId"] for i in body["items"]] == [ids["b"], ids["a"], ids["c"]]
    assert set(body["included"]) == {"jobs", "jobRuns", "teams"}
    desc = o.dev1.get("/me/jobs", params={"sortDirection": "desc"}).json()
    assert [i["jobId"] for i in desc["items"]] == [ids["c"], ids["a"], ids["b"]]
    by_key = o.dev1.get("/me/jobs", params={"sortBy": "jobKey", "sortDirection": "desc"}).json()
    assert [i["jobId"] for i in by_key["items"]] == [ids["c"], ids["b"], ids["a"]]
    page = o.dev1.get("/me/jobs", params={"sortBy": "jobKey", "page": 2, "limit": 2}).json()
    assert page["total"] == 3 and [i["jobId"] for i in page["items"]] == [ids["c"]]
    assert [j["id"] for j in page["included"]["jobs"]] == [ids["c"]]
    assert_error(o.dev1.get("/me/jobs", params={"sortBy": "status"}), 400, "invalid_sort_field")
    assert_error(o.dev1.get("/me/jobs", params={"page": 0}), 400)
    assert_error(o.dev1.get("/me/jobs", params={"limit": 101}), 400)
    assert o.owner.get("/me/jobs").json()["total"] == 4
    assert o.loner.get("/me/jobs").json() == {"total": 0, "items": [],
                                              "included": {"jobs": [], "jobRuns": [], "teams": []}}
    assert o.outsider.get("/workloads/jobs").json()["total"] == 0
    # /workloads/jobs: by key, limited
    limited = o.owner.get("/workloads/jobs", params={"limit": 2}).json()
    assert limited["total"] == 4 and [i["jobId"] for i in limited["items"]] == [ids["a"], ids["b"]]
    # ... and a page at a time, sorted like listMyJobs (the other job is dev2's, visible to the owner)
    second = o.owner.get("/workloads/jobs", params={"limit": 2, "page": 2}).json()
    assert second["total"] == 4 and [i["jobId"] for i in second["items"]] == [ids["c"], other["id"]]
    newest = o.owner.get("/workloads/jobs", params={"sortBy": "createdAt", "sortDirection": "desc", "limit": 1}).json()
    assert [i["jobId"] for i in newest["items"]] == [other["id"]]
    past_the_end = o.owner.get("/workloads/jobs", params={"page": 3, "limit": 2}).json()
    assert past_the_end["total"] == 4 and past_the_end["items"] == []
    assert_error(o.owner.get("/workloads/jobs", params={"sortBy": "status"}), 400, "invalid_sort_field")
    assert_error(o.owner.get("/workloads/jobs", params={"page": 0}), 400)
    # team jobs
    team = o.viewer1.get(f"/workloads/teams/{o.team1}/jobs").json()
    assert {i["jobId"] for i in team["items"]} == set(ids.values())
    assert_error(o.dev2.get(f"/workloads/teams/{o.team1}/jobs"), 404)
    assert_error(o.outsider.get(f"/workloads/teams/{o.team1}/jobs"), 404)
    assert_error(o.dev1.get("/workloads/teams/bad-id/jobs"), 400)
    # cluster jobs: the current version's cluster
    on_local = o.owner.get("/workloads/clusters/LOCAL/jobs").json()
    assert on_local["total"] == 4 and other["id"] in {i["jobId"] for i in on_local["items"]}
    assert {i["jobId"] for i in o.dev2.get("/workloads/clusters/LOCAL/jobs").json()["items"]} == {other["id"]}
    assert_error(o.owner.get("/workloads/clusters/NOSUCHCLUSTER/jobs"), 404)
    # a new member sees nothing until they join team 1 (a viewer there sees its jobs)
    newcomer = create_member(o.owner)
    assert newcomer.get("/me/jobs").json()["total"] == 0
    add_to_team(o.owner, o.team1, newcomer, "TEAMVIEWER")
    assert newcomer.get("/me/jobs").json()["total"] == 3
