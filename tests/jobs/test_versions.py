"""Job versions and drafts through HTTP: copy-with-overrides, partial updates, publish, discard,
activate, and every conflict the contract names."""

from __future__ import annotations

from tests.jobs.helpers import build_org, make_job, sql_job, unique_key
from tests.support.actors import assert_error

VERSION_FIELDS = {"jobId", "version", "basedOnVersion", "status", "jobType", "clusterId", "memberId", "description",
                  "config", "timeoutSeconds", "sourceConfig", "dependsOn", "cronExpression", "cronTimezone",
                  "concurrencyPolicy", "maxConcurrentRuns", "missedSchedulePolicy", "createdAt", "createdBy",
                  "updatedAt", "updatedBy"}


def test_drafts(api_url: str) -> None:
    o = build_org(api_url)
    job = make_job(o.dev1, sql_job(unique_key(), [o.team1], description="v1", timeoutSeconds=600,
                                   cronExpression="0 3 * * *", cronTimezone="Europe/Berlin"))
    path = f"/workloads/jobs/{job['id']}"
    assert_error(o.dev1.get(f"{path}/draft"), 404)
    assert_error(o.dev1.patch(f"{path}/draft", json={"description": "x"}), 404)
    assert_error(o.dev1.delete(f"{path}/draft"), 404)
    assert_error(o.dev1.post(f"{path}/draft/publish"), 400, "no_draft")

    r = o.dev1.post(f"{path}/draft", json={"description": "v2", "maxConcurrentRuns": 2})
    assert r.status_code == 201, r.text
    draft = r.json()
    assert set(draft) == VERSION_FIELDS
    assert (draft["jobId"], draft["version"], draft["basedOnVersion"], draft["status"], draft["jobType"]) == (
        job["id"], 2, 1, "draft", "sql")
    # copied from the current version, overrides applied
    assert (draft["description"], draft["maxConcurrentRuns"], draft["timeoutSeconds"]) == ("v2", 2, 600)
    assert (draft["cronExpression"], draft["cronTimezone"]) == ("0 3 * * *", "Europe/Berlin")
    assert draft["config"] == job["config"]
    assert o.viewer1.get(f"{path}/draft").json() == draft
    assert_error(o.dev1.post(f"{path}/draft", json={}), 409, "draft_exists")
    described = o.dev1.get(path).json()["included"]["jobs"][0]
    assert (described["draftVersion"], described["currentVersion"], described["description"]) == (2, 1, "v1")

    # partial update: only the given fields change; null clears optional ones
    u = o.dev1.patch(f"{path}/draft", json={"config": {"python": {"source": "etl.py"}}, "timeoutSeconds": None})
    assert u.status_code == 200, u.text
    u = u.json()
    assert (u["jobType"], u["description"], u["maxConcurrentRuns"], u["timeoutSeconds"]) == ("python", "v2", 2, None)
    assert u["config"]["python"]["source"] == "etl.py" and u["config"]["sql"] is None
    bad_updates = [
        ({"config": None}, "config"), ({"clusterId": None}, "clusterId"),
        ({"cronExpression": "every day"}, "cronExpression"), ({"cronTimezone": "Nowhere"}, "cronTimezone"),
        ({"maxConcurrentRuns": 0}, "maxConcurrentRuns"), ({"clusterId": "ELSEWHERE"}, "clusterId"),
        ({"jobKey": "x"}, "jobKey"),
        ({"config": {"python": {"source": "a.py", "parameters": "x"}}}, "config.python.parameters"),
    ]
    for bad, field in bad_updates:
        err = assert_error(o.dev1.patch(f"{path}/draft", json=bad), 422)
        assert field in err["details"]["fieldErrors"], (bad, err)
    assert o.dev1.get(f"{path}/draft").json() == u
    assert_error(o.viewer1.patch(f"{path}/draft", json={"description": "v"}), 403)

    # versions lists published ones only, and activate refuses while a draft exists
    versions = o.dev1.get(f"{path}/versions").json()
    assert versions["total"] == 1 and [v["version"] for v in versions["items"]] == [1]
    assert_error(o.dev1.post(f"{path}/versions", json={}), 409, "draft_exists")
    err = assert_error(o.dev1.post(f"{path}/activate-version", json={"version": 1}), 409, "draft_exists")
    assert "version 2" in err["message"]
    assert_error(o.dev1.get(f"{path}/versions/2"), 404)  # a draft is not a published version

    # discard, then a new draft reuses the number; publish makes it current
    assert o.dev1.delete(f"{path}/draft").status_code == 200
    assert_error(o.dev1.get(f"{path}/draft"), 404)
    assert o.dev1.get(path).json()["included"]["jobs"][0]["draftVersion"] is None
    assert o.dev1.post(f"{path}/draft", json={"cronExpression": None}).json()["version"] == 2
    published = o.dev1.post(f"{path}/draft/publish")
    assert published.status_code == 200, published.text
    published = published.json()
    assert (published["currentVersion"], published["draftVersion"], published["basedOnVersion"]) == (2, None, 1)
    assert published["cronExpression"] is None and published["nextRunAt"] is None
    assert published["version"] == job["version"] + 1
    assert_error(o.dev1.post(f"{path}/draft/publish"), 400, "no_draft")
    versions = o.dev1.get(f"{path}/versions").json()
    assert [(v["version"], v["status"]) for v in versions["items"]] == [(1, "published"), (2, "published")]
    actions = [e["action"] for e in o.owner.get("/org/audit-events", params={"resourceId": job["id"]}).json()["items"]]
    assert {"job.draft.create", "job.draft.update", "job.draft.discard", "job.draft.publish"} <= set(actions)


