"""The run execution engine against a real Sail server and real processes."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sailplane.compute.backend import InstanceHandle, InstanceSpec
from sailplane.compute.local import LocalSailBackend
from sailplane.workloads.runs.driver import is_query, leading_keyword, split_sql
from sailplane.workloads.runs.execution import (
    ExecutionError,
    RunningProcess,
    RunSpec,
    RunSpecError,
    SourceConfig,
    _decode,
    find_process,
    find_run_processes,
    kill_orphan,
    prepare_source,
    read_log,
    start_run,
)
from tests.runs.gitrepo import GitRepo
from tests.support.processes import group_members

SpecFactory = Callable[..., RunSpec]


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstanceHandle]:
    """One Sail Spark Connect server for the module."""
    backend = LocalSailBackend(tmp_path_factory.mktemp("sail"))
    handle = asyncio.run(backend.start(InstanceSpec("RUNSTEST")))
    try:
        yield handle
    finally:
        asyncio.run(backend.stop(handle, grace=10))
        assert backend.scan() == []


@pytest.fixture
def make_spec(tmp_path: Path) -> Iterator[SpecFactory]:
    """Builds specs with unique run ids under tmp_path; afterwards checks no run process is left."""
    run_ids: list[str] = []

    def make(**fields: Any) -> RunSpec:
        run_id = f"T{os.getpid()}X{len(run_ids)}X{time.monotonic_ns()}"
        run_ids.append(run_id)
        base = tmp_path / run_id
        defaults: dict[str, Any] = dict(run_id=run_id, job_key="test-job", work_dir=base / "work",
                                        output_dir=base / "output", log_path=base / "run.log")
        return RunSpec(**{**defaults, **fields})

    yield make
    leftovers = {run_id: find_run_processes(run_id) for run_id in run_ids}
    for run_id, pids in leftovers.items():
        if pids:
            asyncio.run(kill_orphan(None, run_id, grace=0.5))
    assert not any(leftovers.values()), f"runs left processes behind: {leftovers}"




def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def start_and_wait(spec: RunSpec, sail: InstanceHandle | str, **kwargs: Any) -> tuple[RunningProcess, Any]:
    address = sail.address if isinstance(sail, InstanceHandle) else sail
    process = await start_run(spec, address, **kwargs)
    return process, await process.wait()


def py(code: str) -> str:
    return textwrap.dedent(code).lstrip()


# --- SQL ------------------------------------------------------------------------------------------


def test_split_sql() -> None:
    sql = """
        -- a comment; with a semicolon
        CREATE TABLE t AS SELECT 'a;b' AS s, "c;d" AS d, `we;ird` FROM x;;
        /* block; /* nested; */ still comment; */
        SELECT 'it''s; fine', 'esc\\'; aped' ;
        SELECT 1 -- trailing; comment
    """
    assert split_sql(sql) == [
        "-- a comment; with a semicolon\n        CREATE TABLE t AS SELECT 'a;b' AS s, \"c;d\" AS d, `we;ird` FROM x",
        "/* block; /* nested; */ still comment; */\n        SELECT 'it''s; fine', 'esc\\'; aped'",
        "SELECT 1 -- trailing; comment",
    ]
    assert split_sql(" ; -- nothing\n ; /* x */") == []
    for bad in ("SELECT 'open", "SELECT `open", "SELECT 1 /* open"):
        with pytest.raises(ValueError, match="unterminated"):
            split_sql(bad)
    assert leading_keyword("/* c */ -- d\n  with x as (select 1) select * from x") == "WITH"
    assert is_query("(SELECT 1) UNION (SELECT 2)") and is_query("VALUES (1)") and is_query("FROM t SELECT *")
    assert not is_query("INSERT INTO t SELECT 1") and not is_query("CREATE TABLE t AS SELECT 1")


def test_sql_run_writes_parquet(sail: InstanceHandle, make_spec: SpecFactory) -> None:
    spec = make_spec(
        job_type="sql",
        sql="""
            CREATE DATABASE IF NOT EXISTS runs_sql_test;
            CREATE TABLE runs_sql_test.numbers AS SELECT id, id * id AS square FROM range(1000);
            SELECT count(*) FROM runs_sql_test.numbers; -- not the result: counted and logged
            SELECT id, square, 'x;y' AS label FROM runs_sql_test.numbers WHERE id >= :low ORDER BY id;
        """,
        named_parameters={"low": "990", "unused": "1"},
    )
    t0 = time.monotonic()
    process, outcome = run(start_and_wait(spec, sail))
    elapsed = time.monotonic() - t0
    log = read_log(spec.log_path).text
    assert outcome.status == "succeeded", log
    assert outcome.exit_code == 0 and outcome.message is None
    assert outcome.output_path == str(spec.output_dir)
    assert outcome.runner_started_at <= outcome.runner_completed_at
    assert 0 < outcome.runner_execution_time_us <= elapsed * 1e6
    table = pq.read_table(spec.output_dir)
    assert table.column_names == ["id", "square", "label"]
    assert sorted(table.column("id").to_pylist()) == list(range(990, 1000))
    assert sorted(table.column("square").to_pylist()) == [i * i for i in range(990, 1000)]
    assert set(table.column("label").to_pylist()) == {"x;y"}
    assert "[3/4]" in log and "1 row(s)" in log and "wrote 10 row(s)" in log
    assert not find_process(process.pid, spec.run_id)

    # The run's catalog and schema are the defaults for unqualified names; a rerun overwrites.
    # (Sail's built-in catalog lives as long as a Spark session, so each run starts empty.)
    again = make_spec(job_type="sql", sql="CREATE TABLE t AS SELECT * FROM range(3); SELECT * FROM default.t",
                      sql_schema="default", sql_catalog="sail", output_dir=spec.output_dir)
    _, outcome = run(start_and_wait(again, sail))
    assert outcome.status == "succeeded", read_log(again.log_path).text
    assert sorted(pq.read_table(spec.output_dir).column("id").to_pylist()) == [0, 1, 2]
    missing = make_spec(job_type="sql", sql="SELECT 1", sql_schema="no_such_schema")
    _, outcome = run(start_and_wait(missing, sail))
    assert outcome.status == "failed" and "cannot use schema 'no_such_schema'" in outcome.message


def test_sql_without_a_query_writes_nothing(sail: InstanceHandle, make_spec: SpecFactory) -> None:
    spec = make_spec(job_type="sql", sql="SELECT count(*), max(id) FROM range(7)")
    _, outcome = run(start_and_wait(spec, sail))
    assert outcome.status == "succeeded", read_log(spec.log_path).text
    assert pq.read_table(spec.output_dir).to_pylist() == [{"count(1)": 7, "max(id)": 6}]

    # A rerun of a run starts from an empty output: this one writes none, so none is left.
    again = make_spec(job_type="sql", sql="CREATE DATABASE IF NOT EXISTS runs_sql_nothing",
                      output_dir=spec.output_dir)
    _, outcome = run(start_and_wait(again, sail))
    assert outcome.status == "succeeded", read_log(again.log_path).text
    assert outcome.output_path is None and not spec.output_dir.exists()
    assert "nothing written" in read_log(again.log_path).text


def test_sql_error_fails_with_the_message(sail: InstanceHandle, make_spec: SpecFactory) -> None:
    spec = make_spec(job_type="sql", sql="SELECT 1;\nSELECT no_such_column FROM range(3);\nSELECT 2")
    _, outcome = run(start_and_wait(spec, sail))
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert "error in statement 2 (line 2)" in outcome.message
    assert "no_such_column" in outcome.message
    assert "[3/3]" not in read_log(spec.log_path).text

    bad = make_spec(job_type="sql", sql="SELECT 'unterminated")
    _, outcome = run(start_and_wait(bad, sail))
    assert outcome.status == "failed" and "unterminated string" in outcome.message

    with pytest.raises(RunSpecError, match="no SQL"):
        run(start_run(make_spec(job_type="sql", sql="  "), sail.address))


def test_sql_file_from_git(sail: InstanceHandle, make_spec: SpecFactory, tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    sha = repo.commit({"sql/daily.sql": "-- daily\nSELECT id AS n FROM range(4);\n"})
    spec = RunSpec.from_config(
        run_id=make_spec(job_type="sql").run_id, job_key="daily", config={"sql": {"source": "sql/daily.sql"}},
        source_config={"url": repo.url}, work_dir=tmp_path / "w", output_dir=tmp_path / "o",
        log_path=tmp_path / "run.log")
    assert spec.sql_file == "sql/daily.sql"

    async def scenario() -> tuple[str | None, Any]:
        commit = await prepare_source(spec)
        _, outcome = await start_and_wait(spec, sail)
        return commit, outcome

    commit, outcome = run(scenario())
    assert commit == sha
    assert outcome.status == "succeeded", read_log(spec.log_path).text
    assert sorted(pq.read_table(spec.output_dir).column("n").to_pylist()) == [0, 1, 2, 3]


# --- Python ---------------------------------------------------------------------------------------

SPARK_JOB = py("""
    import json, os, sys
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()  # SPARK_REMOTE points at Sail
    rows = [(i, arg) for i, arg in enumerate(sys.argv[1:])]
    df = spark.createDataFrame(rows, "position INT, arg STRING")
    df.write.mode("overwrite").parquet(os.environ["SAILPLANE_OUTPUT_PATH"])
    print("VERSION", "{version}", "wrote", df.count(), "rows for", os.environ["SAILPLANE_JOB_KEY"])
    spark.stop()
