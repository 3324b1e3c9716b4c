"""Runs that really run: SQL and Python jobs on real Sail servers, with their output, timestamps,
timeouts, retries, cancellation, logs and resource clean-up."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.data.helpers import build_org
from tests.runs.gitrepo import GitRepo
from tests.runs.live import (
    attempts_in_log,
    create_run,
    describe,
    logs,
    make_job,
    parquet_rows,
    processes_of,
    python_job,
    sail_instances,
    source_repo,
    sql_job,
    unique_key,
    wait_for,
    wait_until,
)
from tests.support.actors import assert_error
from tests.support.server import LiveServer

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")

TIMESTAMPS = ("createdAt", "dispatchedAt", "runnerStartedAt", "runnerCompletedAt", "finishedAt", "cleanedAt")


def py(code: str) -> str:
    return textwrap.dedent(code).lstrip()


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_complete(run: dict[str, Any]) -> None:
    """Every timestamp of the seed filled in, in the order things happen, and the runner time measured."""
    assert all(run[f] for f in TIMESTAMPS), run
    times = [ts(run[f]) for f in TIMESTAMPS]
    assert times == sorted(times), run
    wall = (ts(run["runnerCompletedAt"]) - ts(run["runnerStartedAt"])).total_seconds() * 1e6
    assert run["runnerExecutionTimeUs"] > 0 and abs(run["runnerExecutionTimeUs"] - wall) < 50_000, run


@pytest.fixture(scope="module")
def org(runs_api: str) -> Any:
    return build_org(runs_api)


def test_sql_job_writes_its_result_as_parquet(org: Any, runs_data_dir: Path) -> None:
    key = unique_key("sales")
    job = sql_job(org.dev1, org.team1, "SELECT id, id * 2 AS doubled FROM range(5) WHERE id < :below",
                  jobKey=key)
    run = create_run(org.dev1, job["id"], namedParameters={"below": "3"})
    assert run["status"] == "ready" and run["trigger"] == "manual" and run["createdBy"] == org.dev1.member_id
    done = wait_for(org.dev1, job["id"], run["id"], "succeeded", cleaned=True)
    assert_complete(done)
    assert done["statusMessage"] is None and done["resourceCleanupMode"] == "always"
    out = done["results"]["outputPath"]
    assert out == str(runs_data_dir / "jobs" / key / "runs" / run["id"])
    assert sorted(parquet_rows(out), key=lambda r: r["id"]) == [
        {"id": 0, "doubled": 0}, {"id": 1, "doubled": 2}, {"id": 2, "doubled": 4}]
    text = logs(org.dev1, job["id"], run["id"])
    assert "wrote 3 row(s)" in text and "run succeeded" in text
    assert processes_of(run["id"]) == []


def test_saved_query_runs_in_its_catalog_and_schema(org: Any, runs_server: LiveServer) -> None:
    warehouse = runs_server.settings.warehouse_root / unique_key("warehouse")  # local catalogs live below it
    r = org.dev1.post("/data/catalogs", json={
        "name": f"wh-{unique_key()}", "provider": "local", "teamIds": [org.team1],
        "providerConfig": {"warehouseDir": str(warehouse), "defaultDatabase": "sales"}})
    assert r.status_code == 201, r.text
    catalog = r.json()
    sql = ("CREATE TABLE orders USING parquet AS SELECT id, id * 10 AS amount FROM range(4);\n"
           "SELECT current_catalog() AS c, current_database() AS d, sum(amount) AS total FROM orders")
    r = org.dev1.post("/workloads/queries", json={"name": f"q-{unique_key()}", "sql": sql, "teamIds": [org.team1],
                                                  "catalogId": catalog["id"], "schema": "sales"})
    assert r.status_code == 201, r.text
    job = make_job(org.dev1, org.team1, {"sql": {"queryId": r.json()["id"]}})
    run = create_run(org.dev1, job["id"])
    done = wait_for(org.dev1, job["id"], run["id"], "succeeded", cleaned=True)
    assert_complete(done)
    assert parquet_rows(done["results"]["outputPath"]) == [{"c": catalog["name"], "d": "sales", "total": 60}]
    assert list(warehouse.rglob("*.parquet")), "the managed table is not in the catalog's warehouse"


def test_python_job_from_git_with_parameters(org: Any, runs_server: LiveServer) -> None:
    repo = GitRepo(source_repo(runs_server.settings))
    script = py("""
        import json, os, sys
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE"]).create()
        out = os.environ["SAILPLANE_OUTPUT_PATH"]
        spark.range(3).selectExpr("id", "'VERSION' AS version").write.parquet(out + "/data")
        with open(out + "/args.json", "w") as f:
            json.dump(sys.argv[1:], f)
        spark.stop()
    """)
    first = repo.commit({"jobs/main.py": script.replace("VERSION", "one")})
    job = python_job(org.dev1, org.team1, "jobs/main.py",
                     python={"parameters": [["--default"]], "namedParameters": {"env": "dev", "who": "job"}},
                     sourceConfig={"url": repo.url, "reference": {"type": "branch", "value": "main"}})
    run = create_run(org.dev1, job["id"], parameters=[["--name=x", "one"], ["two"]],
                     namedParameters={"who": "run"})
    done = wait_for(org.dev1, job["id"], run["id"], "succeeded", cleaned=True)
    assert_complete(done)
    out = Path(done["results"]["outputPath"])
    # namedParameters (the job's, overridden per run) first, then the run's parameters replacing the job's.
    assert json.loads((out / "args.json").read_text()) == ["--env=dev", "--who=run", "--name=x", "one", "two"]
    assert {r["version"] for r in parquet_rows(str(out / "data"))} == {"one"}
    assert f"checked out commit {first}" in logs(org.dev1, job["id"], run["id"])
    described = org.dev1.get(f"/workloads/jobs/{job['id']}").json()["included"]["jobs"][0]
    assert described["sourceConfig"]["snapshotCommit"] == first  # the code this version last ran

    # A retry runs the same commit (the snapshot), even after the branch moved on.
    repo.commit({"jobs/main.py": script.replace("VERSION", "two")})
    cancelled = create_run(org.dev1, job["id"], hold=True)
    assert org.dev1.post(f"/workloads/jobs/{job['id']}/runs/{cancelled['id']}/cancel").status_code == 200
    retried = org.dev1.post(f"/workloads/jobs/{job['id']}/runs/{run['id']}/retry")
    assert_error(retried, 409)  # succeeded runs are not retried
    fresh = create_run(org.dev1, job["id"])
    fresh_done = wait_for(org.dev1, job["id"], fresh["id"], "succeeded")
    assert {r["version"] for r in parquet_rows(fresh_done["results"]["outputPath"] + "/data")} == {"two"}
    version = org.dev1.get(f"/workloads/jobs/{job['id']}/versions/1").json()["included"]["jobs"][0]
    assert version["sourceConfig"]["snapshotCommit"] not in (None, first)
    # A new version has not run yet: it does not inherit the commit of the one it was copied from.
    draft = org.dev1.post(f"/workloads/jobs/{job['id']}/draft", json={"description": "next"})
    assert draft.status_code == 201, draft.text
    assert draft.json()["sourceConfig"]["snapshotCommit"] is None


def test_retry_uses_the_recorded_snapshot_commit(org: Any, runs_server: LiveServer) -> None:
    repo = GitRepo(source_repo(runs_server.settings))
    first = repo.commit({"main.py": "import sys\nprint('code one')\nsys.exit(1)\n"})
    job = python_job(org.dev1, org.team1, "main.py", sourceConfig={"url": repo.url})
    run = create_run(org.dev1, job["id"])
    wait_for(org.dev1, job["id"], run["id"], "failed", cleaned=True)
    second = repo.commit({"main.py": "print('code two')\n"})
    r = org.dev1.post(f"/workloads/jobs/{job['id']}/runs/{run['id']}/retry")
    assert r.status_code == 200, r.text
    again = wait_for(org.dev1, job["id"], run["id"], "failed", cleaned=True)
    text = logs(org.dev1, job["id"], run["id"])
    assert text.count("code one") == 2 and "code two" not in text, text
    assert f"commit {first}" in text and second not in text
    assert again["trigger"] == "retry" and again["createdAt"] == run["createdAt"]


def test_timeout_stops_the_process(org: Any) -> None:
    job = python_job(org.dev1, org.team1, "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n",
                     timeoutSeconds=1)
    run = create_run(org.dev1, job["id"])
    done = wait_for(org.dev1, job["id"], run["id"], "timeout", cleaned=True)
    assert_complete(done)
    assert "timeout" in done["statusMessage"]
    assert 1_000_000 <= done["runnerExecutionTimeUs"] < 10_000_000
    assert processes_of(run["id"]) == []


def test_failed_runs_are_retried_up_to_max_retries(org: Any) -> None:
    job = python_job(org.dev1, org.team1, "import sys\nprint('boom: it broke', flush=True)\nsys.exit(3)\n",
                     lakesail={"maxRetries": 2})
    run = create_run(org.dev1, job["id"])
    done = wait_for(org.dev1, job["id"], run["id"], "failed", cleaned=True)
    assert_complete(done)
    assert "exit code 3" in done["statusMessage"] and "boom: it broke" in done["statusMessage"]
    assert done["trigger"] == "retry"
    assert attempts_in_log(logs(org.dev1, job["id"], run["id"])) == 3


def test_a_retry_can_succeed(org: Any) -> None:
    # Job code is confined to its own directories, so it learns which attempt it is from its environment.
    code = py("""
        import os, sys
        if os.environ["SAILPLANE_RUN_ATTEMPT"] == "0":
            print("first attempt fails", flush=True)
            sys.exit(1)
        print("second attempt works", os.environ["SAILPLANE_RUN_ATTEMPT"], flush=True)
    """)
    job = python_job(org.dev1, org.team1, code, lakesail={"maxRetries": 3})
    run = create_run(org.dev1, job["id"])
    done = wait_for(org.dev1, job["id"], run["id"], "succeeded", cleaned=True)
    assert_complete(done)
    assert done["statusMessage"] is None
    text = logs(org.dev1, job["id"], run["id"])
    assert attempts_in_log(text) == 2 and "second attempt works 1" in text


def test_timeouts_are_retried_too(org: Any) -> None:
    job = python_job(org.dev1, org.team1, "import time\ntime.sleep(60)\n", timeoutSeconds=1,
                     lakesail={"maxRetries": 1})
    run = create_run(org.dev1, job["id"])
    done = wait_for(org.dev1, job["id"], run["id"], "timeout", cleaned=True)
    assert attempts_in_log(logs(org.dev1, job["id"], run["id"])) == 2
    assert done["trigger"] == "retry"


def test_cancel_while_running(org: Any) -> None:
    job = python_job(org.dev1, org.team1, "import time\nprint('started', flush=True)\ntime.sleep(120)\n")
    run = create_run(org.dev1, job["id"])
    wait_for(org.dev1, job["id"], run["id"], "running")
    wait_until(lambda: "started" in logs(org.dev1, job["id"], run["id"]))
    assert processes_of(run["id"])
    t0 = time.monotonic()
    r = org.dev1.post(f"/workloads/jobs/{job['id']}/runs/{run['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["finishedAt"]
    wait_until(lambda: processes_of(run["id"]) == [], timeout=10)
    assert time.monotonic() - t0 < 5
    done = wait_for(org.dev1, job["id"], run["id"], "cancelled", cleaned=True)
    assert done["statusMessage"] == "cancelled by a user"
    assert done["runnerStartedAt"] and done["runnerCompletedAt"] and done["runnerExecutionTimeUs"]
    err = assert_error(org.dev1.post(f"/workloads/jobs/{job['id']}/runs/{run['id']}/cancel"), 409)
    assert "cancelled" in err["message"]


def test_a_run_retried_while_its_cancelled_attempt_is_stopping_runs_again(org: Any) -> None:
    """Retried at once after a cancel, while the cancelled attempt's process is still in its stop grace (it
    ignores SIGTERM): the new attempt starts once that process is gone and keeps running; the old attempt's end
    is not recorded as the new one's (it was: the retried run ended cancelled a moment after it started)."""
    code = py("""
        import os, signal, time
        if os.environ["SAILPLANE_RUN_ATTEMPT"] == "0":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("attempt", os.environ["SAILPLANE_RUN_ATTEMPT"], flush=True)
        time.sleep(120)
    """)
    job = python_job(org.dev1, org.team1, code)
    path = f"/workloads/jobs/{job['id']}/runs"
    run = create_run(org.dev1, job["id"])
    wait_for(org.dev1, job["id"], run["id"], "running")
    wait_until(lambda: "attempt 0" in logs(org.dev1, job["id"], run["id"]))
    assert org.dev1.post(f"{path}/{run['id']}/cancel").json()["status"] == "cancelled"
    retried = org.dev1.post(f"{path}/{run['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "ready"
    stopping = processes_of(run["id"])
    assert stopping  # the cancelled attempt is still stopping (the test server's grace is 60 s)
    time.sleep(1)
    assert "attempt 1" not in logs(org.dev1, job["id"], run["id"])  # not beside the old attempt
    for pid in stopping:  # the grace would end it; the test does not wait that long
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: "attempt 1" in logs(org.dev1, job["id"], run["id"]), timeout=90)
    time.sleep(3)  # past the end of the cancelled attempt and several lease renewals
    again = describe(org.dev1, job["id"], run["id"])
    assert (again["status"], again["trigger"]) == ("running", "retry"), again
    text = logs(org.dev1, job["id"], run["id"])
    assert attempts_in_log(text) == 2
    # The first attempt was stopped before the second started (it ran on, unwatched, beside it).
    second_start = text.index("--- sailplane: run", text.index("attempt 0"))
    assert "cancelled; stopping the run" in text[:second_start], text
    assert org.dev1.post(f"{path}/{run['id']}/cancel").json()["status"] == "cancelled"
    wait_for(org.dev1, job["id"], run["id"], "cancelled", cleaned=True)
    wait_until(lambda: processes_of(run["id"]) == [], timeout=20)


