"""Job runs on every PySpark line: `config.lakesail.sparkVersion` picks the environment of the run's Sail
server and of its driver (the job's own Python code, or the SQL runner), so the job's `pyspark` is
that line's; without it, runs use the newest line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sailplane.compute.environments import DEFAULT_LINE, LINES
from tests.data.helpers import build_org
from tests.runs.live import create_run, logs, make_job, parquet_rows, python_job, wait_for
from tests.support.actors import assert_error
from tests.support.clients import LINE_PROBE, assert_probe_ok

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def org(runs_api: str) -> Any:
    return build_org(runs_api)


def _probe_of(org: Any, job: dict[str, Any]) -> dict[str, Any]:
    run = create_run(org.dev1, job["id"])
    wait_for(org.dev1, job["id"], run["id"], "succeeded", timeout=120)
    text = logs(org.dev1, job["id"], run["id"])
    found: dict[str, Any] = json.loads(next(line for line in reversed(text.splitlines()) if line.startswith("{")))
    return found


@pytest.mark.parametrize("line", [*LINES, None])
def test_a_python_job_runs_with_its_lines_pyspark(org: Any, line: str | None) -> None:
    lakesail = {"sparkVersion": line} if line else None
    job = python_job(org.dev1, org.team1, LINE_PROBE, lakesail=lakesail)
    assert (job["config"].get("lakesail") or {}).get("sparkVersion") == line
    found = _probe_of(org, job)
    assert_probe_ok(found, client_line=line or DEFAULT_LINE, server_line=line or DEFAULT_LINE)


def test_a_sql_job_on_the_oldest_line(org: Any) -> None:
    """The SQL runner (the driver file, standard library and PySpark only) runs in that line's Python."""
    oldest = list(LINES)[-1]
    job = make_job(org.dev1, org.team1, {"sql": {"source": "SELECT id FROM range(3) WHERE id > :above"},
                                         "lakesail": {"sparkVersion": oldest}})
    run = create_run(org.dev1, job["id"], namedParameters={"above": "0"})
    done = wait_for(org.dev1, job["id"], run["id"], "succeeded", timeout=120)
    assert sorted(row["id"] for row in parquet_rows(done["results"]["outputPath"])) == [1, 2]


@pytest.mark.parametrize("value", ["2.4", "4.2.1", 35])
def test_a_job_names_only_a_line_this_server_has(org: Any, value: Any) -> None:
    r = org.dev1.post("/workloads/jobs", json={
        "jobKey": f"bad-spark-{str(value).replace('.', '-')}", "clusterId": "LOCAL", "teamIds": [org.team1],
        "config": {"sql": {"source": "SELECT 1"}, "lakesail": {"sparkVersion": value}}})
    err = assert_error(r, 422)
    assert "config.lakesail.sparkVersion" in err["details"]["fieldErrors"], err
