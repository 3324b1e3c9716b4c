"""The job run API: shapes, states and their conflicts, lists, idempotency keys, audit events, and who
may see or act on runs. Runs here are mostly held (`pending`) or cancelled, so nothing executes
unless a test wants it to."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from sailplane.kit.views import wire_keys
from sailplane.workloads.jobs.schemas import JobRunView, RunResults
from tests.data.helpers import build_org
from tests.runs.live import create_run, describe, python_job, sql_job, wait_for
from tests.support.actors import Actor, assert_error

RUN_FIELDS = ["id", "jobId", "jobVersion", "status", "statusMessage", "resourceCleanupMode", "dispatchedAt",
              "finishedAt", "runnerStartedAt", "runnerCompletedAt", "runnerExecutionTimeUs", "trigger", "createdAt",
              "createdBy", "updatedAt", "results", "updatedBy", "cleanedAt"]


@pytest.fixture(scope="module")
def org(runs_api: str) -> Any:
    return build_org(runs_api)


@pytest.fixture(scope="module")
def job(org: Any) -> dict[str, Any]:
    return python_job(org.dev1, org.team1, "print('hello')\n")


def runs_path(job_id: str, run_id: str = "", action: str = "") -> str:
    path = f"/workloads/jobs/{job_id}/runs"
    return f"{path}/{run_id}" + (f"/{action}" if action else "") if run_id else path


def test_run_shape_and_hold(org: Any, job: dict[str, Any]) -> None:
    run = create_run(org.dev1, job["id"], hold=True)
    assert list(run) == RUN_FIELDS
    assert run["status"] == "pending" and run["jobVersion"] == 1 and run["trigger"] == "manual"
    assert run["results"] == {"outputPath": None} and run["createdBy"] == org.dev1.member_id
    assert all(run[f] is None for f in ("dispatchedAt", "finishedAt", "runnerStartedAt", "cleanedAt"))
    assert describe(org.dev1, job["id"], run["id"]) == run
    described = org.dev1.get(f"/workloads/jobs/{job['id']}").json()
    assert described["item"]["latestJobRunId"] == run["id"]
    assert described["included"]["jobs"][0]["updatedAt"] == job["updatedAt"]  # a run is not a job change
    # Released, it runs.
    r = org.dev1.post(runs_path(job["id"], run["id"], "ready"))
    assert r.status_code == 200 and r.json()["status"] in ("ready", "dispatched", "waiting_for_sail", "running")
    done = wait_for(org.dev1, job["id"], run["id"], "succeeded")
    assert done["updatedBy"] == org.dev1.member_id
    err = assert_error(org.dev1.post(runs_path(job["id"], run["id"], "ready")), 409, "invalid_run_state")
    assert "succeeded" in err["message"]


def test_empty_body_and_no_body(org: Any, job: dict[str, Any]) -> None:
    r = org.dev1.post(runs_path(job["id"]))  # no body at all
    assert r.status_code == 201 and r.json()["status"] == "ready", r.text
    r = org.dev1.post(runs_path(job["id"]), json={})
    assert r.status_code == 201 and r.json()["status"] == "ready", r.text


@pytest.mark.parametrize(("body", "field"), [
    ({"parameters": "a b"}, "parameters"),
    ({"parameters": ["a"]}, "parameters.0"),
    ({"parameters": [[1, 2]]}, "parameters.0.0"),
    ({"namedParameters": {"a": 1}}, "namedParameters.a"),
    ({"namedParameters": ["a"]}, "namedParameters"),
    ({"namedParameters": {"bad name": "x"}}, "namedParameters.bad name.[key]"),
    ({"hold": "yes"}, "hold"),
    ({"resourceCleanupMode": "sometimes"}, "resourceCleanupMode"),
    ({"parameter": [["a"]]}, "parameter"),
])
def test_wrong_shapes_are_422_naming_the_field(org: Any, job: dict[str, Any], body: dict[str, Any],
                                              field: str) -> None:
    err = assert_error(org.dev1.post(runs_path(job["id"]), json=body), 422, "validation_failed")
    assert field in err["details"]["fieldErrors"], err


def test_sql_jobs_take_named_parameters_only(org: Any) -> None:
    job = sql_job(org.dev1, org.team1, "SELECT 1")
    err = assert_error(org.dev1.post(runs_path(job["id"]), json={"parameters": [["x"]], "hold": True}), 422)
    assert set(err["details"]["fieldErrors"]) == {"parameters"}
    assert create_run(org.dev1, job["id"], namedParameters={"a": "1"}, hold=True)["status"] == "pending"


def test_state_conflicts_name_the_state(org: Any, job: dict[str, Any]) -> None:
    run = create_run(org.dev1, job["id"], hold=True)
    for action, method in (("retry", "post"), ("", "delete")):
        r = getattr(org.dev1, method)(runs_path(job["id"], run["id"], action))
        err = assert_error(r, 409, "invalid_run_state")
        assert "pending" in err["message"], err
    cancelled = org.dev1.post(runs_path(job["id"], run["id"], "cancel"))
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["finishedAt"] and body["cleanedAt"]  # nothing ever ran
    assert body["statusMessage"] == "cancelled by a user"
    for action in ("ready", "cancel"):
        err = assert_error(org.dev1.post(runs_path(job["id"], run["id"], action)), 409, "invalid_run_state")
        assert "cancelled" in err["message"]

    # Retry: same ID, version and parameters; attempt timestamps cleared; hold → pending.
    retried = org.dev1.post(runs_path(job["id"], run["id"], "retry"), json={"hold": True})
    assert retried.status_code == 200, retried.text
    again = retried.json()
    assert (again["id"], again["jobVersion"], again["createdAt"]) == (run["id"], run["jobVersion"], run["createdAt"])
    assert again["status"] == "pending" and again["trigger"] == "retry" and again["statusMessage"] is None
    assert all(again[f] is None for f in ("dispatchedAt", "finishedAt", "runnerStartedAt", "runnerCompletedAt",
                                           "runnerExecutionTimeUs", "cleanedAt"))
    assert_error(org.dev1.post(runs_path(job["id"], run["id"], "retry"), json={"hold": "no"}), 422)
    assert org.dev1.post(runs_path(job["id"], run["id"], "cancel")).status_code == 200
    retried = org.dev1.post(runs_path(job["id"], run["id"], "retry"))  # no body: ready, so it runs
    assert retried.status_code == 200
    wait_for(org.dev1, job["id"], run["id"], "succeeded")

    # Delete: finished runs only; then it is gone.
    assert org.dev1.delete(runs_path(job["id"], run["id"])).json() == {
        "message": "The requested operation was done successfully."}
    assert_error(org.dev1.get(runs_path(job["id"], run["id"])), 404, "not_found")
    assert_error(org.dev1.delete(runs_path(job["id"], run["id"])), 404)
    assert_error(org.dev1.get(runs_path(job["id"], run["id"], "logs")), 404)


def test_retry_keeps_the_parameters(org: Any, tmp_path: Any) -> None:
    code = "import sys\nprint('ARGS', sys.argv[1:], flush=True)\nsys.exit(1)\n"
    job = python_job(org.dev1, org.team1, code)
    run = create_run(org.dev1, job["id"], parameters=[["--a=1", "b"]], namedParameters={"n": "v"})
    wait_for(org.dev1, job["id"], run["id"], "failed")
    assert org.dev1.post(runs_path(job["id"], run["id"], "retry")).status_code == 200
    wait_for(org.dev1, job["id"], run["id"], "failed")
    text = org.dev1.get(runs_path(job["id"], run["id"], "logs")).text
    assert text.count("ARGS ['--n=v', '--a=1', 'b']") == 2, text


def test_lists_are_newest_first_with_markers(org: Any) -> None:
    job = python_job(org.dev1, org.team1, "print(1)\n")
    ids = [create_run(org.dev1, job["id"], hold=True)["id"] for _ in range(5)]
    first = org.dev1.get(runs_path(job["id"]), params={"limit": 2}).json()
    assert set(first) == {"total", "items", "included", "marker"}
    assert first["total"] == 5
    assert [i["jobRunId"] for i in first["items"]] == ids[::-1][:2]
    assert all(i["jobId"] == job["id"] for i in first["items"])
    assert [r["id"] for r in first["included"]["jobRuns"]] == ids[::-1][:2]
    assert [j["id"] for j in first["included"]["jobs"]] == [job["id"]]
    seen = [i["jobRunId"] for i in first["items"]]
    marker = first["marker"]
    while marker:
        page = org.dev1.get(runs_path(job["id"]), params={"limit": 2, "marker": marker}).json()
        assert page["total"] is None  # counted on the first page only
        seen += [i["jobRunId"] for i in page["items"]]
        marker = page["marker"]
    assert seen == ids[::-1]
    whole = org.dev1.get(runs_path(job["id"])).json()
    assert whole["total"] == 5 and whole["marker"] is None
    assert_error(org.dev1.get(runs_path(job["id"]), params={"limit": 101}), 400)
    assert_error(org.dev1.get(runs_path(job["id"]), params={"marker": "bad marker"}), 400)
    mine = org.dev1.get("/me/jobs/runs", params={"limit": 100}).json()
    assert set(ids) <= {i["jobRunId"] for i in mine["items"]}
    assert [i["jobRunId"] for i in mine["items"]] == sorted((i["jobRunId"] for i in mine["items"]), reverse=True)


def test_a_team_members_runs_merge_the_jobs_it_sees(runs_api: str) -> None:
    """A member's /me/jobs/runs reads each visible job's runs apart and merges them (runs.team_listing):
    at any page size, the pages must be the admin's listing filtered to those jobs, in the same order,
    each run once (a job shared with two teams too)."""
    org = build_org(runs_api)
    shared = python_job(org.owner, org.team1, "print(1)\n", teamIds=[org.team1, org.team2])["id"]
    own = python_job(org.owner, org.team1, "print(2)\n")["id"]
    other = python_job(org.owner, org.team2, "print(3)\n")["id"]
    python_job(org.owner, org.team1, "print(4)\n")  # a visible job without runs
    job_of: dict[str, str] = {}
    for job_id in (shared, other, own, own, other, shared, own, other, other, shared):
        job_of[create_run(org.owner, job_id, hold=True)["id"]] = job_id

    def pages(actor: Actor, limit: int) -> tuple[int, list[str], set[str]]:
        page = actor.get("/me/jobs/runs", params={"limit": limit}).json()
        total, seen, jobs = page["total"], [], set[str]()
        while True:
            assert [r["id"] for r in page["included"]["jobRuns"]] == [i["jobRunId"] for i in page["items"]]
            seen += [i["jobRunId"] for i in page["items"]]
            jobs |= {j["id"] for j in page["included"]["jobs"]}
            if not page["marker"]:
                return total, seen, jobs
            page = actor.get("/me/jobs/runs", params={"limit": limit, "marker": page["marker"]}).json()
            assert page["total"] is None

    everything = pages(org.admin, 100)[1]
    assert sorted(everything, reverse=True) == everything and set(everything) == set(job_of)
    for actor, visible in ((org.viewer1, {shared, own}), (org.dev2, {shared, other})):
        expected = [run for run in everything if job_of[run] in visible]
        for limit in (1, 3, 7, 100):
            assert pages(actor, limit) == (len(expected), expected, visible), (actor.email, limit)
    assert pages(org.loner, 10) == (0, [], set())


def test_listed_runs_are_their_descriptions(org: Any) -> None:
    """The listings build their JSON without the response models (and the database formats the
    timestamps): every listed run must be exactly describeJobRun's, and the included job describeJob's,
    for each kind of caller (job listing, team viewer's and admin's /me/jobs/runs)."""
    job = python_job(org.dev1, org.team1, "import sys\nsys.exit(3)\n")
    failed = create_run(org.dev1, job["id"])
    held = create_run(org.dev1, job["id"], hold=True)
    cancelled = create_run(org.dev1, job["id"], hold=True)
    assert org.dev1.post(runs_path(job["id"], cancelled["id"], "cancel")).status_code == 200
    wait_for(org.dev1, job["id"], failed["id"], "failed", cleaned=True)  # nothing changes after this
    described = {r["id"]: describe(org.dev1, job["id"], r["id"]) for r in (failed, held, cancelled)}
    assert {r["status"] for r in described.values()} == {"failed", "pending", "cancelled"}
    assert described[failed["id"]]["runnerStartedAt"] is not None  # timestamps set and null alike
    shown_job = org.dev1.get(f"/workloads/jobs/{job['id']}").json()["included"]["jobs"][0]
    for actor, path in ((org.dev1, runs_path(job["id"])), (org.viewer1, "/me/jobs/runs"), (org.admin, "/me/jobs/runs")):
        page = actor.get(path, params={"limit": 100}).json()
        listed = {r["id"]: r for r in page["included"]["jobRuns"]}
        for run_id, run in described.items():
            assert list(listed[run_id]) == RUN_FIELDS and listed[run_id] == run
            assert list(run) == wire_keys(JobRunView) and list(run["results"]) == wire_keys(RunResults)
        assert [j for j in page["included"]["jobs"] if j["id"] == job["id"]] == [shown_job]


def test_idempotency_key(org: Any) -> None:
    job = python_job(org.dev1, org.team1, "print(1)\n")
    headers = {"Idempotency-Key": "nightly-2026-04-06"}
    first = org.dev1.post(runs_path(job["id"]), json={"hold": True, "namedParameters": {"a": "1"}}, headers=headers)
    assert first.status_code == 201, first.text
    again = org.dev1.post(runs_path(job["id"]), json={"hold": True, "namedParameters": {"a": "1"}}, headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    err = assert_error(org.dev1.post(runs_path(job["id"]), json={"namedParameters": {"a": "2"}}, headers=headers),
                       422)
    assert "Idempotency-Key" in err["details"]["fieldErrors"]
    # The key is per job; another key makes another run.
    other = python_job(org.dev1, org.team1, "print(1)\n")
    assert org.dev1.post(runs_path(other["id"]), json={"hold": True}, headers=headers).status_code == 201
    assert org.dev1.post(runs_path(job["id"]), json={"hold": True},
                         headers={"Idempotency-Key": "another"}).status_code == 201
    assert org.dev1.get(runs_path(job["id"])).json()["total"] == 2
    assert_error(org.dev1.post(runs_path(job["id"]), json={}, headers={"Idempotency-Key": "x" * 256}), 400)


def test_idempotency_key_under_concurrency(org: Any) -> None:
    job = python_job(org.dev1, org.team1, "print(1)\n")
    url = f"{org.dev1.base_url}{runs_path(job['id'])}"
    headers = {**org.dev1.headers(), "Idempotency-Key": "burst"}

    def post(_: int) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            return client.post(url, json={"hold": True}, headers=headers)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(post, range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 19 + [201], [r.text for r in responses if r.status_code not in (200, 201)]
    assert len({r.json()["id"] for r in responses}) == 1
    listed = org.dev1.get(runs_path(job["id"])).json()
    assert listed["total"] == 1


def test_mutations_are_audited(org: Any) -> None:
    job = python_job(org.dev1, org.team1, "print(1)\n")
    run = create_run(org.dev1, job["id"], hold=True)
    org.dev1.post(runs_path(job["id"], run["id"], "cancel"))
    org.dev1.post(runs_path(job["id"], run["id"], "retry"), json={"hold": True})
    org.dev1.post(runs_path(job["id"], run["id"], "ready"))
    wait_for(org.dev1, job["id"], run["id"], "succeeded")
    org.dev1.delete(runs_path(job["id"], run["id"]))
    events = org.owner.get("/org/audit-events", params={"resourceId": run["id"], "limit": 100}).json()["items"]
    assert sorted(e["action"] for e in events) == sorted(
        ["job_run.create", "job_run.cancel", "job_run.retry", "job_run.release", "job_run.delete"])
    assert {e["actorId"] for e in events} == {org.dev1.member_id}


# --- who may see and act ---------------------------------------------------------------------------

def _everything(actor: Actor, job_id: str, run_id: str) -> dict[str, int]:
    return {
        "list": actor.get(runs_path(job_id)).status_code,
        "describe": actor.get(runs_path(job_id, run_id)).status_code,
        "logs": actor.get(runs_path(job_id, run_id, "logs")).status_code,
        "create": actor.post(runs_path(job_id), json={"hold": True}).status_code,
        "release": actor.post(runs_path(job_id, run_id, "ready")).status_code,
        "retry": actor.post(runs_path(job_id, run_id, "retry"), json={"hold": True}).status_code,
        "cancel": actor.post(runs_path(job_id, run_id, "cancel")).status_code,
        "delete": actor.delete(runs_path(job_id, run_id)).status_code,
    }


def test_visibility_and_permissions(org: Any) -> None:
    job = python_job(org.dev1, org.team1, "print(1)\n")
    run = create_run(org.dev1, job["id"], hold=True)
    hidden = dict.fromkeys(("list", "describe", "logs", "create", "release", "retry", "cancel", "delete"), 404)
    # Another organization (with its own organization, or aiming at ours), another team, no team: 404.
    assert _everything(org.outsider, job["id"], run["id"]) == hidden
    assert _everything(org.outsider.as_org(org.owner.org_id), job["id"], run["id"]) == hidden
    assert _everything(org.dev2, job["id"], run["id"]) == hidden
    assert _everything(org.loner, job["id"], run["id"]) == hidden
    # A viewer of the team sees the runs but may not act on them.
    assert _everything(org.viewer1, job["id"], run["id"]) == {
        "list": 200, "describe": 200, "logs": 200, "create": 403, "release": 403, "retry": 403, "cancel": 403,
        "delete": 403}
    assert describe(org.dev1, job["id"], run["id"])["status"] == "pending"  # nothing changed
    # Runs of a job of another team are not in /me/jobs/runs.
    assert run["id"] not in {i["jobRunId"] for i in org.dev2.get("/me/jobs/runs").json()["items"]}
    assert run["id"] in {i["jobRunId"] for i in org.viewer1.get("/me/jobs/runs").json()["items"]}
    assert run["id"] in {i["jobRunId"] for i in org.admin.get("/me/jobs/runs").json()["items"]}
    assert run["id"] not in {i["jobRunId"] for i in org.outsider.get("/me/jobs/runs").json()["items"]}
    # The run belongs to its job: another job's path does not find it.
    other = python_job(org.dev1, org.team1, "print(2)\n")
    assert_error(org.dev1.get(runs_path(other["id"], run["id"])), 404)
    # Admins act everywhere; a team developer acts in the job's teams.
    assert org.admin.post(runs_path(job["id"], run["id"], "ready")).status_code == 200
    wait_for(org.dev1, job["id"], run["id"], "succeeded")
    assert org.admin.delete(runs_path(job["id"], run["id"])).status_code == 200
    assert org.owner.get(runs_path(job["id"])).status_code == 200