""")

PLAIN_JOB = py("""
    import json, os, pathlib, sys
    out = pathlib.Path(os.environ["SAILPLANE_OUTPUT_PATH"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps({{"version": "{version}", "argv": sys.argv[1:]}}))
""")


def test_python_job_from_git(sail: InstanceHandle, make_spec: SpecFactory, tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = GitRepo(tmp_path / "repo")
    first = repo.commit({"jobs/etl.py": PLAIN_JOB.format(version="first")}, "first")
    repo.git("tag", "release-1")
    second = repo.commit({"jobs/etl.py": PLAIN_JOB.format(version="second")}, "second")
    repo.git("checkout", "--quiet", "-b", "spark")
    on_branch = repo.commit({"jobs/etl.py": SPARK_JOB.format(version="spark")}, "spark")
    repo.git("checkout", "--quiet", "main")

    # Branch: the job really talks to Sail and gets its parameters as arguments.
    config = {"python": {"source": "jobs/etl.py", "parameters": [["--name=job", "one", "two"]],
                         "namedParameters": {"date": "2026-04-06"}}}
    spec = RunSpec.from_config(
        run_id=make_spec(job_type="python").run_id, job_key="etl", config=config, work_dir=tmp_path / "b" / "work",
        output_dir=tmp_path / "b" / "out", log_path=tmp_path / "b" / "run.log",
        source_config={"url": repo.url, "reference": {"type": "branch", "value": "spark"}},
        overrides={"namedParameters": {"region": "eu"}},
    )
    assert spec.argv == ["--date=2026-04-06", "--region=eu", "--name=job", "one", "two"]

    async def scenario(spec: RunSpec) -> tuple[str | None, Any]:
        commit = await prepare_source(spec)
        _, outcome = await start_and_wait(spec, sail)
        return commit, outcome

    commit, outcome = run(scenario(spec))
    log = read_log(spec.log_path).text
    assert commit == on_branch
    assert outcome.status == "succeeded", log
    assert f"checked out commit {on_branch}" in log and "VERSION spark wrote 5 rows for etl" in log
    rows = pq.read_table(spec.output_dir).sort_by("position").column("arg").to_pylist()
    assert rows == spec.argv

    # Tag and commit references check out exactly that code.
    cases = [(("tag", "release-1"), first, "first"), (("commit", second), second, "second")]
    for reference, expected_commit, version in cases:
        spec = make_spec(job_type="python", python_source="jobs/etl.py", parameters=[["a"], ["b", "c"]],
                         source_config=SourceConfig(repo.url, *reference))
        commit, outcome = run(scenario(spec))
        assert commit == expected_commit
        assert outcome.status == "succeeded", read_log(spec.log_path).text
        result = json.loads((spec.output_dir / "result.json").read_text())
        assert result == {"version": version, "argv": ["a", "b", "c"]}

    # A path that escapes the checkout or does not exist is refused before anything starts.
    for source, message in (("../../etc/passwd", "outside the repository"), ("jobs/nope.py", "does not exist")):
        escaping = make_spec(job_type="python", python_source=source, source_config=SourceConfig(repo.url))
        with pytest.raises(RunSpecError, match=message):
            run(scenario(escaping))


def test_python_entry_points(sail: InstanceHandle, make_spec: SpecFactory, tmp_path: Path) -> None:
    """A package in the repository (src layout) run by console-script name, `module:function` or `-m`."""
    repo = GitRepo(tmp_path / "repo")
    module = py("""
        import json, os, pathlib, sys

        def main():
            out = pathlib.Path(os.environ["SAILPLANE_OUTPUT_PATH"])
            out.mkdir(parents=True, exist_ok=True)
            (out / "result.json").write_text(json.dumps({"argv": sys.argv[1:], "how": os.environ.get("HOW")}))
            return int(os.environ.get("EXIT", "0"))
    """)
    repo.commit({
        "pyproject.toml": '[project]\nname = "acme-etl"\nversion = "1"\n'
                          '[project.scripts]\nacme-etl = "acme_etl.cli:main"\n',
        "src/acme_etl/__init__.py": "",
        "src/acme_etl/cli.py": module,
        "src/acme_etl/__main__.py": "import sys\nfrom acme_etl.cli import main\nsys.exit(main())\n",
    })
    source = SourceConfig(repo.url, "branch", "main")
    cases: list[tuple[str, dict[str, str]]] = [
        ("script", dict(entry_point="acme-etl")),
        ("function", dict(entry_point="acme_etl.cli:main")),
        ("module", dict(package_name="acme_etl")),
    ]
    for how, case in cases:
        spec = make_spec(job_type="python", source_config=source, named_parameters={"k": "v"},
                         parameters=[["x"]], env={"HOW": how}, **case)
        run(prepare_source(spec))
        _, outcome = run(start_and_wait(spec, sail))
        assert outcome.status == "succeeded", read_log(spec.log_path).text
        result = json.loads((spec.output_dir / "result.json").read_text())
        assert result == {"argv": ["--k=v", "x"], "how": how}

    # A wheel in the repository: importable from PYTHONPATH, its console scripts found by name.
    wheel_code = module.replace('"how": os.environ.get("HOW")', '"how": "wheel"')
    repo.commit({"dist/acme_whl-1.0-py3-none-any.whl": _wheel("acme_whl", wheel_code)})
    for entry in ("acme-whl", "acme_whl.cli:main"):
        spec = make_spec(job_type="python", source_config=source, python_source="dist/acme_whl-1.0-py3-none-any.whl",
                         entry_point=entry, parameters=[["w"]])
        run(prepare_source(spec))
        _, outcome = run(start_and_wait(spec, sail))
        assert outcome.status == "succeeded", read_log(spec.log_path).text
        assert json.loads((spec.output_dir / "result.json").read_text()) == {"argv": ["w"], "how": "wheel"}

    failing = make_spec(job_type="python", source_config=source, entry_point="acme-etl", env={"EXIT": "4"})
    run(prepare_source(failing))
    _, outcome = run(start_and_wait(failing, sail))
    assert outcome.status == "failed" and outcome.exit_code == 4

    unknown = make_spec(job_type="python", source_config=source, entry_point="nope")
    run(prepare_source(unknown))
    _, outcome = run(start_and_wait(unknown, sail))
    assert outcome.status == "failed" and "no console script named 'nope'" in outcome.message


def _wheel(package: str, cli: str) -> bytes:
    """A minimal pure-Python wheel with `package.cli:main` as console script `package` (dashed)."""
    buffer = io.BytesIO()
    dist_info = f"{package}-1.0.dist-info"
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(f"{package}/__init__.py", "")
        wheel.writestr(f"{package}/cli.py", cli)
        wheel.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
        wheel.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{dist_info}/entry_points.txt",
                       f"[console_scripts]\n{package.replace('_', '-')} = {package}.cli:main\n")
        wheel.writestr(f"{dist_info}/RECORD", "")
    return buffer.getvalue()


def test_inline_python_environment(sail: InstanceHandle, make_spec: SpecFactory,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAILPLANE_SECRET_KEY", "must-not-leak")
    monkeypatch.setenv("SAIL_MODE", "must-not-leak")
    code = py("""
        import json, os, pathlib
        out = pathlib.Path(os.environ["SAILPLANE_OUTPUT_PATH"])
        out.mkdir(parents=True)
        (out / "env.json").write_text(json.dumps(dict(os.environ)))
        print("pgid", os.getpgid(0), "pid", os.getpid())
    """)
    spec = make_spec(job_type="python", python_source=code,
                     env={"MY_SETTING": "1", "SAILPLANE_RUN_ID": "forged", "SPARK_REMOTE": "sc://elsewhere:1"})
    process, outcome = run(start_and_wait(spec, sail))
    assert outcome.status == "succeeded", read_log(spec.log_path).text
    env = json.loads((spec.output_dir / "env.json").read_text())
    assert env["SPARK_REMOTE"] == f"sc://{sail.address}"
    assert env["SAILPLANE_RUN_ID"] == spec.run_id and env["SAILPLANE_JOB_KEY"] == "test-job"
    assert env["SAILPLANE_OUTPUT_PATH"] == str(spec.output_dir) and env["MY_SETTING"] == "1"
    assert "SAILPLANE_SECRET_KEY" not in env and "SAIL_MODE" not in env
    assert f"pgid {process.pid} pid {process.pid}" in read_log(spec.log_path).text  # its own process group


# --- failure, timeout, cancel, logs ---------------------------------------------------------------


def test_failure_has_the_log_tail(sail: InstanceHandle, make_spec: SpecFactory) -> None:
    code = "import sys\nfor i in range(100):\n    print('line', i)\nsys.exit(3)\n"
    spec = make_spec(job_type="python", python_source=code)
    _, outcome = run(start_and_wait(spec, sail))
    assert outcome.status == "failed" and outcome.exit_code == 3
    assert outcome.message.startswith("the run failed (exit code 3):")
    assert "line 99" in outcome.message and "line 80" in outcome.message and "line 79" not in outcome.message

    crash = make_spec(job_type="python", python_source="raise RuntimeError('boom')")
    _, outcome = run(start_and_wait(crash, sail))
    assert outcome.status == "failed" and "RuntimeError: boom" in outcome.message

    killed = make_spec(job_type="python", python_source="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    _, outcome = run(start_and_wait(killed, sail))
    assert outcome.status == "failed" and outcome.exit_code == -9 and "killed by SIGKILL" in outcome.message

    unlimited = make_spec(job_type="python", python_source="import time\ntime.sleep(0.2)", timeout_seconds=0)
    _, outcome = run(start_and_wait(unlimited, sail))
    assert outcome.status == "succeeded"

    no_python = make_spec(job_type="python", python_source="pass", python="/nonexistent/python3")
    with pytest.raises(ExecutionError, match="cannot start the run"):
        run(start_run(no_python, sail.address))
    assert "cannot start the run" in read_log(no_python.log_path).text


# A job that starts a child in its group that ignores SIGTERM, then hangs.
STUBBORN = py("""
    import signal, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('child up', flush=True); "
        "time.sleep(600)"])
    print("started", child.pid, flush=True)
    time.sleep(600)