def test_a_cancelled_run_gets_its_stop_grace_to_clean_up(org: Any) -> None:
    """SIGTERM, then the grace (60 s on the test server) before SIGKILL, also in the sandbox: its launcher (the
    process group's leader) exits at SIGTERM, and the job was killed with it, before its handler could finish."""
    code = py("""
        import signal, sys, time
        def stop(*_):
            print("cleaning up", flush=True)
            time.sleep(2)
            print("cleaned up", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        print("working", flush=True)
        time.sleep(120)
    """)
    job = python_job(org.dev1, org.team1, code)
    run = create_run(org.dev1, job["id"])
    wait_for(org.dev1, job["id"], run["id"], "running")
    wait_until(lambda: "working" in logs(org.dev1, job["id"], run["id"]))
    t0 = time.monotonic()
    assert org.dev1.post(f"/workloads/jobs/{job['id']}/runs/{run['id']}/cancel").json()["status"] == "cancelled"
    wait_for(org.dev1, job["id"], run["id"], "cancelled", cleaned=True)
    text = logs(org.dev1, job["id"], run["id"])
    assert "cleaning up" in text and "cleaned up" in text, text
    assert time.monotonic() - t0 < 30  # it ended when its handler did, not at the end of the grace
    assert processes_of(run["id"]) == []


