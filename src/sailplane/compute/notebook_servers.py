"""The notebook server interface: how the control plane starts, watches and stops marimo servers.

A notebook's marimo server is an instance of the compute boundary like a Sail server: the notebook
controller talks only to this Protocol (the local backend runs a process on this machine, a Kubernetes
backend will run a pod). Everything a backend needs to find a server again after a control-plane
restart is in the `NotebookServerHandle` (its `ref` opaque to the caller), which the caller persists.

A server serves one notebook file under `base_url` (e.g. `/notebooks/<id>`, where the proxy exposes
it) and answers only requests carrying its access `token` (marimo's token password: the proxy sends
it as `Authorization: Bearer <token>`; `?access_token=<token>` sets marimo's session cookie).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from sailplane.compute.backend import ComputeError
from sailplane.compute.libraries import Library


class NotebookStartError(ComputeError):
    """The notebook server did not become ready; the message carries the tail of its output."""


@dataclass(frozen=True)
class NotebookServerSpec:
    """What to run: the notebook's source (written to the server's working directory as its `.py` file,
    which marimo saves back to), the kernel's environment (`SPARK_REMOTE` and the workload config's
    `extraEnv`; never the variables a backend tracks servers by), libraries importable by the kernel,
    the access token and the base URL the server answers under (None: `/`)."""

    notebook_id: str
    source: str
    token: str
    env: dict[str, str] = field(default_factory=dict)
    libraries: tuple[Library, ...] = ()
    base_url: str | None = None
    filename: str = "notebook.py"


@dataclass(frozen=True)
class NotebookServerHandle:
    """Where a running notebook server is. Persist it: it is all `find`/`stop` need after a restart."""

    notebook_id: str
    ref: str
    host: str
    port: int
    started_at: datetime
    base_url: str | None = None  # as the spec gave it (what the caller derives from the notebook, not stored)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@runtime_checkable
class NotebookBackend(Protocol):
    """Lifecycle of marimo notebook servers. All methods are safe to call from an event loop."""

    async def start(self, spec: NotebookServerSpec, *, timeout: float = 60.0) -> NotebookServerHandle:
        """Start a server in an empty working directory (nothing an earlier server of the notebook, another
        editor's kernel, wrote is there) and return once it answers its health check (or raise
        NotebookStartError)."""
        ...

    async def check_health(self, handle: NotebookServerHandle, *, timeout: float = 5.0) -> bool:
        """True when the server exists and its health endpoint answers."""
        ...

    async def stop(self, handle: NotebookServerHandle, *, grace: float = 10.0) -> None:
        """Stop the server (gracefully, then forcibly) and wait until it is gone. Idempotent."""
        ...

    async def stop_by_id(self, notebook_id: str, *, grace: float = 5.0) -> bool:
        """Stop the notebook's server without its handle (a start abandoned half-way); True when one ran."""
        ...

    async def find(self, handle: NotebookServerHandle) -> bool:
        """Whether the server a persisted handle names still exists (never something that took its place)."""
        ...

    def running(self, handle: NotebookServerHandle) -> bool:
        """Whether the server still exists, without asking it anything (cheap: every controller tick)."""
        ...

    async def stop_orphans(self, known_ids: Collection[str]) -> list[str]:
        """Stop servers this backend started whose notebook ids are not in `known_ids`; the stopped ids."""
        ...

    async def read_source(self, handle: NotebookServerHandle) -> str | None:
        """The notebook file as the server last saved it (None when it cannot be read)."""
        ...

    def output_tail(self, notebook_id: str) -> str:
        """The last lines the notebook's server wrote (for a failure's message)."""
        ...
