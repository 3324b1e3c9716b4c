"""The job-run execution engine: one run = one process on this machine, talking to Sail.

No database and no HTTP here; the dispatcher builds a `RunSpec`, calls `prepare_source` (git),
then `start_run`, records `RunningProcess.pid` and awaits `wait()` for the `Outcome`.

- Every run is a separate process in its own session (process group id = pid) with
  `SPARK_REMOTE=sc://host:port`, `SAILPLANE_RUN_ID`, `SAILPLANE_JOB_KEY` and
  `SAILPLANE_OUTPUT_PATH` set, stdout and stderr appended to the run's log. SQL runs execute the
  driver (`sailplane/workloads/runs/driver.py`, standard library and PySpark only) as `sql`; Python runs
  execute the user's file, or the driver's entry mode for `entryPoint`/`packageName`, all with the
  interpreter of the run's Spark line (`RunSpec.python`, the same as its Sail server's), which has
  PySpark but not the control plane: the driver runs as a file (`python -P driver.py`), so nothing
  of ours is importable and its directory does not shadow user modules.
- Whatever stops a run (exit, timeout, cancel) ends with the whole process group killed, so a
  job's background children never outlive it (unless they leave the group with `setsid`).
- After a control-plane crash the processes keep running, unowned. `find_process` tells from
  `/proc/<pid>/environ` whether a pid still is a given run (a reused pid never matches) and
  `kill_orphan` stops it (by pid, or by searching for the run id when the pid was never saved).
- With a `Sandbox` (always, from the dispatcher), the process runs confined as the workload user:
  it sees its work directory and the parent of its output directory (writable), its libraries
  (readable) and the Python environment, nothing else of the host; see `compute.sandbox`.

Arguments of Python runs: `namedParameters` first, as `--key=value` in the given order, then
every inner list of `parameters` concatenated in order (`[["--name=job", "one"], ["two"]]` gives
`--name=job one two`). SQL runs bind `namedParameters` to `:name` markers and ignore `parameters`.

`python.source`: with a `sourceConfig` it is a path inside the checkout (a `.py` file, or a `.whl`
put on `PYTHONPATH` for `entryPoint`/`packageName`); without one it is inline Python code. For SQL
jobs with a `sourceConfig`, a `sql.source` that is a single word ending in `.sql` is a file in the
checkout; otherwise it is the SQL text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sailplane.compute.processes import (
    environ_value,
    group_alive,
    group_of,
    proc_pids,
    proc_stat,
    process_running,
    signal_group,
)
from sailplane.compute.sandbox import Mounts, Sandbox, exit_status, workload_environment
from sailplane.workloads.runs.sources import DEFAULT_TIMEOUT as SOURCE_TIMEOUT
from sailplane.workloads.runs.sources import SourceConfig, SourceError, checkout

__all__ = [
    "ExecutionError",
    "LogChunk",
    "Outcome",
    "RunSpec",
    "RunSpecError",
    "RunningProcess",
    "SourceConfig",
    "SourceError",
    "find_process",
    "find_run_processes",
    "kill_orphan",
    "prepare_source",
    "read_log",
    "remove_work_dir",
    "start_run",
]

RUN_MARKER = "SAILPLANE_RUN_ID"
DRIVER = Path(__file__).resolve().with_name("driver.py")
JobType = Literal["sql", "python"]
Status = Literal["succeeded", "failed", "timeout", "cancelled"]

# The control plane's own configuration (database URL, secret keys) and Sail settings of the
# server process must not reach user code.
_STRIPPED_ENV_PREFIXES = ("SAILPLANE_", "SAIL_")
_STRIPPED_ENV_NAMES = {"SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED"}
_MESSAGE_TAIL_LINES = 20
_MESSAGE_TAIL_BYTES = 4000
_LOG_CHUNK = 1 << 20


class ExecutionError(RuntimeError):
    """A run could not be started."""


class RunSpecError(ExecutionError, ValueError):
    """The spec does not describe something runnable (no SQL, a missing file, a path outside the checkout)."""


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to execute one attempt of a run. Paths should be absolute.

    `work_dir` is private to the run (checkout in `work_dir/source`, generated files);
    `output_dir` receives the results (`SAILPLANE_OUTPUT_PATH`); `log_path` is appended to.
    """

    run_id: str
    job_key: str
    job_type: JobType
    work_dir: Path
    output_dir: Path
    log_path: Path
    sql: str | None = None  # inline SQL, or the resolved saved query
    sql_file: str | None = None  # a .sql file inside the checkout (needs source_config)
    sql_catalog: str | None = None
    sql_schema: str | None = None
    python_source: str | None = None  # a path in the checkout with source_config, else inline code
    package_name: str | None = None
    entry_point: str | None = None  # `module:function` or a console-script name
    parameters: Sequence[Sequence[str]] = ()
    named_parameters: Mapping[str, str] = field(default_factory=dict)
    source_config: SourceConfig | None = None
    timeout_seconds: float | None = None  # None or 0: no limit
    env: Mapping[str, str] = field(default_factory=dict)  # extra variables (cannot override ours)
    spark_conf: Mapping[str, str] = field(default_factory=dict)  # SQL runs: Spark session config
    python: str | None = None  # interpreter of the run's Spark line; defaults to the control plane's own

    @property
    def source_dir(self) -> Path:
        return self.work_dir / "source"

    @property
    def argv(self) -> list[str]:
        """Arguments for a Python run (see the module docstring for the order)."""
        named = [f"--{key}={value}" for key, value in self.named_parameters.items()]
        return named + [str(arg) for group in self.parameters for arg in group]

    @classmethod
    def from_config(
        cls,
        *,
        run_id: str,
        job_key: str,
        config: Mapping[str, Any],
        work_dir: Path,
        output_dir: Path,
        log_path: Path,
        sql: str | None = None,
        sql_catalog: str | None = None,
        sql_schema: str | None = None,
        source_config: Mapping[str, Any] | SourceConfig | None = None,
        timeout_seconds: float | None = None,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        spark_conf: Mapping[str, str] | None = None,
    ) -> RunSpec:
        """A spec from a job version's `config` JSON (`{"sql": {...}}` or `{"python": {...}}`).

        `sql` is the text to run when the caller resolved `config.sql.queryId` (it wins over
        `config.sql.source`). `overrides` is a run's `{"parameters": [[...]], "namedParameters":
        {...}}`: given `parameters` replace the job's; `namedParameters` are merged over the job's.
        """
        source = SourceConfig.from_json(source_config) if isinstance(source_config, Mapping) else source_config
        common: dict[str, Any] = dict(
            run_id=run_id, job_key=job_key, work_dir=work_dir, output_dir=output_dir, log_path=log_path,
            source_config=source, timeout_seconds=timeout_seconds, env=dict(env or {}),
            spark_conf=dict(spark_conf or {}),
        )
        python_cfg = config.get("python")
        sql_cfg = config.get("sql")
        if sql_cfg is not None and python_cfg is None:
            text = sql if sql is not None else sql_cfg.get("source")
            sql_file = None
            if text and source is not None and text.strip().endswith(".sql") and len(text.split()) == 1:
                sql_file, text = text.strip(), None
            named = dict(sql_cfg.get("namedParameters") or {})
            if overrides and overrides.get("namedParameters"):
                named.update(overrides["namedParameters"])
            return cls(job_type="sql", sql=text, sql_file=sql_file, sql_catalog=sql_catalog, sql_schema=sql_schema,
                       named_parameters={str(k): str(v) for k, v in named.items()}, **common)
        if python_cfg is not None and sql_cfg is None:
            parameters = python_cfg.get("parameters") or []
            named = dict(python_cfg.get("namedParameters") or {})
            if overrides:
                if overrides.get("parameters") is not None:
                    parameters = overrides["parameters"]
                if overrides.get("namedParameters"):
                    named.update(overrides["namedParameters"])
            return cls(job_type="python", python_source=python_cfg.get("source") or None,
                       package_name=python_cfg.get("packageName") or None,
                       entry_point=python_cfg.get("entryPoint") or None,
                       parameters=[[str(a) for a in group] for group in parameters],
                       named_parameters={str(k): str(v) for k, v in named.items()}, **common)
        raise RunSpecError("config must have exactly one of 'sql' and 'python'")


