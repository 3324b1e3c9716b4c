"""User code attacks the control plane: SQL on a session's Sail server, a UDF, a Python job and a
library install each try to read the data directory's secrets, the database, another workload's
files and the host's private files. Each must fail (not found or permission denied) while the
workload's own directories keep working."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql.functions import udf

from sailplane.compute.environments import SparkEnvironments
from tests.isolation.conftest import Node
from tests.runs.gitrepo import GitRepo
from tests.runs.live import create_run, logs, python_job, wait_for
from tests.sessions.helpers import (
    close,
    issue_token,
    open_session,
    org_with_team,
    sail_pids,
    spark_session,
    spark_url,
    wait_for_status,
)
from tests.support.actors import Actor
from tests.support.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning",
                                        "ignore:Cannot infer the eval type:UserWarning")


def _sql_read(spark: SparkSession, path: str) -> str:
    """What `SELECT value FROM text.<path>` shows: the rows, or the error Sail answered with."""
    try:
        return "\n".join(str(r.value) for r in spark.sql(f"SELECT value FROM text.`{path}`").collect())
    except Exception as exc:  # the refusal is the expected answer
        return f"error: {exc}"


@pytest.fixture
def session_of_another_org(node: Node) -> Iterator[tuple[Actor, dict[str, Any], SparkSession]]:
    owner, team = org_with_team(node.api, "attackers")
    session = open_session(owner, team)
    try:
        with spark_session(spark_url(session, issue_token(owner, session["id"]))) as spark:
            yield owner, session, spark
    finally:
        close(owner, session["id"])
        wait_until(lambda: session["workloadId"] not in sail_pids(node.server), timeout=30)


def test_sql_cannot_read_the_control_planes_files(node: Node, session_of_another_org: Any) -> None:
    _, _, spark = session_of_another_org
    for path, secret in node.targets.items():
        seen = _sql_read(spark, path)
        assert secret not in seen, f"SQL read {path}: {seen[:300]}"
    listing = _sql_read(spark, str(node.data_dir))
    assert node.canary not in listing and "PRIVATE KEY" not in listing
    # Its own work directory still works: write a table and read it back.
    spark.range(5).write.parquet("mine")
    assert spark.read.parquet("mine").count() == 5


def test_sql_cannot_read_another_workloads_files(node: Node) -> None:
    victim, victim_team = org_with_team(node.api, "victims")
    victim_session = open_session(victim, victim_team)
    try:
        with spark_session(spark_url(victim_session, issue_token(victim, victim_session["id"]))) as spark:
            spark.createDataFrame([(f"victim-{node.canary}",)], ["v"]).write.parquet("victim-data")
        written = list(node.data_dir.glob("instances/*/victim-data"))
        assert len(written) == 1  # the victim's own directory, on the host
        attacker, team = org_with_team(node.api, "attackers")
        session = open_session(attacker, team)
        try:
            with spark_session(spark_url(session, issue_token(attacker, session["id"]))) as spark:
                try:
                    seen = str(spark.read.parquet(str(written[0])).collect())
                except Exception as exc:
                    seen = f"error: {exc}"
                assert node.canary not in seen
                assert seen == "[]" or seen.startswith("error"), seen  # the path does not exist in its sandbox
        finally:
            close(attacker, session["id"])
    finally:
        close(victim, victim_session["id"])
        wait_until(lambda: not sail_pids(node.server), timeout=30)


def test_a_udf_runs_as_the_workload_user_and_sees_nothing_of_ours(node: Node, session_of_another_org: Any) -> None:
    _, _, spark = session_of_another_org

    @udf("string")
    def probe(path: str) -> str:
        import json as j
        import os as o

        if path == "whoami":
            cmdlines = []
            for pid in o.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            cmdlines.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
                    except OSError:
                        pass
            return j.dumps({"uid": o.getuid(), "env": sorted(o.environ), "processes": cmdlines})
        try:
            with open(path, errors="replace") as f:
                return f.read(4000)
        except Exception as exc:  # the refusal is what the test expects to see
            return f"{type(exc).__name__}: {exc}"

    paths = [*node.targets, "whoami"]
    rows = spark.createDataFrame([(p,) for p in paths], ["p"]).select("p", probe("p").alias("seen")).collect()
    seen = {r.p: r.seen for r in rows}
    for path, secret in node.targets.items():
        assert secret not in seen[path], f"UDF read {path}: {seen[path][:300]}"
        assert seen[path].startswith(("FileNotFoundError", "PermissionError")), seen[path]
    me = json.loads(seen["whoami"])
    assert me["uid"] == node.workload_uid
    assert not [name for name in me["env"] if name.startswith("SAILPLANE_")]
    # Its own processes only (the sandbox's init and Sail): not the control plane, not other workloads.
    sail = f"{SparkEnvironments(node.server.settings.spark_envs_dir).env().python} -m pysail spark server"
    assert me["processes"] and all(c.startswith(("/usr/bin/bwrap ", sail)) for c in me["processes"]), me["processes"]


JOB_PROBE = """
import json, os, pathlib
targets = json.loads({targets!r})
found = {{}}
for path in targets + [{data_dir!r}]:
    try:
        found[path] = os.listdir(path) if os.path.isdir(path) else open(path, errors="replace").read(4000)
    except Exception as exc:
        found[path] = type(exc).__name__ + ": " + str(exc)
