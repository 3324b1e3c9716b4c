"""The run dispatcher: claims `ready` runs, gets each a Sail server, runs it through the execution
engine, and records every step. One per server process, on the runs runtime's event loop.

Claiming (two server processes can never start the same run):
- PostgreSQL: for each job with ready runs, the job row is locked (`FOR NO KEY UPDATE SKIP
  LOCKED`), its runs in dispatched/waiting_for_sail/running are counted against the current
  version's `maxConcurrentRuns`, and that many ready runs are taken with `FOR UPDATE SKIP LOCKED`.
  The job lock makes the count and the claim atomic across processes.
- SQLite: one conditional UPDATE per run (`... WHERE id = ? AND status = 'ready' AND (active runs
  of the job) < maxConcurrentRuns`); SQLite runs each such statement under its write lock, so the
  count and the claim are atomic too.
- A claimed run carries a lease (`lease_owner` = this process, `lease_expires_at`), renewed every
  second for all of this process's runs in one statement. A renewal that no longer finds the run
  held by us (cancelled, deleted, or taken over after our lease expired) stops its process.
- `ready` runs whose `lease_expires_at` lies in the future are not claimed before it: that is the
  backoff of automatic retries (a ready run holds no lease, so the column is free for it).

Sail servers (cluster LOCAL, the local compute backend that sessions use): a small pool of idle,
never-used instances per Sail settings (execution mode, catalog settings, extra properties) lets
a run start at once; a run that finds none waits in `waiting_for_sail` while one starts. A
settings' pool is filled when a run first needs it (a server that runs no jobs starts no Sail)
and dropped after `pool_idle_seconds` without runs. A used
instance is never given to another run (tables in Sail's in-memory catalogs, cached data and
settings would leak between runs, and between organizations); `resourceCleanupMode` decides when
it stops: `always` at the end of the run, `on_success` at the end of a successful run (after any
other outcome it is kept for debugging), `never` keeps it; kept instances are stopped by the idle
reaper after `retain_seconds` (or as soon as their run is deleted or retried; an attempt followed
by an automatic retry never keeps its instance), and `cleanedAt` is set when the run's instance
and work directory are gone.

Outcomes: `lakesail.maxRetries` retries failed and timed-out runs automatically (attempt + 1,
back to ready after a backoff of `retry_backoff * 2**attempt` seconds, at most a minute) while
`attempt < maxRetries`. Errors in the configuration (a deleted saved query, or one no longer
shared with any of the job's teams, likewise its catalog; a local catalog's warehouse outside the
storage root; an unknown cluster; a missing file) fail without retries.

Durability: on start, runs in dispatched/waiting_for_sail/running that a previous life of this
node held, or whose lease expired, have their leftover driver processes and Sail instance killed
and are retried (when attempts remain) or failed with "server stopped during the run"; expired
leases of other nodes are taken over the same way while running. A graceful stop requeues this
process's runs (`ready`, same attempt) after stopping their processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from sailplane.clusters.service import LOCAL_CLUSTER_ID
from sailplane.compute.backend import ComputeBackend, ExecutionMode, InstanceHandle, InstanceSpec
from sailplane.compute.environments import SparkEnvError, SparkEnvironments
from sailplane.compute.libraries import LibraryInstaller, LibraryInstallError, digest, libraries_from_api
from sailplane.compute.local import INSTANCE_MARKER, group_alive
from sailplane.compute.sandbox import Sandbox
from sailplane.data.models import Catalog, Query
from sailplane.data.providers import LocalStorage, StorageError
from sailplane.data.service import CATALOGS, QUERIES, sail_catalog_settings, sail_spark_conf, shared_with
from sailplane.jobs.models import Job, JobTeam, JobVersion
from sailplane.kit.clock import utcnow
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from sailplane.runs import files, states
from sailplane.runs.execution import (
    Outcome,
    RunningProcess,
    RunSpec,
    RunSpecError,
    SourceError,
    kill_orphan,
    log_tail,
    prepare_source,
    remove_work_dir,
    start_run,
)
from sailplane.runs.models import JobRun
from sailplane.runs.states import (
    CANCELLED,
    DISPATCHED,
    FAILED,
    LEASED_STATES,
    READY,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
    TIMEOUT,
    WAITING_FOR_SAIL,
)

log = logging.getLogger(__name__)

SERVER_STOPPED = "server stopped during the run"
_MESSAGE_LIMIT = 8000
# config.lakesail keys that are ours, not Sail settings.
_LAKESAIL_KEYS = {"executionMode", "maxRetries", "lakesailImageUri", "libraries", "resourceCleanupMode",
                  "sparkVersion"}


@dataclass(frozen=True)
class RunnerConfig:
    poll_interval: float = 0.5  # how often ready runs created elsewhere (other processes) are looked for
    lease_seconds: float = 10.0
    renew_interval: float = 1.0
    max_parallel: int = 8  # runs executing at once in this process
    pool_size: int = 1  # idle Sail instances kept ready per recently used settings (0: no pool)
    pool_idle_seconds: float = 600.0  # a settings' pool is dropped after this long without runs
    retain_seconds: float = 600.0  # instances kept by on_success/never are stopped after this long
    retry_backoff: float = 2.0
    stop_grace: float = 5.0
    sail_start_timeout: float = 120.0
    max_workers: int = 8  # cap of Sail workers for executionMode cluster

    @classmethod
    def from_settings(cls, settings: Any) -> RunnerConfig:
        """`SAILPLANE_RUNS_<NAME>` environment variables, or `runs_<name>` in `settings.extra`."""
        values: dict[str, Any] = {}
        extra = getattr(settings, "extra", {}) or {}
        for name, spec in cls.__dataclass_fields__.items():
            raw = extra.get(f"runs_{name}") or os.environ.get(f"SAILPLANE_RUNS_{name.upper()}")
            if raw is None or raw == "":
                continue
            values[name] = int(raw) if spec.type in ("int", int) else float(raw)
        values.setdefault("sail_start_timeout", float(getattr(settings, "compute_start_timeout_seconds", 120.0)))
        values.setdefault("max_workers", int(getattr(settings, "local_max_workers", 8)))
        return cls(**values)


class PlanError(Exception):
    """The run cannot be executed as configured (no retry helps)."""


@dataclass
class Plan:
    """Everything one attempt needs, read from the database at its start."""

    run_id: str
    job_id: str
    job_key: str
    attempt: int
    cleanup_mode: str
    max_retries: int
    config: dict[str, Any]
    overrides: dict[str, Any] | None
    source_config: dict[str, Any] | None
    snapshot_commit: str | None
    timeout_seconds: int | None
    sql: str | None = None
    sql_catalog: str | None = None
    sql_schema: str | None = None
    spark_conf: dict[str, str] = field(default_factory=dict)
    instance: InstanceSpec = field(default_factory=lambda: InstanceSpec(instance_id="template"))


@dataclass
class LiveRun:
    """A run this process holds the lease of."""

    run_id: str
    lost: str | None = None  # why we no longer own it: cancelled, deleted, taken over
    finishing: bool = False
    process: RunningProcess | None = None
    instance: InstanceHandle | None = None
    instance_id: str | None = None
    output: tuple[Path, Path] | None = None  # (where the instance writes results, where they are kept)


@dataclass
class Retained:
    handle: InstanceHandle
    run_id: str
    work_dir: Path
    until: float


# --- Sail instance pool -----------------------------------------------------------------------

def settings_key(template: InstanceSpec) -> str:
    data = {"mode": template.execution_mode, "workers": template.workers, "settings": template.settings,
            "env": template.extra_env, "libraries": digest(template.libraries), "storage": list(template.storage),
            "spark": template.spark_version}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def instance_id_for_run() -> str:
    return f"run-{new_id()}"


class SailPool:
    """Idle, never-used Sail instances per settings key. Only the event loop touches it.

    A run that finds no idle instance takes one the pool is still starting, if no other run has
    been promised it (`promise`), so the first run of new settings starts one Sail server, not two
    (the pool's and its own); the pool refills once it has handed it over."""

    def __init__(self, backend: ComputeBackend, config: RunnerConfig) -> None:
        self.backend = backend
        self.config = config
        self.idle: dict[str, list[InstanceHandle]] = {}
        self.templates: dict[str, InstanceSpec] = {}
        self.last_used: dict[str, float] = {}
        self.warming: dict[str, int] = {}
        self.promised: dict[str, list[asyncio.Future[InstanceHandle]]] = {}  # runs waiting for a warming one
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def want(self, template: InstanceSpec) -> str:
        key = settings_key(template)
        self.templates[key] = template
        self.last_used[key] = time.monotonic()
        self.refill(key)
        return key

    def take(self, key: str) -> InstanceHandle | None:
        handles = self.idle.get(key) or []
        while handles:
            handle = handles.pop(0)
            # A process check only (microseconds): a pooled instance answered health checks when it started.
            if _alive(handle.pid):
                self.refill(key)
                return handle
        self.refill(key)
        return None

    def promise(self, key: str) -> asyncio.Future[InstanceHandle] | None:
        """An instance of the pool still starting that no other run waits for, as a future; None if none."""
        waiting = [f for f in self.promised.get(key, []) if not f.done()]
        self.promised[key] = waiting
        if self.closed or self.warming.get(key, 0) <= len(waiting):
            return None
        future: asyncio.Future[InstanceHandle] = asyncio.get_running_loop().create_future()
        waiting.append(future)
        return future

    def put_back(self, key: str, handle: InstanceHandle) -> None:
        """An instance handed to a run that was cancelled before it used it: still never used."""
        self._deliver(key, handle)

    def _deliver(self, key: str, handle: InstanceHandle) -> None:
        for future in self.promised.get(key, []):
            if not future.done():
                future.set_result(handle)
                self.refill(key)  # the pool keeps pool_size idle ones besides the one handed over
                return
        self.idle.setdefault(key, []).append(handle)

    def _broken(self, key: str, exc: Exception) -> None:
        """A start failed: runs promised more instances than are still starting learn why."""
        waiting = [f for f in self.promised.get(key, []) if not f.done()]
        for future in waiting[self.warming.get(key, 0):]:
            future.set_exception(exc)

    def refill(self, key: str) -> None:
        if self.closed or self.config.pool_size <= 0 or key not in self.templates:
            return
        missing = self.config.pool_size - len(self.idle.get(key, [])) - self.warming.get(key, 0)
        for _ in range(max(0, missing)):
            self.warming[key] = self.warming.get(key, 0) + 1
            task = asyncio.get_running_loop().create_task(self._warm(key))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _warm(self, key: str) -> None:
        template = self.templates[key]
        spec = replace(template, instance_id=instance_id_for_run())
        try:
            handle = await self.backend.start(spec, timeout=self.config.sail_start_timeout)
        except asyncio.CancelledError:
            self.warming[key] = max(0, self.warming.get(key, 1) - 1)
            raise
        except Exception as exc:  # a run promised it reports the error; later ones start their own
            log.warning("warming a Sail instance failed: %s", str(exc)[:500])
            self.warming[key] = max(0, self.warming.get(key, 1) - 1)
            self._broken(key, exc)
            return
        self.warming[key] = max(0, self.warming.get(key, 1) - 1)
        if self.closed:
            await self.backend.stop(handle, grace=2.0)
            return
        self._deliver(key, handle)

    async def reap(self) -> None:
        """Drop the pools of settings no run used for pool_idle_seconds."""
        now = time.monotonic()
        for key, used in list(self.last_used.items()):
            if now - used < self.config.pool_idle_seconds:
                continue
            handles = self.idle.pop(key, [])
            self.last_used.pop(key, None)
            self.templates.pop(key, None)
            for handle in handles:
                with contextlib.suppress(Exception):
                    await self.backend.stop(handle, grace=2.0)

    async def close(self) -> None:
        self.closed = True
        for future in [f for fs in self.promised.values() for f in fs]:
            future.cancel()
        self.promised.clear()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=30)
        handles = [h for hs in self.idle.values() for h in hs]
        self.idle.clear()
        await asyncio.gather(*(self.backend.stop(h, grace=2.0) for h in handles), return_exceptions=True)


