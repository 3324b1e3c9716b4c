"""The one shape of a background service: a tick every `interval` seconds on an event loop.

A service owns what its ticks do; this base owns when they run and how they end. `wake()` runs the
next tick now instead of at the end of the interval (a wake during a tick runs another one right
after it); a failing tick is logged with its traceback and the loop carries on, after a growing
pause when the service asks for one (`backoff_limit`); `stop()` lets the tick in progress finish
(up to `stop_timeout`, then cancels it), so a tick is never cut half-way on a clean shutdown.

Leases are the service's own: work held under a lease is kept alive by a second service whose tick
renews it (the run dispatcher claims runs with one and renews their leases with another).
Services run on a `kit.loop_thread.LoopThread`, started and stopped from the app factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class PeriodicService:
    """`tick` every `interval` seconds, first at once (`tick_at_start`) or after one interval."""

    def __init__(self, name: str, tick: Callable[[], Awaitable[object]], interval: float, *,
                 logger: logging.Logger = log, failure: str | None = None, tick_at_start: bool = False,
                 backoff_limit: float | None = None, stop_timeout: float = 60.0) -> None:
        self.name = name
        self.interval = interval
        self.stop_timeout = stop_timeout
        # After n failed ticks in a row the wait is min(interval * 2**n, backoff_limit); None: the interval.
        self.backoff_limit = backoff_limit
        self._tick = tick
        self._log = logger
        self._failure = failure or f"{name} tick failed"
        self._tick_at_start = tick_at_start
        self._woken = False  # a wake before start(): the first tick runs at once
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self.task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self) -> asyncio.Task[None]:
        """Start ticking on the running loop."""
        self._stopping = False
        self._wake = asyncio.Event()
        if self._woken:
            self._wake.set()
            self._woken = False
        self.task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        return self.task

    def wake(self) -> None:
        """Run the next tick now (call on the service's loop)."""
        if self._wake is None:
            self._woken = True
        else:
            self._wake.set()

    async def stop(self, timeout: float | None = None) -> None:
        """Tick no more: wait for the tick in progress (up to `timeout`, default `stop_timeout`), then
        cancel it."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        task = self.task
        if task is None or task.done():
            return
        timeout = self.stop_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            self._log.warning("%s did not stop within %g s; cancelling it", self.name, timeout)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _delay(self, failures: int) -> float:
        if not failures or self.backoff_limit is None:
            return self.interval
        return max(self.interval, min(self.interval * 2 ** failures, self.backoff_limit))

    async def _run(self) -> None:
        assert self._wake is not None
        failures = 0
        now = self._tick_at_start
        while not self._stopping:
            if not now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._delay(failures))
                if self._stopping:
                    break
                self._wake.clear()
            now = False
            try:
                await self._tick()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                self._log.exception(self._failure)
