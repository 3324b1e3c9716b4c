"""What job definitions show of their runs (latestJobRunId, included.jobRuns), what deleting a job
removes, and saved queries in use by active jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from sailplane.config import Settings
from sailplane.kit.db import Database
from sailplane.workloads.jobs.models import JobTeam, JobVersion
from sailplane.workloads.runs.models import JobRun
from tests.data.helpers import make_query
from tests.jobs.helpers import build_org, make_job, sql_job, unique_key
from tests.support.actors import assert_error

RUN_FIELDS = {"id", "jobId", "jobVersion", "status", "statusMessage", "resourceCleanupMode", "dispatchedAt",
              "finishedAt", "runnerStartedAt", "runnerCompletedAt", "runnerExecutionTimeUs", "trigger", "createdAt",
              "createdBy", "updatedAt", "results", "updatedBy", "cleanedAt"}


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    try:
        yield database
    finally:
        database.dispose()


def add_run(db: Database, org_id: str, job_id: str, **fields: object) -> str:
    """Stands in for the runs package, which creates runs through its own routes."""
    with db.session() as s:
        run = JobRun(organization_id=org_id, job_id=job_id, job_version=1, status="succeeded", trigger="manual",
                     **fields)
        s.add(run)
        s.commit()
        return run.id


def test_latest_run_and_delete_cascade(api_url: str, db: Database) -> None:
    o = build_org(api_url)
    job = make_job(o.dev1, sql_job(unique_key(), [o.team1]))
    other = make_job(o.dev1, sql_job(unique_key(), [o.team1]))
    org = o.owner.org_id or ""
    add_run(db, org, job["id"])
    newest = add_run(db, org, job["id"], output_path="/data/out/1", runner_execution_time_us=45200000,
                     finished_at=datetime(2026, 4, 6, tzinfo=UTC))
    d = o.dev1.get(f"/workloads/jobs/{job['id']}").json()
    assert d["item"]["latestJobRunId"] == newest
    [run] = d["included"]["jobRuns"]
    assert set(run) == RUN_FIELDS
    assert (run["id"], run["jobId"], run["status"], run["results"]) == (newest, job["id"], "succeeded",
                                                                          {"outputPath": "/data/out/1"})
    assert run["runnerExecutionTimeUs"] == 45200000 and run["finishedAt"] == "2026-04-06T00:00:00.000Z"
    listed = o.dev1.get("/me/jobs").json()
    assert {i["jobId"]: i["latestJobRunId"] for i in listed["items"]} == {job["id"]: newest, other["id"]: None}
    assert [r["id"] for r in listed["included"]["jobRuns"]] == [newest]

    o.dev1.post(f"/workloads/jobs/{job['id']}/versions", json={"description": "v2"})
    assert o.dev1.delete(f"/workloads/jobs/{job['id']}").status_code == 200
    with db.session() as s:
        for model, column in ((JobRun, JobRun.job_id), (JobVersion, JobVersion.job_id), (JobTeam, JobTeam.job_id)):
            assert s.scalar(select(func.count()).select_from(model).where(column == job["id"])) == 0
        assert s.scalar(select(func.count()).select_from(JobVersion).where(JobVersion.job_id == other["id"])) == 1
    assert o.dev1.get(f"/workloads/jobs/{other['id']}").status_code == 200


def test_delete_query_refused_while_an_active_job_uses_it(api_url: str) -> None:
    o = build_org(api_url)
    q = make_query(o.dev1, f"q-{unique_key()}", [o.team1])
    unused = make_query(o.dev1, f"q-{unique_key()}", [o.team1])
    job = make_job(o.dev1, sql_job(unique_key(), [o.team1], config={"sql": {"queryId": q["id"]}}))
    path = f"/workloads/jobs/{job['id']}"
    err = assert_error(o.dev1.delete(f"/workloads/queries/{q['id']}"), 409, "query_in_use")
    assert job["jobKey"] in err["message"]
    # a draft using the query does not hold it; the current version does
    o.dev1.post(f"{path}/draft", json={"config": {"sql": {"queryId": unused["id"]}}})
    assert_error(o.dev1.delete(f"/workloads/queries/{q['id']}"), 409)
    o.dev1.post(f"{path}/draft/publish")
    assert_error(o.dev1.delete(f"/workloads/queries/{unused['id']}"), 409)
    # paused jobs do not hold their query
    o.dev1.patch(path, json={"status": "paused"})
    assert o.dev1.delete(f"/workloads/queries/{unused['id']}").status_code == 200
    # the old version's query is free now; activating that version again checks the query exists
    assert o.dev1.delete(f"/workloads/queries/{q['id']}").status_code == 200
    err = assert_error(o.dev1.post(f"{path}/activate-version", json={"version": 1}), 422)
    assert "config.sql.queryId" in err["details"]["fieldErrors"]
    # ... and so does resuming a paused job whose query is gone
    err = assert_error(o.dev1.patch(path, json={"status": "active"}), 422)
    assert "config.sql.queryId" in err["details"]["fieldErrors"]
    assert o.dev1.get(path).json()["included"]["jobs"][0]["status"] == "paused"


def test_a_metadata_update_keeps_a_due_slot(api_url: str, db: Database) -> None:
    """A rename or a new description must not move the schedule: a slot that is due but not yet taken by
    the scheduler would be lost. Pausing and resuming does move it (paused jobs skip their slots)."""
    from sailplane.workloads.jobs.models import Job

    o = build_org(api_url)
    job = make_job(o.dev1, sql_job(unique_key(), [o.team1]) | {"cronExpression": "0 3 * * *"})
    # A slot the API would never compute from "now" (the scheduler leaves a future one alone).
    due = datetime(2099, 1, 1, 3, 0, tzinfo=UTC)
    with db.session() as s:
        s.get(Job, job["id"]).next_run_at = due  # type: ignore[union-attr]
        s.commit()
    r = o.dev1.patch(f"/workloads/jobs/{job['id']}", json={"description": "renamed", "jobKey": unique_key()})
    assert r.status_code == 200, r.text
    assert r.json()["nextRunAt"] == "2099-01-01T03:00:00.000Z"
    paused = o.dev1.patch(f"/workloads/jobs/{job['id']}", json={"status": "paused"}).json()
    assert paused["nextRunAt"] is None
    resumed = o.dev1.patch(f"/workloads/jobs/{job['id']}", json={"status": "active"}).json()
    next_run = datetime.fromisoformat(resumed["nextRunAt"].replace("Z", "+00:00"))
    assert datetime.now(UTC) < next_run < datetime(2099, 1, 1, tzinfo=UTC) and next_run.hour == 3