def test_logs_can_be_followed_while_running(org: Any) -> None:
    code = py("""
        import time
        for i in range(40):
            print(f"line {i}", flush=True)
            time.sleep(0.1)
    """)
    job = python_job(org.dev1, org.team1, code)
    run = create_run(org.dev1, job["id"])
    path = f"/workloads/jobs/{job['id']}/runs/{run['id']}/logs"
    text, offset, seen_while_running = "", 0, False
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        r = org.dev1.get(path, params={"offset": offset})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text += r.text
        offset = int(r.headers["LakeSail-Log-Offset"])
        status = r.headers["LakeSail-Run-Status"]
        if status == "running" and "line 3" in text and "line 39" not in text:
            seen_while_running = True
        if status in ("succeeded", "failed") and not r.text:
            break
        time.sleep(0.1)
    assert seen_while_running, text
    assert [f"line {i}" for i in range(40)] == [line for line in text.splitlines() if line.startswith("line ")]
    assert text == logs(org.dev1, job["id"], run["id"])
    assert logs(org.dev1, job["id"], run["id"], offset=len(text.encode())) == ""


def test_cleanup_modes(org: Any, runs_data_dir: Path) -> None:
    failing = python_job(org.dev1, org.team1, "raise SystemExit(1)\n")
    # on_success: kept after a failure (for debugging) until the reaper, stopped at once after a success
    kept = create_run(org.dev1, failing["id"], resourceCleanupMode="on_success")
    assert kept["resourceCleanupMode"] == "on_success"
    done = wait_for(org.dev1, failing["id"], kept["id"], "failed")
    assert done["cleanedAt"] is None
    before = set(sail_instances(runs_data_dir))
    cleaned = wait_for(org.dev1, failing["id"], kept["id"], "failed", cleaned=True, timeout=30)
    assert ts(cleaned["cleanedAt"]) >= ts(cleaned["finishedAt"])
    assert ts(cleaned["cleanedAt"]).timestamp() - ts(cleaned["finishedAt"]).timestamp() >= 2  # retained ≈ 3 s
    assert before - set(sail_instances(runs_data_dir)), "the kept instance was not stopped"

    ok = python_job(org.dev1, org.team1, "print('fine')\n", lakesail={"resourceCleanupMode": "never"})
    never = create_run(org.dev1, ok["id"])
    assert never["resourceCleanupMode"] == "never"  # from config.lakesail.resourceCleanupMode
    done = wait_for(org.dev1, ok["id"], never["id"], "succeeded")
    assert done["cleanedAt"] is None
    wait_for(org.dev1, ok["id"], never["id"], "succeeded", cleaned=True, timeout=30)

    on_success_ok = create_run(org.dev1, ok["id"], resourceCleanupMode="on_success")
    done = wait_for(org.dev1, ok["id"], on_success_ok["id"], "succeeded", cleaned=True, timeout=30)
    assert (ts(done["cleanedAt"]) - ts(done["finishedAt"])).total_seconds() < 2