# --- processes on this machine ------------------------------------------------------------------

def _environ_value(pid: int, name: str) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    prefix = name.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2:][:1]
    return state not in (b"Z", b"X", b"")


def kill_instance_processes(instance_id: str, grace: float = 5.0) -> bool:
    """Stop the Sail server of `instance_id` whichever node started it (its environment names the
    instance): SIGTERM to its process group, SIGKILL after `grace`. Blocking."""
    me = os.getpid()
    pids = [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) != me]
    targets = [p for p in pids if _alive(p) and _environ_value(p, INSTANCE_MARKER) == instance_id]
    if not targets:
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while any(_alive(p) or group_alive(p) for p in targets) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not any(_alive(p) or group_alive(p) for p in targets):
            break
    return True


# --- the dispatcher -----------------------------------------------------------------------------

def _clip(message: str | None) -> str | None:
    if message is None or len(message) <= _MESSAGE_LIMIT:
        return message
    return message[: _MESSAGE_LIMIT - 1] + "…"


class RunDispatcher:
    def __init__(self, db: Database, backend: ComputeBackend, *, data_dir: Path, node: str, secret_key: str,
                 config: RunnerConfig | None = None, sandbox: Sandbox | None = None,
                 warehouse_root: Path | None = None, environments: SparkEnvironments | None = None) -> None:
        self.db = db
        self.backend = backend
        self.data_dir = data_dir
        # Local catalogs' warehouses must lie below this root (Settings.warehouse_root); checked per run.
        self.storage = LocalStorage(warehouse_root or Path(data_dir) / "warehouses", Path(data_dir))
        self.config = config or RunnerConfig()
        self.sandbox = sandbox  # confines drivers and library installs like the backend's Sail servers
        self.libraries = LibraryInstaller(Path(data_dir).resolve() / "libraries", sandbox=sandbox)
        # A run's driver runs the Python of its Spark line, like its Sail server.
        self.environments = environments or SparkEnvironments()
        # lease_owner = "<node tag>:<this process's life>": the tag says which node, the suffix which start.
        self.node_tag = hashlib.sha256(node.encode()).hexdigest()[:16]
        self.owner = f"{self.node_tag}:{new_id()}"
        self.encryptor = Encryptor(secret_key)
        self.is_postgres = db.url.startswith("postgresql")
        self.pool = SailPool(backend, self.config)
        self.live: dict[str, LiveRun] = {}
        self.retained: dict[str, Retained] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: list[asyncio.Task[None]] = []
        self._running = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what a previous life left, warm the default Sail pool, then claim runs."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await self._recover(on_start=True)
        self._running = True
        self._main = [asyncio.create_task(self._claim_loop(), name="run-dispatcher"),
                      asyncio.create_task(self._renew_loop(), name="run-leases"),
                      asyncio.create_task(self._housekeeping_loop(), name="run-housekeeping")]

    async def stop(self) -> None:
        """Stop claiming, stop this process's runs and requeue them, stop every Sail instance we own."""
        self._running = False
        for task in self._main:
            task.cancel()
        for task in self._main:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for live in list(self.live.values()):
            if live.lost is None:
                live.lost = "stopping"
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=60)
        await self.pool.close()
        retained = list(self.retained.items())
        self.retained.clear()
        for instance_id, kept in retained:
            await self._stop_instance(kept.handle)
            remove_work_dir_path(kept.work_dir)
            await asyncio.to_thread(self._db_cleaned, kept.run_id, instance_id)

    def wake(self) -> None:
        """Look for ready runs now (call on the loop; see RunRuntime.notify from other threads)."""
        if self._wake is not None:
            self._wake.set()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- loops ------------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
            self._wake.clear()
            try:
                capacity = self.config.max_parallel - len(self.live)
                if capacity <= 0:
                    continue
                claimed, busy = await asyncio.to_thread(self._db_claim, capacity)
                for run_id in claimed:
                    self.live[run_id] = LiveRun(run_id)
                    self._spawn(self._execute(run_id), f"run-{run_id}")
                if busy:  # a job row was locked by someone else: look again very soon
                    self._loop.call_later(0.05, self.wake)  # type: ignore[union-attr]
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming job runs failed")

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.renew_interval)
            try:
                held = [r for r in self.live.values() if r.lost is None and not r.finishing]
                if not held:
                    continue
                lost = await asyncio.to_thread(self._db_renew, [r.run_id for r in held])
                for run_id, why in lost.items():
                    live = self.live.get(run_id)
                    if live is None or live.finishing or live.lost is not None:
                        continue
                    live.lost = why
                    log.info("job run %s: %s; stopping it", run_id, why)
                    if live.process is not None:
                        self._spawn(live.process.cancel(self.config.stop_grace), f"cancel-{run_id}")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renewing job run leases failed")

    async def _housekeeping_loop(self) -> None:
        interval = max(1.0, min(self.config.lease_seconds / 2, 5.0))
        while True:
            await asyncio.sleep(interval)
            try:
                await self._recover(on_start=False)
                await self._reap_retained()
                await self.pool.reap()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job run housekeeping failed")

    # -- executing one run ------------------------------------------------------------------------

    async def _execute(self, run_id: str) -> None:
        live = self.live[run_id]
        plan: Plan | None = None
        outcome: Outcome | None = None
        error: str | None = None
        retryable = True
        stopping = False
        try:
            try:
                plan = await asyncio.to_thread(self._db_plan, run_id)
            except PlanError as exc:
                error, retryable = str(exc), False
            if plan is not None and live.lost is None:
                outcome, error, retryable = await self._attempt(plan, live)
        except asyncio.CancelledError:
            stopping = True  # the server is stopping: requeue below
        except Exception as exc:
            log.exception("job run %s failed in the dispatcher", run_id)
            error = f"internal error while executing the run: {type(exc).__name__}: {exc}"
        try:
            await asyncio.shield(self._finish(live, plan, outcome, error, retryable, stopping))
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("recording the end of job run %s failed", run_id)
        finally:
            self.live.pop(run_id, None)
            self.wake()  # the job may have a queued run waiting for this one's slot

    def _spec(self, plan: Plan) -> RunSpec:
        return RunSpec.from_config(
            run_id=plan.run_id, job_key=plan.job_key, config=plan.config,
            work_dir=files.work_dir(self.data_dir, plan.run_id),
            output_dir=files.output_dir(self.data_dir, plan.job_key, plan.run_id),
            log_path=files.log_path(self.data_dir, plan.run_id), sql=plan.sql, sql_catalog=plan.sql_catalog,
            sql_schema=plan.sql_schema, source_config=plan.source_config, timeout_seconds=plan.timeout_seconds,
            overrides=plan.overrides, spark_conf=plan.spark_conf,
            env={"SAILPLANE_RUN_ATTEMPT": str(plan.attempt)},  # 0 first; job code cannot keep state across attempts
        )

    async def _attempt(self, plan: Plan, live: LiveRun) -> tuple[Outcome | None, str | None, bool]:
        """Source, Sail, process; (outcome, error before the process ran, whether retrying may help)."""
        try:
            spec = self._spec(plan)
        except RunSpecError as exc:
            return None, str(exc), False
        if plan.snapshot_commit and spec.source_config is not None:
            spec = replace(spec, source_config=replace(spec.source_config, snapshot_commit=plan.snapshot_commit))
        shutil.rmtree(spec.output_dir, ignore_errors=True)  # an earlier attempt's partial output
        sail = asyncio.get_running_loop().create_task(self._acquire(plan, live))
        try:
            if spec.source_config is not None:
                try:
                    commit = await prepare_source(spec, sandbox=self.sandbox)
                except SourceError as exc:
                    return None, f"checking out the source failed: {exc}", True
                if commit:
                    await asyncio.to_thread(self._db_record_commit, plan.run_id, commit)
            handle = await sail
        finally:
            if not sail.done():
                sail.cancel()
                with contextlib.suppress(BaseException):
                    await sail
        if isinstance(handle, str):
            return None, handle, True
        if live.lost is not None:
            return None, None, False
        readable: tuple[Path, ...] = ()
        try:  # the Sail server installed both already: its driver runs the same Python and imports the same
            spark = await self.environments.ensure(plan.instance.spark_version)
            site = await self.libraries.install(plan.instance.libraries, spark)
        except (SparkEnvError, LibraryInstallError) as exc:
            return None, str(exc), True
        spec = replace(spec, python=spark.python)
        if site is not None:
            spec = replace(spec, env={**spec.env, "PYTHONPATH": str(site)})
            readable = (site,)
        # Sail (confined to its own directories) writes the results inside its work directory; they
        # move to the run's output directory when the run ends.
        live.output = (self.backend.output_dir(handle) / "result", spec.output_dir)
        spec = replace(spec, output_dir=live.output[0])
        try:
            process = await start_run(spec, handle.address, stop_grace=self.config.stop_grace, sandbox=self.sandbox,
                                      readable=readable)
        except RunSpecError as exc:
            return None, str(exc), False
        live.process = process
        started = await asyncio.to_thread(self._db_running, plan.run_id, process, live.instance_id)
        if not started and live.lost is None:
            live.lost = "cancelled"  # it changed between the claim and now
        if live.lost is not None:
            await process.cancel(self.config.stop_grace)
        return await process.wait(), None, True

    async def _acquire(self, plan: Plan, live: LiveRun) -> InstanceHandle | str:
        """A Sail server for the run: an idle pooled one, else a new one (waiting_for_sail)."""
        key = self.pool.want(plan.instance)
        handle = self.pool.take(key)
        promised = self.pool.promise(key) if handle is None else None
        if promised is not None:  # the pool is starting one (first run of these settings): that one is ours
            await asyncio.to_thread(self._db_transition, plan.run_id, WAITING_FOR_SAIL, (DISPATCHED,), {})
            try:
                handle = await promised
            except asyncio.CancelledError:
                if promised.done() and not promised.cancelled() and promised.exception() is None:
                    self.pool.put_back(key, promised.result())
                raise
            except Exception as exc:
                return f"the Sail server could not start: {exc}"
        if handle is not None:
            live.instance, live.instance_id = handle, handle.instance_id
            return handle
        instance_id = instance_id_for_run()
        live.instance_id = instance_id
        await asyncio.to_thread(self._db_transition, plan.run_id, WAITING_FOR_SAIL, (DISPATCHED,),
                                {"instance_id": instance_id})
        template = plan.instance
        spec = replace(template, instance_id=instance_id)
        try:
            handle = await self.backend.start(spec, timeout=self.config.sail_start_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return f"the Sail server could not start: {exc}"
        live.instance = handle
        return handle

    async def _finish(self, live: LiveRun, plan: Plan | None, outcome: Outcome | None, error: str | None,
                      retryable: bool, stopping: bool) -> None:
        live.finishing = True
        run_id = live.run_id
        if live.process is not None and live.process.outcome is None:
            await live.process.cancel(self.config.stop_grace)
            outcome = live.process.outcome
        lost = live.lost
        if stopping or lost == "stopping":
            await self._release_resources(live, plan, keep=False)
            await asyncio.to_thread(self._db_requeue, run_id)
            return
        if lost in ("deleted", "taken over"):
            await self._release_resources(live, plan, keep=False)
            return
        outcome = await asyncio.to_thread(_collect_output, live.output, outcome)
        status, message = self._result(outcome, error)
        if lost == "cancelled":
            status = CANCELLED
        retry_in = None
        if (plan is not None and status in (FAILED, TIMEOUT) and retryable
                and plan.attempt < plan.max_retries and lost is None):
            retry_in = min(60.0, self.config.retry_backoff * (2 ** plan.attempt))
        keep = plan is not None and status != SUCCEEDED and plan.cleanup_mode in ("on_success", "never")
        keep = keep or (plan is not None and plan.cleanup_mode == "never")
        if retry_in is not None:  # only the last attempt's instance is ever kept for debugging
            await self._release_resources(live, plan, keep=False)
            assert plan is not None
            await asyncio.to_thread(self._db_retry_later, run_id, plan.attempt, status, message, retry_in)
            return
        await asyncio.to_thread(self._db_final, run_id, status, message, outcome, lost == "cancelled")
        cleaned = await self._release_resources(live, plan, keep=keep)
        if cleaned:
            await asyncio.to_thread(self._db_cleaned, run_id, live.instance_id)

    @staticmethod
    def _result(outcome: Outcome | None, error: str | None) -> tuple[str, str | None]:
        if outcome is not None:
            return outcome.status, outcome.message
        return FAILED, error or "the run did not start"

    async def _release_resources(self, live: LiveRun, plan: Plan | None, *, keep: bool) -> bool:
        """Stop the run's Sail instance and remove its work directory, or keep both for the idle
        reaper; True when everything is gone."""
        work = files.work_dir(self.data_dir, live.run_id)
        if keep and live.instance is not None:
            self.retained[live.instance.instance_id] = Retained(
                live.instance, live.run_id, work, time.monotonic() + self.config.retain_seconds)
            return False
        if live.instance is not None:
            await self._stop_instance(live.instance)
        elif live.instance_id is not None:  # a start that was abandoned half-way
            await asyncio.to_thread(kill_instance_processes, live.instance_id, 2.0)
        await asyncio.to_thread(remove_work_dir_path, work)
        return True

    async def _stop_instance(self, handle: InstanceHandle) -> None:
        try:
            await self.backend.stop(handle, grace=self.config.stop_grace)
        except Exception:
            log.exception("stopping Sail instance %s failed", handle.instance_id)

    async def _reap_retained(self) -> None:
        if not self.retained:
            return
        now = time.monotonic()
        current = await asyncio.to_thread(self._db_instances_in_use, [k.run_id for k in self.retained.values()])
        for instance_id, kept in list(self.retained.items()):
            if now < kept.until and current.get(kept.run_id) == instance_id:
                continue
            self.retained.pop(instance_id, None)
            await self._stop_instance(kept.handle)
            await asyncio.to_thread(remove_work_dir_path, kept.work_dir)
            await asyncio.to_thread(self._db_cleaned, kept.run_id, instance_id)

    # -- recovery -----------------------------------------------------------------------------

    async def _recover(self, *, on_start: bool) -> None:
        """Runs whose holder is gone: a previous life of this node (on start), or an expired lease."""
        orphans = await asyncio.to_thread(self._db_orphans, on_start)
        for run_id, pid, instance_id in orphans:
            await kill_orphan(pid, run_id, grace=2.0)
            await kill_orphan(None, run_id, grace=2.0)  # anything of the run that escaped the group
            if instance_id:
                await asyncio.to_thread(kill_instance_processes, instance_id, 2.0)
            await asyncio.to_thread(remove_work_dir_path, files.work_dir(self.data_dir, run_id))
            status = await asyncio.to_thread(self._db_recovered, run_id)
            log.warning("job run %s was left by a stopped server: %s", run_id, status)
        if on_start:
            await asyncio.to_thread(self._db_clean_previous_life)
        if orphans:
            self.wake()

    # -- database work (blocking; runs in worker threads) ---------------------------------------

    def _session(self) -> Session:
        return self.db.session()

    @staticmethod
    def _past_backoff(now: datetime) -> Any:
        """A ready run's `lease_expires_at` is its retry backoff: claimable once it has passed."""
        return or_(JobRun.lease_expires_at.is_(None), JobRun.lease_expires_at <= now)

    @classmethod
    def _ready_clause(cls, now: datetime) -> Any:
        return and_(JobRun.status == READY, cls._past_backoff(now))

    def _claim(self, db: Session, run_ids: str | list[str], now: datetime, *extra: Any) -> int:
        """ready → dispatched under our lease (states.transition stamps dispatchedAt)."""
        # status_message: "retrying in …"/"requeued: …" described the wait that ends here.
        values = {"status_message": None, "lease_owner": self.owner,
                  "lease_expires_at": now + timedelta(seconds=self.config.lease_seconds)}
        return states.transition(db, run_ids, DISPATCHED, source=(READY,), values=values, now=now, where=extra)

    def _db_claim(self, capacity: int) -> tuple[list[str], bool]:
        with self._session() as db:
            now = utcnow()
            rows = db.execute(select(JobRun.id, JobRun.job_id).where(self._ready_clause(now))
                              .order_by(JobRun.id).limit(capacity * 4 + 20)).all()
            if not rows:
                return [], False
            if self.is_postgres:
                return self._claim_postgres(db, rows, capacity)
            return self._claim_sqlite(db, rows, capacity), False

    def _claim_postgres(self, db: Session, rows: Sequence[Any], capacity: int) -> tuple[list[str], bool]:
        claimed: list[str] = []
        busy = False
        now = utcnow()
        for job_id in dict.fromkeys(r.job_id for r in rows):
            if capacity <= 0:
                break
            job = db.execute(select(Job.id, Job.current_version).where(Job.id == job_id)
                             .with_for_update(skip_locked=True, key_share=True)).first()
            if job is None:
                busy = True
                continue
            limit = db.scalar(select(JobVersion.max_concurrent_runs).where(
                JobVersion.job_id == job_id, JobVersion.version == job.current_version)) or 1
            active = db.scalar(select(func.count()).select_from(JobRun).where(
                JobRun.job_id == job_id, JobRun.status.in_(LEASED_STATES))) or 0
            free = min(limit - active, capacity)
            if free <= 0:
                continue
            now = utcnow()  # after the count: never earlier than the end that freed the slot
            ids = list(db.scalars(select(JobRun.id).where(JobRun.job_id == job_id, self._ready_clause(now))
                                  .order_by(JobRun.id).limit(free).with_for_update(skip_locked=True)))
            if ids:
                self._claim(db, ids, now)
                claimed += ids
                capacity -= len(ids)
        db.commit()
        return claimed, busy

    def _claim_sqlite(self, db: Session, rows: Sequence[Any], capacity: int) -> list[str]:
        active_run = aliased(JobRun)
        job, version = aliased(Job), aliased(JobVersion)
        claimed: list[str] = []
        full: set[str] = set()
        for run_id, job_id in rows:
            if capacity <= 0:
                break
            if job_id in full:
                continue
            active = (select(func.count()).select_from(active_run)
                      .where(active_run.job_id == job_id, active_run.status.in_(LEASED_STATES)).scalar_subquery())
            limit = (select(version.max_concurrent_runs)
                     .join(job, and_(job.id == version.job_id, job.current_version == version.version))
                     .where(job.id == job_id).scalar_subquery())
            # Take SQLite's write lock first (a no-op write), then read the clock: dispatchedAt is then never
            # earlier than the commit of the run whose end freed the slot.
            db.execute(update(JobRun).where(JobRun.id == run_id)
                       .values(lease_owner=JobRun.lease_owner, updated_at=JobRun.updated_at),
                       execution_options={"synchronize_session": False})
            now = utcnow()
            done = self._claim(db, run_id, now, self._past_backoff(now), active < limit)
            db.commit()
            if done:
                claimed.append(run_id)
                capacity -= 1
            else:
                full.add(job_id)
        return claimed

    def _db_renew(self, run_ids: list[str]) -> dict[str, str]:
        """Extend our leases; which of `run_ids` we no longer hold, and why."""
        now = utcnow()
        with self._session() as db:
            db.execute(update(JobRun).where(JobRun.id.in_(run_ids), JobRun.lease_owner == self.owner,
                                            JobRun.status.in_(LEASED_STATES))
                       .values(lease_expires_at=now + timedelta(seconds=self.config.lease_seconds),
                               updated_at=JobRun.updated_at),
                       execution_options={"synchronize_session": False})
            db.commit()
            rows = {r.id: (r.status, r.lease_owner) for r in db.execute(
                select(JobRun.id, JobRun.status, JobRun.lease_owner).where(JobRun.id.in_(run_ids)))}
        lost: dict[str, str] = {}
        for run_id in run_ids:
            found = rows.get(run_id)
            if found is None:
                lost[run_id] = "deleted"
            elif found[1] != self.owner:
                lost[run_id] = "taken over"
            elif found[0] not in LEASED_STATES:
                lost[run_id] = "cancelled"
        return lost

    def _db_update(self, run_id: str, values: dict[str, Any]) -> bool:
        """Fields other than the status of a run we hold."""
        with self._session() as db:
            result = db.execute(update(JobRun).where(JobRun.id == run_id, JobRun.lease_owner == self.owner,
                                                     JobRun.status.in_(LEASED_STATES))
                                .values(**values, updated_at=utcnow()),
                                execution_options={"synchronize_session": False})
            db.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def _db_transition(self, run_id: str, target: str, source: Sequence[str], values: dict[str, Any]) -> bool:
        """states.transition of a run we hold (our lease), committed."""
        with self._session() as db:
            done = states.transition(db, run_id, target, source=source, values=values,
                                     where=(JobRun.lease_owner == self.owner,))
            db.commit()
            return bool(done)

    def _db_record_commit(self, run_id: str, commit: str) -> None:
        """The commit a run checked out, on the run (its retries run the same code) and as the
        `sourceConfig.snapshotCommit` of its job version: the code the version last ran, as
        Databricks' `git_snapshot.used_commit` reports it."""
        if not self._db_update(run_id, {"snapshot_commit": commit}):
            return
        with self._session() as db:
            row = db.execute(select(JobRun.job_id, JobRun.job_version).where(JobRun.id == run_id)).first()
            if row is None:
                return
            version = db.scalar(select(JobVersion).where(JobVersion.job_id == row.job_id,
                                                         JobVersion.version == row.job_version))
            if version is not None and version.source_config is not None:
                version.source_config = {**version.source_config, "snapshotCommit": commit}
                db.commit()

    def _db_running(self, run_id: str, process: RunningProcess, instance_id: str | None) -> bool:
        return self._db_transition(run_id, RUNNING, (DISPATCHED, WAITING_FOR_SAIL),
                                   {"runner_started_at": process.runner_started_at, "pid": process.pid,
                                    "instance_id": instance_id})

    def _db_plan(self, run_id: str) -> Plan:
        with self._session() as db:
            run = db.get(JobRun, run_id)
            if run is None:
                raise PlanError("the run was deleted")
            job = db.get(Job, run.job_id)
            version = db.scalar(select(JobVersion).where(JobVersion.job_id == run.job_id,
                                                         JobVersion.version == run.job_version))
            if job is None or version is None:
                raise PlanError(f"version {run.job_version} of the job no longer exists")
            config = dict(version.config or {})
            lakesail = dict(config.get("lakesail") or {})
            plan = Plan(run_id=run.id, job_id=job.id, job_key=job.job_key, attempt=run.attempt,
                        cleanup_mode=run.resource_cleanup_mode, max_retries=int(lakesail.get("maxRetries") or 0),
                        config=config, overrides=run.parameters, source_config=version.source_config,
                        snapshot_commit=run.snapshot_commit, timeout_seconds=version.timeout_seconds)
            if version.cluster_id != LOCAL_CLUSTER_ID:
                raise PlanError(f"the cluster {version.cluster_id} cannot run jobs on this server")
            settings = {str(k): str(v) for k, v in lakesail.items()
                        if k not in _LAKESAIL_KEYS and isinstance(v, str | int | float | bool)}
            storage: tuple[str, ...] = ()
            query_id = (config.get("sql") or {}).get("queryId")
            if query_id:
                storage = self._plan_query(db, plan, job, query_id, settings)
            mode: ExecutionMode = "cluster" if lakesail.get("executionMode") == "cluster" else "standalone"
            workers = 0
            if mode == "cluster":
                nodes = ((config.get("compute") or {}).get("worker") or {}).get("maxNodes") or 1
                workers = max(1, min(int(nodes), self.config.max_workers))
            spark = lakesail.get("sparkVersion") or self.environments.default
            if spark not in self.environments.lines:  # validated when saved: a line this server no longer has
                raise PlanError(f"sparkVersion {spark} is not available on this server (it has "
                                f"{', '.join(self.environments.lines)})")
            plan.instance = InstanceSpec(instance_id="template", execution_mode=mode, workers=workers,
                                         settings=settings, libraries=libraries_from_api(lakesail.get("libraries")),
                                         storage=storage, spark_version=str(spark))
            return plan

    def _plan_query(self, db: Session, plan: Plan, job: Job, query_id: str,
                    settings: dict[str, str]) -> tuple[str, ...]:
        """The saved query's SQL and catalog settings, only while the query and its catalog are shared
        with one of the job's teams (the rule createJob checks): a query made private, or a team
        removed from the job, fails the run before anything of the query is read into it. A deleted
        query and one not shared look the same to the job's teams. Returns the host directories
        (a local catalog's resolved warehouse) the run's Sail server may use."""
        teams = list(db.scalars(select(JobTeam.team_id).where(JobTeam.job_id == job.id)))
        query = db.scalar(select(Query).where(Query.id == query_id, Query.organization_id == job.organization_id))
        if query is None or not shared_with(db, QUERIES, query.id, teams):
            raise PlanError(f"the saved query {query_id} no longer exists or is not shared with any of the job's "
                            "teams")
        catalog = db.get(Catalog, query.catalog_id) if query.catalog_id else None
        if catalog is not None:
            if not shared_with(db, CATALOGS, catalog.id, teams):
                raise PlanError(f"the catalog of the saved query {query_id} is not shared with any of the job's "
                                "teams")
            try:
                spark_conf = sail_spark_conf(catalog, self.storage)
            except StorageError as exc:
                raise PlanError(f"the warehouseDir of the catalog {catalog.name} {exc}; update the catalog") from None
            plan.sql_catalog = catalog.name
            settings.update(sail_catalog_settings(catalog, self.encryptor))
            plan.spark_conf = spark_conf
        plan.sql, plan.sql_schema = query.sql, query.schema_name
        warehouse = plan.spark_conf.get("spark.sql.warehouse.dir")
        return (warehouse,) if warehouse else ()

    def _db_final(self, run_id: str, status: str, message: str | None, outcome: Outcome | None,
                  cancelled: bool) -> bool:
        """The run's end. A run cancelled meanwhile keeps its status and message; the runner's times
        are recorded either way."""
        now = utcnow()
        values: dict[str, Any] = {"lease_expires_at": None, "pid": None}
        if outcome is not None:
            values.update(runner_started_at=outcome.runner_started_at, runner_completed_at=outcome.runner_completed_at,
                          runner_execution_time_us=outcome.runner_execution_time_us, output_path=outcome.output_path)
        with self._session() as db:
            done = states.transition(db, run_id, status, source=LEASED_STATES, now=now,
                                     values={**values, "status_message": _clip(message)},
                                     where=(JobRun.lease_owner == self.owner,))
            if not done:
                db.execute(update(JobRun).where(JobRun.id == run_id, JobRun.lease_owner == self.owner,
                                                JobRun.status == CANCELLED).values(**values, updated_at=now),
                           execution_options={"synchronize_session": False})
            db.commit()
            return bool(done) or cancelled

    def _back_to_ready(self, db: Session, run_id: str, values: dict[str, Any], now: datetime) -> None:
        """A run we hold back to the queue (values: states.attempt_reset)."""
        states.transition(db, run_id, READY, source=LEASED_STATES, values=values, now=now,
                          where=(JobRun.lease_owner == self.owner,))

    def _db_retry_later(self, run_id: str, attempt: int, status: str, message: str | None, delay: float) -> None:
        now = utcnow()
        note = f"attempt {attempt + 1} ended {status}; retrying in {delay:g} s"
        values = states.attempt_reset(message=_clip(f"{note}: {message}" if message else note),
                                      next_attempt=attempt + 1, not_before=now + timedelta(seconds=delay))
        with self._session() as db:
            self._back_to_ready(db, run_id, values, now)
            db.commit()

    def _db_requeue(self, run_id: str) -> None:
        """Graceful stop: back to ready with the same attempt, for this or another server."""
        now = utcnow()
        values = states.attempt_reset(message="requeued: the server stopped while the run was executing")
        with self._session() as db:
            self._back_to_ready(db, run_id, values, now)
            db.commit()

    def _db_cleaned(self, run_id: str, instance_id: str | None) -> None:
        """cleanedAt, unless the run has started another attempt (with another instance) meanwhile."""
        now = utcnow()
        with self._session() as db:
            stmt = update(JobRun).where(JobRun.id == run_id, JobRun.status.in_(TERMINAL_STATES),
                                        JobRun.cleaned_at.is_(None))
            if instance_id is not None:
                stmt = stmt.where(or_(JobRun.instance_id == instance_id, JobRun.instance_id.is_(None)))
            db.execute(stmt.values(cleaned_at=now, updated_at=now), execution_options={"synchronize_session": False})
            db.commit()

    def _db_instances_in_use(self, run_ids: list[str]) -> dict[str, str | None]:
        """For retained instances: which instance each (still existing, still finished) run points at."""
        with self._session() as db:
            return {r.id: r.instance_id for r in db.execute(
                select(JobRun.id, JobRun.instance_id).where(JobRun.id.in_(run_ids),
                                                            JobRun.status.in_(TERMINAL_STATES)))}

    def _db_orphans(self, on_start: bool) -> list[tuple[str, int | None, str | None]]:
        """Claim (compare-and-set on the lease) runs whose holder is gone; their (id, pid, instance)."""
        now = utcnow()
        mine_before = and_(JobRun.lease_owner.like(f"{self.node_tag}:%"), JobRun.lease_owner != self.owner)
        # Never our own runs: a lease of ours that lapsed (a stalled loop) is renewed, not recovered.
        gone = and_(or_(JobRun.lease_expires_at.is_(None), JobRun.lease_expires_at < now),
                    or_(JobRun.lease_owner.is_(None), JobRun.lease_owner != self.owner))
        if on_start:
            gone = or_(gone, mine_before)
        found: list[tuple[str, int | None, str | None]] = []
        with self._session() as db:
            stmt = select(JobRun.id, JobRun.lease_owner, JobRun.lease_expires_at, JobRun.pid, JobRun.instance_id) \
                .where(JobRun.status.in_(LEASED_STATES), gone).order_by(JobRun.id).limit(100)
            if self.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = db.execute(stmt).all()
            for row in rows:
                same_owner = JobRun.lease_owner.is_(None) if row.lease_owner is None \
                    else JobRun.lease_owner == row.lease_owner
                same_expiry = JobRun.lease_expires_at.is_(None) if row.lease_expires_at is None \
                    else JobRun.lease_expires_at == row.lease_expires_at
                result = db.execute(update(JobRun).where(JobRun.id == row.id, JobRun.status.in_(LEASED_STATES),
                                                         same_owner, same_expiry)
                                    .values(lease_owner=self.owner,
                                            lease_expires_at=now + timedelta(seconds=self.config.lease_seconds),
                                            updated_at=JobRun.updated_at),
                                    execution_options={"synchronize_session": False})
                if result.rowcount:  # type: ignore[attr-defined]
                    found.append((row.id, row.pid, row.instance_id))
            db.commit()
        return found

    def _db_recovered(self, run_id: str) -> str:
        """Retry (when attempts remain) or fail a run whose server stopped during it."""
        now = utcnow()
        with self._session() as db:
            run = db.get(JobRun, run_id)
            if run is None or run.lease_owner != self.owner or run.status not in LEASED_STATES:
                return run.status if run is not None else "deleted"
            version = db.scalar(select(JobVersion).where(JobVersion.job_id == run.job_id,
                                                         JobVersion.version == run.job_version))
            max_retries = int((((version.config if version else None) or {}).get("lakesail") or {})
                              .get("maxRetries") or 0)
            if run.attempt < max_retries:
                delay = min(60.0, self.config.retry_backoff * (2 ** run.attempt))
                values = states.attempt_reset(message=_clip(f"{SERVER_STOPPED}; retrying in {delay:g} s"),
                                              next_attempt=run.attempt + 1, not_before=now + timedelta(seconds=delay))
                status = READY
            else:
                values = {"status_message": SERVER_STOPPED, "cleaned_at": now, "lease_expires_at": None, "pid": None}
                if run.runner_started_at is not None:
                    values.update(runner_completed_at=now, runner_execution_time_us=int(
                        (now - run.runner_started_at).total_seconds() * 1_000_000))
                status = FAILED
            states.transition(db, run_id, status, source=LEASED_STATES, values=values, now=now,
                              where=(JobRun.lease_owner == self.owner,))
            db.commit()
            return status

    def _db_clean_previous_life(self) -> None:
        """Finished runs of this node whose kept instances died with the previous process (the session
        controller stops every Sail process of this node that no record owns when it starts)."""
        now = utcnow()
        with self._session() as db:
            db.execute(update(JobRun).where(JobRun.lease_owner.like(f"{self.node_tag}:%"),
                                            JobRun.lease_owner != self.owner,
                                            JobRun.status.in_(TERMINAL_STATES), JobRun.cleaned_at.is_(None))
                       .values(cleaned_at=now, updated_at=JobRun.updated_at),
                       execution_options={"synchronize_session": False})
            db.commit()


def _collect_output(output: tuple[Path, Path] | None, outcome: Outcome | None) -> Outcome | None:
    """Move what the attempt wrote from the Sail instance's directory to the run's output directory."""
    if output is None or outcome is None:
        return outcome
    staging, final = output
    shutil.rmtree(final, ignore_errors=True)
    if not staging.exists():
        return replace(outcome, output_path=None)
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staging, final)
    return replace(outcome, output_path=str(final))


def remove_work_dir_path(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["RunDispatcher", "RunnerConfig", "SailPool", "kill_instance_processes", "log_tail", "remove_work_dir"]