""")


def _wait_for_log(spec: RunSpec, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in read_log(spec.log_path).text:
        assert time.monotonic() < deadline, f"{text!r} not in the log: {read_log(spec.log_path).text}"
        time.sleep(0.02)


def test_timeout_stops_the_process_group(sail: InstanceHandle, make_spec: SpecFactory) -> None:
    spec = make_spec(job_type="python", python_source=STUBBORN, timeout_seconds=1.5)

    async def scenario() -> tuple[RunningProcess, Any, list[int]]:
        process = await start_run(spec, sail.address, stop_grace=0.5)
        await asyncio.to_thread(_wait_for_log, spec, "child up")
        members = group_members(process.pgid)
        return process, await process.wait(), members

    t0 = time.monotonic()
    process, outcome, members = run(scenario())
    assert len(members) == 2  # the job and its child
    assert outcome.status == "timeout" and outcome.message == "the run exceeded its timeout of 1.5 s"
    assert outcome.exit_code == -15  # the leader took the SIGTERM; the child ignored it and was killed
    assert 1.5 <= outcome.runner_execution_time_us / 1e6 < 5 and time.monotonic() - t0 < 10
    assert group_members(process.pgid) == []
    assert not any(find_process(pid, spec.run_id) for pid in members)
    assert "timed out after 1.5 s" in read_log(spec.log_path).text

    # An explicit wait timeout overrides the spec's.
    spec = make_spec(job_type="python", python_source="import time\ntime.sleep(600)")

    async def short() -> tuple[RunningProcess, Any]:
        process = await start_run(spec, sail.address, stop_grace=0.5)
        return process, await process.wait(timeout=0.3)

    process, outcome = run(short())
    assert outcome.status == "timeout" and outcome.message == "the run exceeded its timeout of 0.3 s"
    assert group_members(process.pgid) == []


def test_cancel(sail: InstanceHandle, make_spec: SpecFactory) -> None:
    spec = make_spec(job_type="python", python_source=STUBBORN)

    async def scenario() -> tuple[RunningProcess, Any, Any]:
        process = await start_run(spec, sail.address, stop_grace=0.3)
        waiter = asyncio.create_task(process.wait())
        await asyncio.to_thread(_wait_for_log, spec, "child up")
        assert process.running
        await process.cancel()
        assert not process.running
        outcome = await waiter
        await process.cancel()  # idempotent
        return process, outcome, await process.wait()

    process, outcome, again = run(scenario())
    assert outcome.status == "cancelled" and outcome.message == "the run was cancelled"
    assert again is outcome
    assert group_members(process.pgid) == []

    # Cancelling a run that already ended keeps its outcome.
    done = make_spec(job_type="python", python_source="print('quick')")

    async def finished() -> Any:
        process = await start_run(done, sail.address)
        await asyncio.to_thread(_wait_for_log, done, "quick")
        await asyncio.sleep(0.2)
        await process.cancel()
        return await process.wait()

    assert run(finished()).status == "succeeded"


def test_log_is_readable_while_running(sail: InstanceHandle, make_spec: SpecFactory, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    code = py(f"""
        import os, time
        print("first line é")
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.02)
        print("second line")
    """)
    spec = make_spec(job_type="python", python_source=code)

    async def scenario() -> tuple[str, str, int, Any]:
        process = await start_run(spec, sail.address)
        await asyncio.to_thread(_wait_for_log, spec, "first line")
        chunk = process.read_log(0)
        gate.touch()
        outcome = await process.wait()
        rest = process.read_log(chunk.next_offset)
        return chunk.text, rest.text, rest.next_offset, outcome

    first, rest, end, outcome = run(scenario())
    assert outcome.status == "succeeded"
    assert "first line é" in first and "second line" not in first
    assert "second line" in rest and "first line" not in rest
    assert end == spec.log_path.stat().st_size
    # Offsets are bytes; a read that ends inside a character leaves it for the next read.
    assert _decode("é".encode()[:1]) == ("", 0)
    assert _decode(b"ab" + "é".encode()) == ("abé", 4)
    text = read_log(spec.log_path).text
    cut = text.encode().index("é".encode()) + 1
    assert read_log(spec.log_path, 0, cut).next_offset == cut - 1
    assert read_log(tmp_path / "missing.log", 5).text == ""


# --- a previous server's processes ----------------------------------------------------------------


ORPHAN_STARTER = py("""
    import asyncio, json, sys
    from pathlib import Path
    from sailplane.workloads.runs.execution import RunSpec, start_run

    args = json.loads(sys.argv[1])
    spec = RunSpec(run_id=args["run_id"], job_key="orphan", job_type="python", work_dir=Path(args["work"]),
                   output_dir=Path(args["out"]), log_path=Path(args["log"]), python_source=args["code"])
    process = asyncio.run(start_run(spec, "127.0.0.1:1"))
    print(process.pid)
