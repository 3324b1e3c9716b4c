"""References are checked again when a run starts: a saved query (or its catalog) no longer shared
with any of the job's teams, or a local catalog whose warehouse is not below the storage root, fails
the run at once, without retries, before anything of the query reaches the run's log or results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from sailplane.data.models import Catalog
from sailplane.kit.db import Database
from tests.data.helpers import build_org
from tests.runs.live import create_run, logs, make_job, parquet_rows, unique_key, wait_for
from tests.support.server import LiveServer

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")

SECRET = "T1-ONLY-ROW-7f3a"
SQL = f"SELECT '{SECRET}' AS secret, 42 AS answer"


@pytest.fixture(scope="module")
def org(runs_api: str) -> Any:
    return build_org(runs_api)


@pytest.fixture(scope="module")
def runs_db(runs_database: str, runs_server: LiveServer) -> Iterator[Database]:
    database = Database(runs_database)  # after the server: its start applied the migrations
    try:
        yield database
    finally:
        database.dispose()


def files_of(data_dir: Path, job_key: str, run_id: str) -> str:
    """Everything the run left on disk: its log, work directory and results."""
    text = []
    for base in (data_dir / "runs" / run_id, data_dir / "jobs" / job_key / "runs" / run_id):
        if base.exists():
            text += [p.read_bytes().decode(errors="replace") for p in base.rglob("*") if p.is_file()]
    return "\n".join(text)


def assert_failed_without_leaking(org: Any, job: dict[str, Any], run: dict[str, Any], message: str,
                                  data_dir: Path) -> None:
    done = wait_for(org.dev2, job["id"], run["id"], "failed")
    assert done["statusMessage"] == message
    # No retry (maxRetries is 3), nothing started, nothing written.
    assert done["trigger"] == "manual" and done["runnerStartedAt"] is None
    assert done["results"]["outputPath"] is None
    text = logs(org.dev2, job["id"], run["id"]) + files_of(data_dir, job["jobKey"], run["id"])
    assert SECRET not in text and SQL not in text and SECRET not in str(done)


def test_a_query_unshared_from_the_jobs_teams_no_longer_runs(org: Any, runs_data_dir: Path) -> None:
    query = org.admin.post("/workloads/queries", json={"name": f"q-{unique_key()}", "sql": SQL,
                                                       "teamIds": [org.team1, org.team2]}).json()
    job = make_job(org.dev2, org.team2, {"sql": {"queryId": query["id"]}, "lakesail": {"maxRetries": 3}})
    # While the query is T2's too, T2's job runs it and shows its rows: the channel a leak would use.
    run = create_run(org.dev2, job["id"])
    done = wait_for(org.dev2, job["id"], run["id"], "succeeded")
    assert parquet_rows(done["results"]["outputPath"]) == [{"secret": SECRET, "answer": 42}]

    # T1 makes the query its own again: the job's next run must not read it.
    assert org.dev1.delete(f"/workloads/queries/{query['id']}/teams/{org.team2}").status_code == 200
    run = create_run(org.dev2, job["id"])
    assert_failed_without_leaking(org, job, run, f"the saved query {query['id']} no longer exists or is not shared "
                                                 "with any of the job's teams", runs_data_dir)


def test_a_catalog_unshared_from_the_jobs_teams_no_longer_runs(org: Any, runs_server: LiveServer,
                                                                runs_data_dir: Path) -> None:
    warehouse = runs_server.settings.warehouse_root / unique_key("wh")
    catalog = org.admin.post("/data/catalogs", json={
        "name": f"c-{unique_key()}", "provider": "local", "teamIds": [org.team1, org.team2],
        "providerConfig": {"warehouseDir": str(warehouse)}}).json()
    query = org.admin.post("/workloads/queries", json={"name": f"q-{unique_key()}", "sql": SQL,
                                                       "catalogId": catalog["id"],
                                                       "teamIds": [org.team1, org.team2]}).json()
    job = make_job(org.dev2, org.team2, {"sql": {"queryId": query["id"]}, "lakesail": {"maxRetries": 3}})
    assert org.dev1.delete(f"/data/catalogs/{catalog['id']}/teams/{org.team2}").status_code == 200
    run = create_run(org.dev2, job["id"])
    assert_failed_without_leaking(org, job, run, f"the catalog of the saved query {query['id']} is not shared with "
                                                 "any of the job's teams", runs_data_dir)


def test_a_warehouse_outside_the_storage_root_fails_the_run(org: Any, runs_server: LiveServer, runs_db: Database,
                                                            runs_data_dir: Path) -> None:
    root = runs_server.settings.warehouse_root
    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / unique_key("wh")  # does not exist yet: accepted
    name = f"c-{unique_key()}"
    catalog = org.dev2.post("/data/catalogs", json={
        "name": name, "provider": "local", "teamIds": [org.team2],
        "providerConfig": {"warehouseDir": str(warehouse)}}).json()
    query = org.dev2.post("/workloads/queries", json={"name": f"q-{unique_key()}", "sql": SQL,
                                                      "catalogId": catalog["id"], "teamIds": [org.team2]}).json()
    job = make_job(org.dev2, org.team2, {"sql": {"queryId": query["id"]}, "lakesail": {"maxRetries": 3}})
    expected = (f"the warehouseDir of the catalog {name} must be a directory below the storage root {root} "
                "(symlinks and '..' resolved); update the catalog")

    # Later, a symlink at that place leads out of the root (into the data directory).
    warehouse.symlink_to(runs_data_dir)
    run = create_run(org.dev2, job["id"])
    assert_failed_without_leaking(org, job, run, expected, runs_data_dir)

    # A catalog saved before the rule (or a root moved since): its directory is elsewhere.
    warehouse.unlink()
    with runs_db.session() as s:
        s.execute(update(Catalog).where(Catalog.id == catalog["id"]).values(
            provider_config={"warehouseDir": "/etc"}))
        s.commit()
    run = create_run(org.dev2, job["id"])
    assert_failed_without_leaking(org, job, run, expected, runs_data_dir)
