"""What job runs need while the server runs: the dispatcher and the scheduler on an event loop in
a thread of their own, beside the session runtime's.

Started from the app lifespan after the workload runtime (whose compute backends it shares, one per
cluster: run Sail servers of the LOCAL cluster are local instances of the same node, so the session
controller's start-up reconciliation also stops Sail servers a crashed previous process left behind), stopped before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import Any

from sailplane.compute.environments import SparkEnvironments
from sailplane.compute.registry import NodeBackends
from sailplane.compute.sandbox import Sandbox
from sailplane.config import Settings
from sailplane.kit.db import Database
from sailplane.runs.dispatcher import RunDispatcher, RunnerConfig
from sailplane.runs.scheduler import RunningScheduler, start_scheduler_loop

log = logging.getLogger(__name__)


class RunRuntime:
    def __init__(self, settings: Settings, db: Database, backends: NodeBackends, node: str,
                 sandbox: Sandbox | None = None, environments: SparkEnvironments | None = None) -> None:
        self.settings = settings
        self.db = db
        self.config = RunnerConfig.from_settings(settings)
        self.dispatcher = RunDispatcher(db, backends, data_dir=settings.data_dir, node=node,
                                        secret_key=settings.secret_key, config=self.config, sandbox=sandbox,
                                        warehouse_root=settings.warehouse_root,
                                        environments=environments or SparkEnvironments(settings.spark_envs_dir))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="job-runs", daemon=True)
        self._started = False
        self.scheduler: RunningScheduler | None = None

    def run(self, coro: Awaitable[Any], *, timeout: float | None = None) -> Any:
        """Run a coroutine on the runs loop and wait for its result (from another thread)."""

        async def wrapper() -> Any:
            return await coro

        future: Future[Any] = asyncio.run_coroutine_threadsafe(wrapper(), self._loop)
        return future.result(timeout)

    def start(self) -> None:
        """Recover runs a previous process left, then start dispatching (blocking until started)."""
        self._thread.start()
        self._started = True
        try:
            self.run(self.dispatcher.start(), timeout=300)
            # Scheduled runs it creates `ready` are claimed at once: it wakes the dispatcher.
            self.scheduler = self.run(start_scheduler_loop(self.db, wake=self.dispatcher.wake))
        except BaseException:
            self.stop()
            raise

    def notify(self) -> None:
        """A run became ready (or was cancelled) in this process: look now, not at the next poll.
        Thread-safe."""
        if self._started and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.dispatcher.wake)

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
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()
