"""The run dispatcher: claims `ready` runs, gets each a Sail server, runs it through the execution
engine, and records every step. One per server process, on the runs runtime's event loop; this
module is the loop and the life of one attempt, the rest lives beside it:
claiming and leases in `claiming`, what each step writes in `records`, reading an attempt's plan
in `planning`, idle Sail servers in `sail_pool`; Sail servers are found and stopped by the compute
backend of the run's cluster (`compute.registry`).

Sail servers: a run takes an idle pooled instance, else starts its own (`waiting_for_sail`). A
used instance is never given to another run; `resourceCleanupMode` decides when it stops:
`always` at the end of the run, `on_success` at the end of a successful run (after any other
outcome it is kept for debugging), `never` keeps it; kept instances are stopped by the idle
reaper after `retain_seconds` (or as soon as their run is deleted or retried; an attempt followed
by an automatic retry never keeps its instance), and `cleanedAt` is set when the run's instance
and work directory are gone.

Outcomes: `lakesail.maxRetries` retries failed and timed-out runs automatically (attempt + 1,
back to ready after a backoff of `retry_backoff * 2**attempt` seconds, at most a minute) while
`attempt < maxRetries`. Errors in the configuration (see `planning`) fail without retries.

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
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sailplane.compute.backend import ComputeBackend, InstanceHandle
from sailplane.compute.environments import SparkEnvError, SparkEnvironments
from sailplane.compute.libraries import LibraryInstaller, LibraryInstallError
from sailplane.compute.registry import NodeBackends, UnknownCluster
from sailplane.compute.sandbox import Sandbox
from sailplane.data.providers import LocalStorage
from sailplane.kit.background import PeriodicService
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from sailplane.workloads.runs import files
from sailplane.workloads.runs.claiming import Leases
from sailplane.workloads.runs.execution import (
    LocalRunExecutor,
    Outcome,
    RunSpec,
    RunSpecError,
    SourceError,
    log_tail,
    prepare_source,
    remove_work_dir,
)
from sailplane.workloads.runs.executor import RunDriver, RunExecutor
from sailplane.workloads.runs.planning import Plan, PlanError, Planner
from sailplane.workloads.runs.records import RunRecords
from sailplane.workloads.runs.runner_config import RunnerConfig
from sailplane.workloads.runs.sail_pool import SailPool, instance_id_for_run
from sailplane.workloads.runs.states import CANCELLED, FAILED, SUCCEEDED, TIMEOUT

log = logging.getLogger(__name__)

STOP_TICK_SECONDS = 10.0  # a stop waits this long for each loop's tick in progress, then cancels it


@dataclass
class LiveRun:
    """A run this process holds the lease of."""

    run_id: str
    lost: str | None = None  # why we no longer own it: cancelled, deleted, taken over
    finishing: bool = False
    process: RunDriver | None = None
    backend: ComputeBackend | None = None  # its cluster's, which runs (or was starting) its instance
    instance: InstanceHandle | None = None
    instance_id: str | None = None
    output: tuple[Path, Path] | None = None  # (where the instance writes results, where they are kept)
    renewed_at: float = field(default_factory=time.monotonic)  # when its lease was last extended (or taken)
    lapse_counted: bool = False  # the lease lapsed since `renewed_at` and that lapse is in the metric already


@dataclass
class Retained:
    """A used Sail instance kept for debugging (resourceCleanupMode) until `until` (monotonic)."""

    backend: ComputeBackend
    handle: InstanceHandle
    run_id: str
    work_dir: Path
    until: float


class RunDispatcher:
    """Claims runs (up to `max_parallel` at once), executes each attempt on its own task, keeps
    their leases, and recovers runs whose holder is gone."""

    def __init__(self, db: Database, backends: NodeBackends, *, data_dir: Path, node: str, secret_key: str,
                 config: RunnerConfig | None = None, sandbox: Sandbox | None = None,
                 warehouse_root: Path | None = None, environments: SparkEnvironments | None = None,
                 executor: RunExecutor | None = None,
                 on_lease_missed: Callable[[str], None] | None = None) -> None:
        self.db = db
        # Told "late" when a lease was renewed after it had lapsed (the loop stalled: another node may have taken
        # the run meanwhile), "taken_over" when it had been (the operator's "lease renewals missed").
        self.on_lease_missed = on_lease_missed
        self.backends = backends  # a run's Sail server is started by the backend of its job's cluster
        self.data_dir = data_dir
        # Local catalogs' warehouses must lie below this root (Settings.warehouse_root); checked per run.
        self.storage = LocalStorage(warehouse_root or Path(data_dir) / "warehouses", Path(data_dir))
        self.config = config or RunnerConfig()
        self.sandbox = sandbox  # confines drivers and library installs like the backend's Sail servers
        self.executor: RunExecutor = executor or LocalRunExecutor(sandbox)
        self.libraries = LibraryInstaller(Path(data_dir).resolve() / "libraries", sandbox=sandbox)
        # A run's driver runs the Python of its Spark line, like its Sail server.
        self.environments = environments or SparkEnvironments()
        # lease_owner = "<node tag>:<this process's life>": the tag says which node, the suffix which start.
        self.node_tag = hashlib.sha256(node.encode()).hexdigest()[:16]
        self.owner = f"{self.node_tag}:{new_id()}"
        self.encryptor = Encryptor(secret_key)
        self.leases = Leases(db, owner=self.owner, node_tag=self.node_tag, lease_seconds=self.config.lease_seconds)
        self.records = RunRecords(db, owner=self.owner, node_tag=self.node_tag,
                                  retry_backoff=self.config.retry_backoff)
        self.planner = Planner(db, environments=self.environments, storage=self.storage, encryptor=self.encryptor,
                               max_workers=self.config.max_workers)
        self.pools: dict[str, SailPool] = {}  # per cluster, made when a run of it first needs one
        self.live: dict[str, LiveRun] = {}
        self.retained: dict[str, Retained] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Three services (kit.background): claiming (on a wake-up or every poll), holding the leases of
        # the runs claimed, and housekeeping; a stop lets the tick in progress of each finish.
        housekeeping = max(1.0, min(self.config.lease_seconds / 2, 5.0))
        self._claims = PeriodicService("run-dispatcher", self._claim_tick, self.config.poll_interval, logger=log,
                                       failure="claiming job runs failed", stop_timeout=STOP_TICK_SECONDS)
        self._leases = PeriodicService("run-leases", self._renew_tick, self.config.renew_interval, logger=log,
                                       failure="renewing job run leases failed", stop_timeout=STOP_TICK_SECONDS)
        self._housekeeping = PeriodicService("run-housekeeping", self._housekeeping_tick, housekeeping, logger=log,
                                             failure="job run housekeeping failed", stop_timeout=STOP_TICK_SECONDS)
        self._services = (self._claims, self._leases, self._housekeeping)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what a previous life left, warm the default Sail pool, then claim runs."""
        self._loop = asyncio.get_running_loop()
        await self._recover(on_start=True)  # its wake-up (runs were requeued) makes the first claim at once
        for service in self._services:
            service.start()

    async def stop(self) -> None:
        """Stop claiming, stop this process's runs and requeue them, stop every Sail instance we own."""
        await asyncio.gather(*(service.stop() for service in self._services))
        for live in list(self.live.values()):
            if live.lost is None:
                live.lost = "stopping"
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=60)
        for pool in list(self.pools.values()):
            await pool.close()
        retained = list(self.retained.items())
        self.retained.clear()
        for instance_id, kept in retained:
            await self._stop_instance(kept.backend, kept.handle)
            remove_work_dir_path(kept.work_dir)
            await asyncio.to_thread(self.records.cleaned, kept.run_id, instance_id)

    def wake(self) -> None:
        """Look for ready runs now (call on the loop; see RunRuntime.notify from other threads)."""
        if self._loop is not None:
            self._claims.wake()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- loops ------------------------------------------------------------------------------------

    async def _claim_tick(self) -> None:
        capacity = self.config.max_parallel - len(self.live)
        if capacity <= 0:
            return
        claimed, busy = await asyncio.to_thread(self.leases.claim, capacity, frozenset(self.live))
        for run_id in claimed:
            self.live[run_id] = LiveRun(run_id)
            self._spawn(self._execute(run_id), f"run-{run_id}")
        if busy:  # a job row was locked by someone else: look again very soon
            self._loop.call_later(0.05, self.wake)  # type: ignore[union-attr]

    async def _renew_tick(self) -> None:
        held = [r for r in self.live.values() if r.lost is None and not r.finishing]
        if not held:
            return
        started = time.monotonic()
        lost = await asyncio.to_thread(self.leases.renew, [r.run_id for r in held])
        for live in held:  # these attempts, not a later one of the same run claimed meanwhile
            why = lost.get(live.run_id)
            if why == "taken over":
                self._lease_missed(live, "taken_over")
            elif started - live.renewed_at > self.config.lease_seconds:
                self._lease_missed(live, "late")
            if why is None:
                live.renewed_at, live.lapse_counted = started, False
            elif not live.finishing and live.lost is None:
                live.lost = why
                log.info("job run %s: %s; stopping it", live.run_id, why)
                if live.process is not None:
                    self._spawn(live.process.cancel(self.config.stop_grace), f"cancel-{live.run_id}")

    def _lease_missed(self, live: LiveRun, reason: str) -> None:
        """Count one lapse once: the renewal in flight when a stalled process wakes and the end of its attempt
        (its process killed by the node that took the run over) both find it."""
        if live.lapse_counted:
            return
        live.lapse_counted = True
        if self.on_lease_missed is not None:
            self.on_lease_missed(reason)

    async def _housekeeping_tick(self) -> None:
        await self._recover(on_start=False)
        await self._reap_retained()
        for pool in list(self.pools.values()):
            await pool.reap()

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
                plan = await asyncio.to_thread(self.planner.plan, run_id)
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
            if self.live.get(run_id) is live:
                del self.live[run_id]
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
                    await asyncio.to_thread(self.records.record_commit, plan.run_id, commit)
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
        assert live.backend is not None
        live.output = (live.backend.output_dir(handle) / "result", spec.output_dir)
        spec = replace(spec, output_dir=live.output[0])
        try:
            process = await self.executor.start(spec, handle.address, stop_grace=self.config.stop_grace,
                                                readable=readable)
        except RunSpecError as exc:
            return None, str(exc), False
        live.process = process
        started = await asyncio.to_thread(self.records.running, plan.run_id, process, live.instance_id)
        if not started and live.lost is None:
            live.lost = "cancelled"  # it changed between the claim and now
        if live.lost is not None:
            await process.cancel(self.config.stop_grace)
        return await process.wait(), None, True

    def _pool(self, cluster_id: str) -> SailPool:
        """The cluster's pool (UnknownCluster when no backend of this node serves it)."""
        pool = self.pools.get(cluster_id)
        if pool is None:
            pool = self.pools[cluster_id] = SailPool(self.backends.get(cluster_id), self.config)
        return pool

    async def _acquire(self, plan: Plan, live: LiveRun) -> InstanceHandle | str:
        """A Sail server for the run: an idle pooled one, else a new one (waiting_for_sail)."""
        try:
            pool = self._pool(plan.cluster_id)
        except UnknownCluster as exc:
            return str(exc)
        live.backend = pool.backend
        key = pool.want(plan.instance)
        handle = pool.take(key)
        promised = pool.promise(key) if handle is None else None
        if promised is not None:  # the pool is starting one (first run of these settings): that one is ours
            await asyncio.to_thread(self.records.waiting_for_sail, plan.run_id)
            try:
                handle = await promised
            except asyncio.CancelledError:
                if promised.done() and not promised.cancelled() and promised.exception() is None:
                    pool.put_back(key, promised.result())
                raise
            except Exception as exc:
                return f"the Sail server could not start: {exc}"
        if handle is not None:
            live.instance, live.instance_id = handle, handle.instance_id
            return handle
        instance_id = instance_id_for_run()
        live.instance_id = instance_id
        await asyncio.to_thread(self.records.waiting_for_sail, plan.run_id, instance_id)
        template = plan.instance
        spec = replace(template, instance_id=instance_id)
        try:
            handle = await pool.backend.start(spec, timeout=self.config.sail_start_timeout)
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
        if live.lost is None and time.monotonic() - live.renewed_at > self.config.lease_seconds:
            self._lease_missed(live, "late")  # stalled past the lease; the records below find whether it was taken
        if live.process is not None and live.process.outcome is None:
            await live.process.cancel(self.config.stop_grace)
            outcome = live.process.outcome
        lost = live.lost
        if stopping or lost == "stopping":
            await self._release_resources(live, plan, keep=False)
            await asyncio.to_thread(self.records.requeue, run_id)
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
            await asyncio.to_thread(self.records.retry_later, run_id, plan.attempt, status, message, retry_in)
            return
        await asyncio.to_thread(self.records.final, run_id, status, message, outcome, lost == "cancelled")
        cleaned = await self._release_resources(live, plan, keep=keep)
        if cleaned:
            await asyncio.to_thread(self.records.cleaned, run_id, live.instance_id)

    @staticmethod
    def _result(outcome: Outcome | None, error: str | None) -> tuple[str, str | None]:
        if outcome is not None:
            return outcome.status, outcome.message
        return FAILED, error or "the run did not start"

    async def _release_resources(self, live: LiveRun, plan: Plan | None, *, keep: bool) -> bool:
        """Stop the run's Sail instance and remove its work directory, or keep both for the idle
        reaper; True when everything is gone."""
        work = files.work_dir(self.data_dir, live.run_id)
        if keep and live.backend is not None and live.instance is not None:
            self.retained[live.instance.instance_id] = Retained(
                live.backend, live.instance, live.run_id, work, time.monotonic() + self.config.retain_seconds)
            return False
        if live.backend is not None and live.instance is not None:
            await self._stop_instance(live.backend, live.instance)
        elif live.backend is not None and live.instance_id is not None:  # a start that was abandoned half-way
            await live.backend.stop_by_id(live.instance_id, grace=2.0)
        await asyncio.to_thread(remove_work_dir_path, work)
        return True

    async def _stop_instance(self, backend: ComputeBackend, handle: InstanceHandle) -> None:
        try:
            await backend.stop(handle, grace=self.config.stop_grace)
        except Exception:
            log.exception("stopping Sail instance %s failed", handle.instance_id)

    async def _reap_retained(self) -> None:
        if not self.retained:
            return
        now = time.monotonic()
        current = await asyncio.to_thread(self.records.instances_in_use, [k.run_id for k in self.retained.values()])
        for instance_id, kept in list(self.retained.items()):
            if now < kept.until and current.get(kept.run_id) == instance_id:
                continue
            self.retained.pop(instance_id, None)
            await self._stop_instance(kept.backend, kept.handle)
            await asyncio.to_thread(remove_work_dir_path, kept.work_dir)
            await asyncio.to_thread(self.records.cleaned, kept.run_id, instance_id)

    # -- recovery -----------------------------------------------------------------------------

    async def _recover(self, *, on_start: bool) -> None:
        """Runs whose holder is gone: a previous life of this node (on start), or an expired lease."""
        orphans = await asyncio.to_thread(self.leases.orphans, on_start)
        for run_id, pid, instance_id in orphans:
            await self.executor.stop_leftovers(pid, run_id, grace=2.0)
            await self.executor.stop_leftovers(None, run_id, grace=2.0)  # anything of the run that escaped the group
            if instance_id:  # whichever of this node's backends started it
                for backend in self.backends.all():
                    await backend.stop_by_id(instance_id, grace=2.0)
            await asyncio.to_thread(remove_work_dir_path, files.work_dir(self.data_dir, run_id))
            status = await asyncio.to_thread(self.records.recovered, run_id)
            log.warning("job run %s was left by a stopped server: %s", run_id, status)
        if on_start:
            await asyncio.to_thread(self.records.clean_previous_life)
        if orphans:
            self.wake()


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


__all__ = ["Plan", "PlanError", "RunDispatcher", "RunnerConfig", "SailPool", "log_tail",
           "remove_work_dir"]