@dataclass(frozen=True)
class Outcome:
    status: Status
    exit_code: int | None  # negative: killed by that signal
    message: str | None  # why it did not succeed, with the tail of the log
    runner_started_at: datetime
    runner_completed_at: datetime
    runner_execution_time_us: int
    output_path: str | None  # the output directory, when the run wrote one


@dataclass(frozen=True)
class LogChunk:
    text: str
    next_offset: int  # pass back to continue; equals the file size when everything was read


# --- source ---------------------------------------------------------------------------------------


async def prepare_source(spec: RunSpec, *, timeout: float = SOURCE_TIMEOUT,
                         sandbox: Sandbox | None = None) -> str | None:
    """Clone the spec's `source_config` into `spec.source_dir` (`<work_dir>/source`, replacing an
    earlier checkout) and return the commit SHA (the run's `snapshotCommit`); None when the job
    has no source config. Git's messages are appended to the run's log. Raises SourceError with a
    readable message (never a URL's credentials)."""
    source = spec.source_config
    if source is None:
        return None
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)

    def run() -> str:
        with open(spec.log_path, "ab") as log:
            log.write(f"--- sailplane: checking out {source.describe()}\n".encode())
            log.flush()
            try:
                sha = checkout(source, spec.source_dir, log=log, timeout=timeout, sandbox=sandbox)
            except SourceError as exc:
                log.write(f"--- sailplane: {exc}\n".encode())
                raise
            log.write(f"--- sailplane: checked out commit {sha}\n".encode())
            return sha

    return await asyncio.to_thread(run)


