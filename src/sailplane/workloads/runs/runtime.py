"""What job runs need while the server runs: the dispatcher and the scheduler on an event loop in
a thread of their own, beside the session runtime's.

Started from the app lifespan after the workload runtime (whose compute backends it shares, one per
cluster: run Sail servers of the LOCAL cluster are local instances of the same node, so the session
controller's start-up reconciliation also stops Sail servers a crashed previous process left behind), stopped before it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sailplane.compute.environments import SparkEnvironments
from sailplane.compute.registry import NodeBackends
from sailplane.compute.sandbox import Sandbox
from sailplane.config import Settings
from sailplane.kit.db import Database
from sailplane.kit.loop_thread import LoopThread
from sailplane.workloads.runs.dispatcher import RunDispatcher, RunnerConfig
from sailplane.workloads.runs.scheduler import RunningScheduler, start_scheduler_loop

log = logging.getLogger(__name__)


class RunRuntime:
    def __init__(self, settings: Settings, db: Database, backends: NodeBackends, node: str,
                 sandbox: Sandbox | None = None, environments: SparkEnvironments | None = None,
                 on_scheduler_lag: Callable[[float], None] | None = None,
                 on_lease_missed: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.on_scheduler_lag = on_scheduler_lag
        self.db = db
        self.config = RunnerConfig.from_settings(settings)
        self.dispatcher = RunDispatcher(db, backends, data_dir=settings.data_dir, node=node,
                                        secret_key=settings.secret_key, config=self.config, sandbox=sandbox,
                                        warehouse_root=settings.warehouse_root,
                                        environments=environments or SparkEnvironments(settings.spark_envs_dir),
                                        on_lease_missed=on_lease_missed)
        self._thread = LoopThread("job-runs")
        self._started = False
        self.scheduler: RunningScheduler | None = None

    def run(self, coro: Awaitable[Any], *, timeout: float | None = None) -> Any:
        """Run a coroutine on the runs loop and wait for its result (from another thread)."""
        return self._thread.run(coro, timeout=timeout)

    def start(self) -> None:
        """Recover runs a previous process left, then start dispatching (blocking until started)."""
        self._thread.start()
        self._started = True
        try:
            self.run(self.dispatcher.start(), timeout=300)
            # Scheduled runs it creates `ready` are claimed at once: it wakes the dispatcher.
            self.scheduler = self.run(start_scheduler_loop(self.db, wake=self.dispatcher.wake,
                                                                on_lag=self.on_scheduler_lag))
        except BaseException:
            self.stop()
            raise

    def notify(self) -> None:
        """A run became ready (or was cancelled) in this process: look now, not at the next poll.
        Thread-safe."""
        if self._started:
            self._thread.call_soon(self.dispatcher.wake)

    def stop(self) -> None:
        """Stop dispatching; this process's runs are stopped and requeued, its Sail servers stopped."""
        if not self._started:
            return
        self._started = False
        try:
            if self.scheduler is not None:
                scheduler, self.scheduler = self.scheduler, None
                self.run(scheduler.stop(), timeout=90)
        except Exception:
            log.exception("stopping the job scheduler failed")
        try:
            self.run(self.dispatcher.stop(), timeout=120)
        except Exception:
            log.exception("stopping the job run dispatcher failed")
        finally:
            self._thread.stop()