try:
    import sqlite3
    found["sqlite"] = sqlite3.connect("file:" + {database!r} + "?mode=ro", uri=True).execute(
        "select email, password_hash from users").fetchall()
except Exception as exc:
    found["sqlite"] = type(exc).__name__ + ": " + str(exc)
found["uid"] = os.getuid()
found["env"] = sorted(os.environ)
out = pathlib.Path(os.environ["SAILPLANE_OUTPUT_PATH"])
out.mkdir(parents=True)
(out / "probe.json").write_text(json.dumps(found))
print("probed", len(found), flush=True)
"""


def test_a_python_job_cannot_read_secrets_or_the_database(node: Node) -> None:
    owner, team = org_with_team(node.api, "attackers")
    database = node.server.settings.database_url.removeprefix("sqlite:///")
    code = JOB_PROBE.format(targets=json.dumps(list(node.targets)), data_dir=str(node.data_dir), database=database)
    job = python_job(owner, team, code)
    run = create_run(owner, job["id"])
    done = wait_for(owner, job["id"], run["id"], "succeeded", "failed")
    assert done["status"] == "succeeded", logs(owner, job["id"], run["id"])
    # Writing results still works; they land in the run's output directory on the host.
    found = json.loads((Path(done["results"]["outputPath"]) / "probe.json").read_text())
    for path, secret in node.targets.items():
        assert secret not in json.dumps(found[path]), f"job read {path}: {str(found[path])[:300]}"
        assert str(found[path]).startswith(("FileNotFoundError", "PermissionError")), found[path]
    # Only the empty skeleton of the run's own mount points exists where the data directory is.
    assert set(found[str(node.data_dir)]) <= {"instances", "runs"}, found[str(node.data_dir)]
    assert isinstance(found["sqlite"], str) and found["sqlite"].startswith("OperationalError")
    assert found["uid"] == node.workload_uid
    assert not [name for name in found["env"] if name.startswith("SAILPLANE_") and name not in {
        "SAILPLANE_RUN_ID", "SAILPLANE_JOB_KEY", "SAILPLANE_OUTPUT_PATH", "SAILPLANE_RUN_ATTEMPT"}]


def test_a_library_install_cannot_read_secrets(node: Node) -> None:
    """pip echoes what it cannot parse: a requirements file that includes our secret key would show it."""
    owner, team = org_with_team(node.api, "attackers")
    requirements = f"-r {node.data_dir / 'secret.key'}\n"
    r = owner.post("/workloads/compute-configs", json={"name": "sneaky", "teamId": team, "config": {
        "sail": {"libraries": [{"requirements": {"source": requirements}}]}}})
    assert r.status_code == 201, r.text
    session = open_session(owner, team, workloadConfigId=r.json()["id"])
    failed = wait_for_status(owner, session["id"], "failed", timeout=120)
    assert node.canary not in failed["statusMessage"]
    assert "No such file or directory" in failed["statusMessage"], failed["statusMessage"]


def test_a_job_cannot_clone_another_jobs_checkout(node: Node) -> None:
    """A local `sourceConfig.url` may only name a repository under an administrator's source root."""
    checkout = node.data_dir / "runs" / "VICTIMRUN" / "work" / "source"  # where another run's code is
    GitRepo(checkout).commit({"main.py": f"print('stolen', {node.canary!r})\n"})
    owner, team = org_with_team(node.api, "attackers")
    job = python_job(owner, team, "main.py", sourceConfig={"url": str(checkout)})
    run = create_run(owner, job["id"])
    done = wait_for(owner, job["id"], run["id"], "succeeded", "failed")
    text = logs(owner, job["id"], run["id"])
    assert done["status"] == "failed" and node.canary not in text
    assert "is not under a source root" in done["statusMessage"], done["statusMessage"]