def remove_work_dir(spec: RunSpec) -> None:
    """Delete the run's work directory (checkout, generated files); the output and log stay."""
    shutil.rmtree(spec.work_dir, ignore_errors=True)


# --- starting -------------------------------------------------------------------------------------


def spark_remote_url(address: str) -> str:
    """`host:port` (InstanceHandle.address) → `sc://host:port`; an `sc://` URL passes through."""
    return address if address.startswith("sc://") else f"sc://{address}"


def _inside(base: Path, relative: str, what: str) -> Path:
    path = (base / relative).resolve()
    if not path.is_relative_to(base.resolve()):
        raise RunSpecError(f"{what} {relative!r} is outside the repository")
    if not path.is_file():
        raise RunSpecError(f"{what} {relative!r} does not exist in the repository")
    return path


def build_command(spec: RunSpec) -> tuple[list[str], Path, dict[str, str]]:
    """The command line, working directory and extra PYTHONPATH entries of a run (writes the
    generated files it needs into the work dir)."""
    python = spec.python or sys.executable
    spec.work_dir.mkdir(parents=True, exist_ok=True)
    checkout_dir = spec.source_dir if spec.source_config is not None else None
    if checkout_dir is not None and not checkout_dir.is_dir():
        raise RunSpecError("the source is not checked out: call prepare_source first")
    cwd = checkout_dir or spec.work_dir
    paths: list[str] = []
    if checkout_dir is not None:
        paths.append(str(checkout_dir))
        if (checkout_dir / "src").is_dir():
            paths.append(str(checkout_dir / "src"))  # the src layout

    if spec.job_type == "sql":
        sql_file = None
        if spec.sql_file:
            if checkout_dir is None:
                raise RunSpecError("a SQL file needs a sourceConfig")
            sql_file = str(_inside(checkout_dir, spec.sql_file, "SQL file"))
        elif not (spec.sql or "").strip():
            raise RunSpecError("the job has no SQL to run")
        driver_spec = {
            "sql": spec.sql, "sqlFile": sql_file, "catalog": spec.sql_catalog, "schema": spec.sql_schema,
            "output": str(spec.output_dir), "args": dict(spec.named_parameters), "conf": dict(spec.spark_conf),
        }
        spec_file = spec.work_dir / "sql-run.json"
        spec_file.write_text(json.dumps(driver_spec))
        return [python, "-P", str(DRIVER), "sql", str(spec_file)], cwd, {}  # no user code on the path

    if spec.job_type != "python":
        raise RunSpecError(f"unknown job type {spec.job_type!r}")
    source = spec.python_source
    if source and checkout_dir is None:  # inline code
        script = spec.work_dir / "main.py"
        script.write_text(source)
        return [python, str(script), *spec.argv], cwd, {"PYTHONPATH": ":".join(paths)}
    if source and checkout_dir is not None and source.endswith(".whl"):
        paths.insert(0, str(_inside(checkout_dir, source, "wheel")))
        source = None
    if source and checkout_dir is not None:
        script = _inside(checkout_dir, source, "Python source")
        return [python, str(script), *spec.argv], cwd, {"PYTHONPATH": ":".join(paths)}
    if not spec.entry_point and not spec.package_name:
        raise RunSpecError("a Python job needs a source, an entry point or a package name")
    command = [python, "-P", str(DRIVER), "entry", spec.entry_point or ""]
    if spec.package_name:
        command += ["--package", spec.package_name]
    return [*command, "--", *spec.argv], cwd, {"PYTHONPATH": ":".join(paths)}