""")


def _start_orphan(spec: RunSpec, code: str) -> int:
    """Start a run from another process that then exits, like a control plane that crashed."""
    args = {"run_id": spec.run_id, "work": str(spec.work_dir), "out": str(spec.output_dir),
            "log": str(spec.log_path), "code": code}
    result = subprocess.run([sys.executable, "-c", ORPHAN_STARTER, json.dumps(args)], capture_output=True,
                            text=True, check=True)
    return int(result.stdout.strip())


def test_orphans_of_a_previous_server(make_spec: SpecFactory) -> None:
    first = make_spec(job_type="python")
    pid = _start_orphan(first, STUBBORN)
    _wait_for_log(first, "child up")
    assert find_process(pid, first.run_id)
    assert not find_process(pid, "ANOTHERRUN")
    assert not find_process(os.getpid(), first.run_id) and not find_process(None, first.run_id)
    processes = find_run_processes(first.run_id)
    assert pid in processes and len(processes) == 2  # with its child
    assert not run(kill_orphan(os.getpid(), first.run_id))  # not the run: untouched
    assert run(kill_orphan(pid, first.run_id, grace=0.3))
    assert find_run_processes(first.run_id) == [] and group_members(pid) == []
    assert not run(kill_orphan(pid, first.run_id))  # already gone

    # The server died before it saved the pid: found by the run id alone.
    second = make_spec(job_type="python")
    pid = _start_orphan(second, STUBBORN)
    _wait_for_log(second, "child up")
    assert run(kill_orphan(None, second.run_id, grace=0.3))
    assert find_run_processes(second.run_id) == [] and group_members(pid) == []


# --- specs ----------------------------------------------------------------------------------------


def test_spec_from_config(tmp_path: Path) -> None:
    paths: dict[str, Any] = dict(work_dir=tmp_path / "w", output_dir=tmp_path / "o", log_path=tmp_path / "l")
    sql = RunSpec.from_config(run_id="R", job_key="k", config={"sql": {"source": "SELECT :a", "queryId": None}},
                              sql_catalog="c", sql_schema="s", overrides={"namedParameters": {"a": 1}}, **paths)
    assert (sql.job_type, sql.sql, sql.sql_file, sql.named_parameters) == ("sql", "SELECT :a", None, {"a": "1"})
    saved = RunSpec.from_config(run_id="R", job_key="k", config={"sql": {"queryId": "Q"}}, sql="SELECT 1", **paths)
    assert saved.sql == "SELECT 1"
    from_repo = RunSpec.from_config(run_id="R", job_key="k", config={"sql": {"source": "etl/daily.sql"}},
                                    source_config={"url": "u", "reference": {"type": "tag", "value": "v1"}}, **paths)
    assert (from_repo.sql, from_repo.sql_file) == (None, "etl/daily.sql")
    assert from_repo.source_config == SourceConfig("u", "tag", "v1")
    python = RunSpec.from_config(
        run_id="R", job_key="k", timeout_seconds=60,
        config={"python": {"source": "print(1)", "parameters": [["--name=job", "one", "two"]],
                           "namedParameters": {"a": "1", "b": "2"}}},
        overrides={"parameters": [["three"]], "namedParameters": {"b": "3"}}, **paths)
    assert python.job_type == "python" and python.timeout_seconds == 60
    assert python.argv == ["--a=1", "--b=3", "three"]
    with pytest.raises(RunSpecError, match="exactly one"):
        RunSpec.from_config(run_id="R", job_key="k", config={}, **paths)
