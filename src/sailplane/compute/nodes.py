"""Which control-plane nodes of this machine are up, and the Sail servers left by those that are not.

A node is a data directory (`workloads.runtime.node_id`). While its compute runs, a server holds a
shared `flock` on `<data dir>/node.lock`; the kernel drops it when the process ends, however it ends
(SIGKILL included), so "can I take it exclusively?" answers "is any server of that node up?". The
lock file also names the node's deployment (its database, `deployment_id`): only nodes of the same
deployment know which of a down node's servers are still needed, so another installation on the same
machine (a second server with its own database, a test run) never touches them.

Sail servers carry their node's data directory in their environment (`SAILPLANE_COMPUTE_DIR`, see
`compute.local`), so a node that is up can find the servers of one that is down on this machine:
its warm-pool and run servers (which no one else will ever use) and those of sessions that were
closed while it was down. The session controller stops them (`SessionController`), keeping the
servers of sessions still open, which their node adopts when it comes back. Nodes on other machines
are out of reach: their servers stop when their node starts again.

marimo servers carry the same data-directory marker (`compute.local_notebooks`), so the notebook
controller does the same for the notebooks of a down node that were stopped (or deleted) meanwhile,
through a backend over that node's data directory (`down_node_notebooks`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Collection
from pathlib import Path

from sqlalchemy.engine import make_url

from sailplane.compute.local import INSTANCE_MARKER, OWNER_MARKER, LocalSailBackend
from sailplane.compute.local_notebooks import NOTEBOOK_MARKER, LocalNotebookBackend
from sailplane.compute.notebook_servers import NotebookBackend
from sailplane.compute.processes import owned_by_us, proc_pids, process_environ, process_running

LOCK_NAME = "node.lock"


def deployment_id(database_url: str) -> str:
    """A fingerprint of the database a node serves: the URL without its password (a SQLite file by its
    absolute path). Two URLs for one database count as two deployments, which errs on the safe side:
    their nodes leave each other's servers to be adopted or stopped when their own node is back."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).resolve()))
    plain = url.set(password=None).render_as_string(hide_password=False)
    return hashlib.sha256(plain.encode()).hexdigest()[:32]


class NodeLock:
    """Held (shared) by each running server of a node, for as long as its compute runs; the file names
    the node's deployment."""

    def __init__(self, data_dir: Path, deployment: str | None = None) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self.deployment = deployment
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if self.deployment is not None and _read(fd) != self.deployment:
                os.ftruncate(fd, 0)
                os.pwrite(fd, self.deployment.encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # drops the lock


def _read(fd: int) -> str:
    return os.pread(fd, 256, 0).decode(errors="replace").strip()


def node_deployment(data_dir: str | Path) -> str | None:
    """The deployment a node's lock file names (None: no lock file, or one that names none)."""
    try:
        fd = os.open(Path(data_dir) / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _read(fd) or None
    finally:
        os.close(fd)


def node_is_up(data_dir: str | Path) -> bool:
    """Whether a server of the node with this data directory runs on this machine. A node without a
    lock file (one of a version before the lock) counts as up: it is left alone."""
    path = Path(data_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return Path(data_dir).is_dir()  # a data directory that is gone has no server either
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the probe's lock when it got one
    return False


def _other_nodes(own_data_dir: Path, marker: str) -> dict[str, set[str]]:
    """Data directory → the `marker` values (ids) of the live processes of other nodes on this machine."""
    own = str(Path(own_data_dir).resolve())
    found: dict[str, set[str]] = {}
    me = os.getpid()
    for pid in proc_pids():
        if pid == me or not owned_by_us(pid) or not process_running(pid):
            continue
        env = process_environ(pid)
        owner, found_id = env.get(OWNER_MARKER), env.get(marker)
        if owner and found_id and owner != own:
            found.setdefault(owner, set()).add(found_id)
    return found


def _down(found: dict[str, set[str]], deployment: str) -> dict[str, set[str]]:
    return {owner: ids for owner, ids in found.items()
            if node_deployment(owner) == deployment and not node_is_up(owner)}


def other_nodes_instances(own_data_dir: Path) -> dict[str, set[str]]:
    """Data directory → instance ids of the live Sail servers of other nodes on this machine."""
    return _other_nodes(own_data_dir, INSTANCE_MARKER)


def down_nodes_instances(own_data_dir: Path, deployment: str) -> dict[str, set[str]]:
    """The Sail servers of the nodes of this machine and deployment that are down, by data directory."""
    return _down(other_nodes_instances(own_data_dir), deployment)


def down_nodes_notebooks(own_data_dir: Path, deployment: str) -> dict[str, set[str]]:
    """The notebook ids of the marimo servers of the nodes of this machine and deployment that are down,
    by data directory."""
    return _down(_other_nodes(own_data_dir, NOTEBOOK_MARKER), deployment)


def down_node_notebooks(data_dir: str) -> NotebookBackend:
    """The marimo servers of a node that is down, to read the file each saved and stop them (it starts none:
    without the node's sandbox and environments it could not)."""
    return LocalNotebookBackend(data_dir)


async def stop_down_node_instances(data_dir: str, keep: Collection[str]) -> list[str]:
    """Stop the Sail servers of a node that is down, but those in `keep` (found again by their markers)."""
    return await LocalSailBackend(data_dir).stop_orphans(keep)
