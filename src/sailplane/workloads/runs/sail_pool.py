"""The pool of idle Sail servers for job runs, one pool per cluster (its backend, the one that
cluster's sessions use): a small pool of idle, never-used instances per Sail settings (execution mode,
catalog settings, extra properties) lets a run start at once; a run that finds none waits in
`waiting_for_sail` while one starts. A settings' pool is filled when a run first needs it (a
server that runs no jobs starts no Sail) and dropped after `pool_idle_seconds` without runs. A used
instance is never given back (tables in Sail's in-memory catalogs, cached data and settings would
leak between runs, and between organizations): only the event loop touches the pool, so it needs
no locks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import replace

from sailplane.compute.backend import ComputeBackend, InstanceHandle, InstanceSpec
from sailplane.compute.libraries import digest
from sailplane.kit.ids import new_id
from sailplane.workloads.runs.runner_config import RunnerConfig

log = logging.getLogger(__name__)


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
            # An existence check only (microseconds): a pooled instance answered health checks when it started.
            if self.backend.running(handle):
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