def run_environment(spec: RunSpec, spark_remote: str, extra_paths: str = "", *,
                    confined: bool = False) -> dict[str, str]:
    if confined:
        env = workload_environment()
    else:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(_STRIPPED_ENV_PREFIXES) and k not in _STRIPPED_ENV_NAMES}
    env.update(spec.env)
    pythonpath = ":".join(p for p in (extra_paths, env.get("PYTHONPATH", "")) if p)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    env.update({
        "SPARK_REMOTE": spark_remote_url(spark_remote),
        "SAILPLANE_OUTPUT_PATH": str(spec.output_dir),
        "SAILPLANE_JOB_KEY": spec.job_key,
        RUN_MARKER: spec.run_id,
        "PYTHONUNBUFFERED": "1",  # so the log can be followed while the run is going
    })
    return env


async def start_run(spec: RunSpec, spark_remote: str, *, stop_grace: float = 5.0,
                    clean_output: bool = True, sandbox: Sandbox | None = None,
                    readable: tuple[Path, ...] = ()) -> RunningProcess:
    """Start the run's process and return at once (the process is running when this returns).

    `spark_remote` is the Sail server (`host:port` or `sc://...`). `stop_grace` is how long a
    timed-out or cancelled run gets between SIGTERM and SIGKILL. With `clean_output`, an output
    directory left by an earlier attempt is removed first, so the outcome's `output_path` is this
    attempt's. `sandbox` confines the process (None: unconfined, for tests of the engine itself);
    `readable` adds directories it may read (its libraries). Raises RunSpecError for a spec that
    cannot run, ExecutionError if the process cannot be started.
    """
    return await asyncio.to_thread(_start, spec, spark_remote, stop_grace, clean_output, sandbox, readable)


class LocalRunExecutor:
    """Run drivers as processes on this machine (`runs.executor.RunExecutor`), confined by `sandbox`
    (None: unconfined, for tests of the engine itself)."""

    def __init__(self, sandbox: Sandbox | None = None) -> None:
        self.sandbox = sandbox

    async def start(self, spec: RunSpec, spark_remote: str, *, stop_grace: float,
                    readable: tuple[Path, ...] = ()) -> RunningProcess:
        return await start_run(spec, spark_remote, stop_grace=stop_grace, sandbox=self.sandbox, readable=readable)

    async def stop_leftovers(self, pid: int | None, run_id: str, *, grace: float) -> bool:
        return await kill_orphan(pid, run_id, grace=grace)