def test_versions_and_activation(api_url: str) -> None:
    o = build_org(api_url)
    job = make_job(o.dev1, sql_job(unique_key(), [o.team1], cronExpression="0 * * * *"))
    path = f"/workloads/jobs/{job['id']}"
    assert job["nextRunAt"] is not None
    r = o.dev1.post(f"{path}/versions", json={"description": "second", "cronExpression": None,
                                              "concurrencyPolicy": "queue"})
    assert r.status_code == 201, r.text
    v2 = r.json()
    assert (v2["version"], v2["basedOnVersion"], v2["status"]) == (2, 1, "published")
    assert (v2["description"], v2["cronExpression"], v2["concurrencyPolicy"]) == ("second", None, "queue")
    current = o.dev1.get(path).json()["included"]["jobs"][0]
    assert (current["currentVersion"], current["description"], current["nextRunAt"]) == (2, "second", None)

    # describe a version: the job as that version configures it
    d1 = o.viewer1.get(f"{path}/versions/1")
    assert d1.status_code == 200, d1.text
    d1 = d1.json()
    assert d1["item"]["jobId"] == job["id"]
    shown = d1["included"]["jobs"][0]
    assert (shown["cronExpression"], shown["description"], shown["currentVersion"]) == ("0 * * * *", None, 2)
    assert_error(o.dev1.get(f"{path}/versions/3"), 404)
    assert_error(o.dev1.get(f"{path}/versions/0"), 400)
    assert_error(o.dev1.get(f"{path}/versions/abc"), 400)

    activated = o.dev1.post(f"{path}/activate-version", json={"version": 1})
    assert activated.status_code == 200, activated.text
    activated = activated.json()
    assert (activated["currentVersion"], activated["cronExpression"]) == (1, "0 * * * *")
    assert activated["nextRunAt"] is not None
    assert_error(o.dev1.post(f"{path}/activate-version", json={"version": 7}), 404)
    assert_error(o.dev1.post(f"{path}/activate-version", json={"version": 0}), 422)
    assert_error(o.dev1.post(f"{path}/activate-version", json={}), 422)
    # a new version is based on the current one (now 1) and gets the next number
    v3 = o.dev1.post(f"{path}/versions", json={}).json()
    assert (v3["version"], v3["basedOnVersion"], v3["description"]) == (3, 1, None)
    # paging
    page = o.dev1.get(f"{path}/versions", params={"limit": 2, "page": 2}).json()
    assert page["total"] == 3 and [v["version"] for v in page["items"]] == [3]
    assert_error(o.dev1.get(f"{path}/versions", params={"page": 0}), 400)
    actions = [e["action"] for e in o.owner.get("/org/audit-events", params={"resourceId": job["id"]}).json()["items"]]
    assert {"job.version.create", "job.version.activate"} <= set(actions)


def test_update_description_applies_to_the_current_version(api_url: str) -> None:
    o = build_org(api_url)
    job = make_job(o.dev1, sql_job(unique_key(), [o.team1], description="first"))
    path = f"/workloads/jobs/{job['id']}"
    o.dev1.patch(path, json={"description": None})
    assert o.dev1.get(f"{path}/versions").json()["items"][0]["description"] is None
    assert o.dev1.get(path).json()["included"]["jobs"][0]["description"] is None
