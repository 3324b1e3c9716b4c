"""The run-driver boundary: what the dispatcher needs from whatever runs a job run's driver.

The dispatcher starts a driver, waits for its outcome or cancels it, and after a crash stops what
a previous life left behind; it does not care whether the driver is a local process
(`runs.execution.LocalRunExecutor`, the only one today) or a pod next to a cluster's Sail servers.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from sailplane.workloads.runs.execution import Outcome, RunSpec


class RunDriver(Protocol):
    """A started driver. `pid` is what recovery gets back after a crash (persisted with the run)."""

    pid: int
    runner_started_at: datetime

    @property
    def outcome(self) -> Outcome | None:
        """The outcome once the driver has ended (None while it runs)."""
        ...

    async def wait(self, timeout: float | None = None) -> Outcome:
        """Wait for the driver to end (stopping it when `timeout` passes) and return its outcome."""
        ...

    async def cancel(self, grace: float | None = None) -> None:
        """Stop the driver (gracefully for `grace` seconds, then forcibly)."""
        ...


class RunExecutor(Protocol):
    """Starts run drivers and stops the leftovers of drivers whose server died."""

    async def start(self, spec: RunSpec, spark_remote: str, *, stop_grace: float,
                    readable: tuple[Path, ...] = ()) -> RunDriver:
        """Start the driver and return once it runs; `readable` are extra directories it may read."""
        ...

    async def stop_leftovers(self, pid: int | None, run_id: str, *, grace: float) -> bool:
        """Stop what is left of run `run_id` (its recorded `pid`, or everything of the run when None);
        True when anything was running."""
        ...