def _start(spec: RunSpec, spark_remote: str, stop_grace: float, clean_output: bool, sandbox: Sandbox | None,
           readable: tuple[Path, ...]) -> RunningProcess:
    command, cwd, extra = build_command(spec)
    env = run_environment(spec, spark_remote, extra.get("PYTHONPATH", ""), confined=sandbox is not None)
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    if clean_output and spec.output_dir.is_dir():
        shutil.rmtree(spec.output_dir)
    spec.output_dir.parent.mkdir(parents=True, exist_ok=True)
    if sandbox is not None:
        sandbox.own(spec.work_dir, recursive=True)
        sandbox.own(spec.output_dir.parent)
        mounts = Mounts(readable=readable, writable=(spec.work_dir, spec.output_dir.parent))
        command = sandbox.command(command, cwd=cwd, mounts=mounts)
    with open(spec.log_path, "ab") as log:
        started_at = datetime.now(UTC)
        log.write(f"--- sailplane: run {spec.run_id} ({spec.job_type}) starting at "
                  f"{started_at.isoformat().replace('+00:00', 'Z')}\n".encode())
        log.flush()
        offset = log.tell()
        started_ns = time.monotonic_ns()
        try:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            log.write(f"--- sailplane: cannot start the run: {exc}\n".encode())
            raise ExecutionError(f"cannot start the run: {exc}") from exc
    return RunningProcess(spec, proc, started_at, started_ns, offset, stop_grace, confined=sandbox is not None)


# --- a running process ----------------------------------------------------------------------------