def test_configuration_errors(org: Any) -> None:
    # A checkout failure may be transient: retried (here three times, all failing).
    job = python_job(org.dev1, org.team1, "main.py", lakesail={"maxRetries": 3},
                     sourceConfig={"url": "/nonexistent/repository"})
    run = create_run(org.dev1, job["id"])
    done = wait_for(org.dev1, job["id"], run["id"], "failed", cleaned=True)
    assert "checking out the source failed" in done["statusMessage"] and done["trigger"] == "retry"
    # A saved query that no longer exists cannot come back: failed at once, no retries.
    query = org.dev1.post("/workloads/queries", json={"name": f"q-{unique_key()}", "sql": "SELECT 1",
                                                      "teamIds": [org.team1]}).json()
    job = make_job(org.dev1, org.team1, {"sql": {"queryId": query["id"]}, "lakesail": {"maxRetries": 3}},
                   status="paused")
    assert org.dev1.delete(f"/workloads/queries/{query['id']}").status_code == 200
    run = create_run(org.dev1, job["id"])  # paused jobs still run manually
    done = wait_for(org.dev1, job["id"], run["id"], "failed", cleaned=True)
    assert done["statusMessage"] == (f"the saved query {query['id']} no longer exists or is not shared with any "
                                     "of the job's teams")
    assert done["trigger"] == "manual" and done["runnerStartedAt"] is None and done["dispatchedAt"]


