"""The compute backend interface: how the control plane starts, watches and stops Sail instances.

Controllers only talk to this Protocol, so the same session lifecycle code drives local processes
and Kubernetes pods. Everything a backend needs to find an instance again after a control-plane
restart is in the `InstanceHandle` (its `ref` opaque to the caller), which the caller persists.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from sailplane.compute.libraries import Library

ExecutionMode = Literal["standalone", "cluster"]


class ComputeError(RuntimeError):
    """A backend could not do what was asked (bad spec, start failure, timeout)."""


class InstanceStartError(ComputeError):
    """The instance did not become ready; the message carries the tail of its log."""


@dataclass(frozen=True)
class InstanceSpec:
    """What to run.

    `settings` holds Sail configuration: either environment names (`SAIL_CATALOG__LIST`) or the
    dotted option names from Sail's configuration reference (`catalog.list`); backends translate
    them to `SAIL_*` variables. `extra_env` is passed through verbatim (e.g. AWS credentials for a
    catalog), except that it can never override the variables a backend uses to track instances.
    `libraries` must be importable by the server's Python (UDFs run there). `storage` lists the
    directories (local catalogs' warehouses) the instance may read and write; a confined backend
    shows it nothing else of the host's files. `spark_version` is the PySpark line the server
    answers as (`compute.environments`; None: the default, newest line).
    """

    instance_id: str
    execution_mode: ExecutionMode = "standalone"
    workers: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    libraries: tuple[Library, ...] = ()
    storage: tuple[str, ...] = ()
    spark_version: str | None = None


@dataclass(frozen=True)
class InstanceHandle:
    """Where a running instance is. Persist it: it is all `find`/`stop` need after a restart.

    `ref` is the backend's own name for the instance (a local process, a pod): only the backend that
    made it reads it; everyone else stores and passes it back as is.
    """

    instance_id: str
    ref: str
    host: str
    port: int
    started_at: datetime

    @property
    def address(self) -> str:
        """`host:port` as gRPC targets spell it."""
        return f"{self.host}:{self.port}"


@runtime_checkable
class ComputeBackend(Protocol):
    """Lifecycle of Sail Spark Connect servers. All methods are safe to call from the event loop."""

    async def start(self, spec: InstanceSpec, *, timeout: float = 60.0) -> InstanceHandle:
        """Start an instance and return once it answers health checks (or raise InstanceStartError)."""
        ...

    async def check_health(self, handle: InstanceHandle, *, timeout: float = 5.0) -> bool:
        """True when the instance's gRPC health check answers SERVING."""
        ...

    async def stop(self, handle: InstanceHandle, *, grace: float = 10.0) -> None:
        """Stop the instance (gracefully, then forcibly) and wait until it is gone. Idempotent."""
        ...

    async def find(self, handle: InstanceHandle) -> bool:
        """Whether the instance a persisted handle names still exists (to adopt it after a restart);
        never true for something else that took its place (a reused pid, a recreated pod)."""
        ...

    def running(self, handle: InstanceHandle) -> bool:
        """Whether the instance still exists, without asking it anything (cheap enough for a hot path:
        a pooled instance answered health checks when it started)."""
        ...

    async def stop_by_id(self, instance_id: str, *, grace: float = 5.0) -> bool:
        """Stop the instance named `instance_id` without its handle, whoever started it (a start
        abandoned half-way, a previous life of this node); True when anything was running."""
        ...

    def output_dir(self, handle: InstanceHandle) -> Path:
        """A directory the instance may write a run's results to, which the control plane can read."""
        ...

    async def stop_orphans(self, known_ids: Collection[str]) -> list[str]:
        """Stop instances this backend started whose ids are not in `known_ids`; return the stopped ids."""
        ...