class RunningProcess:
    """A started run. `wait()` gives its Outcome; `cancel()` stops it; `read_log()` follows its log.

    All methods must be called from one event loop thread.
    """

    def __init__(self, spec: RunSpec, proc: subprocess.Popen[bytes], started_at: datetime, started_ns: int,
                 log_offset: int, stop_grace: float, *, confined: bool = False):
        self.spec = spec
        self.run_id = spec.run_id
        self.pid = proc.pid
        self.pgid = proc.pid  # start_new_session: the process leads its own group
        self.log_path = spec.log_path
        self.log_offset = log_offset  # where this attempt's output starts
        self.runner_started_at = started_at
        self.stop_grace = stop_grace
        self._proc = proc
        self._started_ns = started_ns
        self._reason: Status | None = None  # 'timeout' or 'cancelled' once we decided to stop it
        self._outcome: Outcome | None = None
        self._completed_ns: int | None = None
        self._completed_at: datetime | None = None
        self._timeout_limit: float | None = None
        self._stop_deadline: float | None = None  # when a stop's grace ends (monotonic), once stopping
        self._finish_lock = asyncio.Lock()
        self._confined = confined  # the leader is a sandbox launcher: it reports signals as 128 + N

    @property
    def running(self) -> bool:
        return self._outcome is None and not self._exited()

    @property
    def outcome(self) -> Outcome | None:
        return self._outcome

    def read_log(self, offset: int | None = None, limit: int = _LOG_CHUNK) -> LogChunk:
        """Log text from `offset` (default: where this attempt's output starts)."""
        return read_log(self.log_path, self.log_offset if offset is None else offset, limit)

    async def wait(self, timeout: float | None = None) -> Outcome:
        """Wait for the run to end. `timeout` (default: the spec's `timeout_seconds`; None in both
        means no limit) counts from the process start; when it passes, the process group is
        stopped and the outcome is 'timeout'."""
        limit = timeout if timeout is not None else self.spec.timeout_seconds
        if limit is not None and limit <= 0:
            limit = None  # 0 means no limit, like an absent timeoutSeconds
        deadline_ns = None if limit is None else self._started_ns + int(limit * 1e9)
        while self._outcome is None:
            remaining = None if deadline_ns is None else (deadline_ns - time.monotonic_ns()) / 1e9
            if remaining is not None and remaining <= 0 and self._reason is None:
                self._reason = "timeout"
                self._timeout_limit = limit
                self._note(f"timed out after {limit:g} s; stopping the run")
                await self._stop(self.stop_grace)
            elif await self._wait_exit(None if self._reason is not None else remaining):
                await self._finish()
        assert self._outcome is not None
        return self._outcome

    async def cancel(self, grace: float | None = None) -> None:
        """Stop the run (SIGTERM to its group, SIGKILL after `grace`, default `stop_grace`) and
        return once it is gone. The outcome is 'cancelled' unless the run had already ended."""
        if self._outcome is None and self._reason is None and not self._exited():
            self._reason = "cancelled"
            self._note("cancelled; stopping the run")
            await self._stop(self.stop_grace if grace is None else grace)
        else:
            await self._wait_exit(None)
            await self._finish()

    async def _stop(self, grace: float) -> None:
        self._stop_deadline = time.monotonic() + grace
        signal_group(self.pgid, signal.SIGTERM)
        if not await self._wait_exit(grace):
            signal_group(self.pgid, signal.SIGKILL)
            await self._wait_exit(None)
        await self._finish()

    def _mark_completed(self) -> None:
        if self._completed_ns is None:
            self._completed_ns = time.monotonic_ns()
            self._completed_at = datetime.now(UTC)

    def _exited(self) -> bool:
        """Whether the leader has exited, without reaping it (so its pid and group stay ours)."""
        if self._proc.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    async def _wait_exit(self, timeout: float | None) -> bool:
        """Wait up to `timeout` seconds (None: forever) for the leader to exit; True if it did."""
        if self._exited():
            return True
        if timeout is not None and timeout <= 0:
            return False
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(self.pid)
        except (OSError, AttributeError):
            fd = None
        if fd is None:  # no pidfd (old kernel): poll
            end = None if timeout is None else time.monotonic() + timeout
            delay = 0.005
            while not self._exited():
                if end is not None and time.monotonic() >= end:
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
            return True
        exited: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(fd, readable)
        try:
            await asyncio.wait_for(exited, timeout)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        return self._exited()

    async def _finish(self) -> None:
        """Kill what is left of the group, reap the leader and compute the outcome (once).

        While stopping, the group's processes first get the rest of their grace: in the sandbox the leader is
        bwrap's launcher, which exits at SIGTERM while the job may still be handling it (the job was killed at
        once, and a retried attempt could start while it ran on)."""
        async with self._finish_lock:
            if self._outcome is None:
                if self._stop_deadline is not None:
                    await self._wait_group_gone(self._stop_deadline - time.monotonic())
                self._mark_completed()
                if self._proc.returncode is None:
                    # The leader is a zombie until reaped, so the group id is still ours: clear stragglers.
                    signal_group(self.pgid, signal.SIGKILL)
                code = self._proc.wait()
                if not await self._wait_group_gone(10.0):
                    self._note(f"processes of group {self.pgid} still alive after SIGKILL")
                self._decide(exit_status(code) if self._confined else code)

    async def _wait_group_gone(self, timeout: float) -> bool:
        """Wait until no process of the group is alive (SIGKILL is delivered asynchronously, SIGTERM handled
        in the job's own time); the unreaped leader keeps the group id ours meanwhile. True if it is gone."""
        end = time.monotonic() + timeout
        delay = 0.002
        while group_alive(self.pgid):
            if time.monotonic() >= end:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        return True

    def _decide(self, code: int) -> None:
        assert self._completed_ns is not None and self._completed_at is not None
        message: str | None = None
        status: Status
        if self._reason == "cancelled":
            status, message = "cancelled", "the run was cancelled"
        elif self._reason == "timeout":
            limit = self._timeout_limit
            status = "timeout"
            message = "the run exceeded its timeout" + (f" of {limit:g} s" if limit is not None else "")
        elif code == 0:
            status = "succeeded"
        else:
            status = "failed"
            why = f"exit code {code}" if code > 0 else f"killed by {_signal_name(-code)}"
            tail = log_tail(self.log_path, self.log_offset)
            message = f"the run failed ({why})" + (f":\n{tail}" if tail else "")
        output = str(self.spec.output_dir) if self.spec.output_dir.exists() else None
        self._outcome = Outcome(
            status=status, exit_code=code, message=message, runner_started_at=self.runner_started_at,
            runner_completed_at=self._completed_at,
            runner_execution_time_us=(self._completed_ns - self._started_ns) // 1000, output_path=output,
        )
        self._note(f"run {status} (exit code {code})")

    def _note(self, text: str) -> None:
        with contextlib.suppress(OSError), open(self.log_path, "ab") as log:
            log.write(f"--- sailplane: {text}\n".encode())


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# --- logs -----------------------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, int]:
    """Decode UTF-8, leaving an incomplete character at the end for the next read."""
    try:
        return data.decode(), len(data)
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            return data[: exc.start].decode(errors="replace"), exc.start
        return data.decode(errors="replace"), len(data)