def test_deleting_the_job_stops_its_running_run(org: Any) -> None:
    job = python_job(org.dev1, org.team1, "import time\nprint('up', flush=True)\ntime.sleep(120)\n")
    run = create_run(org.dev1, job["id"])
    wait_for(org.dev1, job["id"], run["id"], "running")
    wait_until(lambda: processes_of(run["id"]))
    assert org.dev1.delete(f"/workloads/jobs/{job['id']}").status_code == 200
    wait_until(lambda: processes_of(run["id"]) == [], timeout=15)


def test_python_job_libraries_reach_the_driver_and_the_sail_server(org: Any, tmp_path: Path) -> None:
    """`config.lakesail.libraries` are installed once and importable by the job's code and by its UDFs."""
    from tests.support.packages import serve_package_index

    script = py("""
        import os
        import sailplane_testlib
        from pyspark.sql import SparkSession
        from pyspark.sql.functions import udf
        spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE"]).create()

        @udf("string")
        def on_sail(text):
            import sailplane_testlib as lib
            return lib.shout(text)

        df = spark.createDataFrame([(sailplane_testlib.shout("driver"),)], ["d"]).select("d", on_sail("d").alias("s"))
        df.write.parquet(os.environ["SAILPLANE_OUTPUT_PATH"] + "/data")
        spark.stop()
    """)
    with serve_package_index(tmp_path / "index") as index:
        job = python_job(org.dev1, org.team1, script, lakesail={"libraries": [{"whl": index.wheel_url}]})
        run = create_run(org.dev1, job["id"])
        done = wait_for(org.dev1, job["id"], run["id"], "succeeded", cleaned=True)
    assert parquet_rows(done["results"]["outputPath"] + "/data") == [{"d": "DRIVER!", "s": "DRIVER!!"}]

    without = python_job(org.dev1, org.team1, script)
    failed = wait_for(org.dev1, without["id"], create_run(org.dev1, without["id"])["id"], "failed")
    assert "No module named 'sailplane_testlib'" in logs(org.dev1, without["id"], failed["id"])


def test_what_the_local_cluster_cannot_honour_is_refused_for_jobs(org: Any) -> None:
    image = "public.ecr.aws/lakesail/sail:0.0.1"
    r = org.dev1.post("/workloads/jobs", json={
        "jobKey": unique_key("img"), "clusterId": "LOCAL", "teamIds": [org.team1],
        "config": {"sql": {"source": "SELECT 1"}, "lakesail": {"lakesailImageUri": image}}})
    err = assert_error(r, 422)
    assert "config.lakesail.lakesailImageUri" in err["details"]["fieldErrors"], err