def read_log(path: Path, offset: int = 0, limit: int = _LOG_CHUNK) -> LogChunk:
    """Up to `limit` bytes of a run log from `offset` (works while the run is writing it)."""
    try:
        with open(path, "rb") as f:
            if max(0, offset) >= os.fstat(f.fileno()).st_size:  # past the end (seek would refuse a huge offset)
                return LogChunk("", max(0, offset))
            f.seek(max(0, offset))
            data = f.read(limit)
    except FileNotFoundError:
        return LogChunk("", max(0, offset))
    text, used = _decode(data)
    return LogChunk(text, max(0, offset) + used)


def log_tail(path: Path, offset: int = 0, lines: int = _MESSAGE_TAIL_LINES, limit: int = _MESSAGE_TAIL_BYTES) -> str:
    """The last lines of a log after `offset`, without our own `--- sailplane:` notes."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(offset, size - limit))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    kept = [line for line in text.splitlines() if not line.startswith("--- sailplane:")]
    return "\n".join(kept[-lines:]).strip()


# --- processes of a previous server ---------------------------------------------------------------


def _alive(pid: int) -> bool:
    return process_running(pid)


def _run_of(pid: int) -> str | None:
    return environ_value(pid, RUN_MARKER)


def find_process(pid: int | None, run_id: str) -> bool:
    """Whether `pid` is a live process of run `run_id` (its environment carries the run id)."""
    if pid is None or pid <= 0:
        return False
    return _alive(pid) and _run_of(pid) == run_id


def find_run_processes(run_id: str) -> list[int]:
    """Live processes of a run (the leader and anything it started that kept its environment)."""
    me = os.getpid()
    return [pid for pid in proc_pids() if pid != me and _alive(pid) and _run_of(pid) == run_id]


async def kill_orphan(pid: int | None, run_id: str, *, grace: float = 5.0) -> bool:
    """Stop a run's processes left by a previous server: SIGTERM, then SIGKILL after `grace`.

    With `pid` None (the server died before saving it), every process of the run is found by its
    environment. Only processes whose environment names `run_id` are touched, so a reused pid is
    safe. Returns whether anything was running.
    """
    return await asyncio.to_thread(_kill_orphan, pid, run_id, grace)


def _kill_orphan(pid: int | None, run_id: str, grace: float) -> bool:
    targets = [pid] if pid is not None else find_run_processes(run_id)
    targets = [p for p in targets if find_process(p, run_id)]
    if not targets:
        return False
    groups = {g for g in (group_of(p) for p in targets) if g is not None}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 30.0)):
        members = _members(groups, run_id) | {p for p in targets if find_process(p, run_id)}
        if not members:
            break
        for group in groups:
            if find_process(group, run_id):  # the leader is alive, so the group id is still the run's
                signal_group(group, sig)
        for member in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member, sig)
        deadline = time.monotonic() + wait
        delay = 0.01
        while (_members(groups, run_id) or any(find_process(p, run_id) for p in targets)) \
                and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    return True


def _members(groups: set[int], run_id: str) -> set[int]:
    """Live processes in `groups` that belong to the run (children that stayed in its group)."""
    if not groups:
        return set()
    found = set()
    for pid in proc_pids():
        stat = proc_stat(pid)
        if stat and stat[0] not in {"Z", "X"} and stat[1] in groups and _run_of(pid) == run_id:
            found.add(pid)
    return found
