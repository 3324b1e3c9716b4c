"""Which control-plane nodes of this machine are up, and the Sail servers left by those that are not.

A node is a data directory (`workloads.runtime.node_id`). While its compute runs, a server holds a
shared `flock` on `<data dir>/node.lock`; the kernel drops it when the process ends, however it ends
(SIGKILL included), so "can I take it exclusively?" answers "is any server of that node up?".

Sail servers carry their node's data directory in their environment (`SAILPLANE_COMPUTE_DIR`, see
`compute.local`), so a node that is up can find the servers of one that is down on this machine:
its warm-pool and run servers (which no one else will ever use) and those of sessions that were
closed while it was down. The session controller stops them (`SessionController`), keeping the
servers of sessions still open, which their node adopts when it comes back. Nodes on other machines
are out of reach: their servers stop when their node starts again.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Collection
from pathlib import Path

from sailplane.compute.local import (
    INSTANCE_MARKER,
    OWNER_MARKER,
    LocalSailBackend,
    owned_by_us,
    proc_pids,
    process_environ,
    process_running,
)

LOCK_NAME = "node.lock"


class NodeLock:
    """Held (shared) by each running server of a node, for as long as its compute runs."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # drops the lock


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


def other_nodes_instances(own_data_dir: Path) -> dict[str, set[str]]:
    """Data directory → instance ids of the live Sail servers of other nodes on this machine."""
    own = str(Path(own_data_dir).resolve())
    found: dict[str, set[str]] = {}
    me = os.getpid()
    for pid in proc_pids():
        if pid == me or not owned_by_us(pid) or not process_running(pid):
            continue
        env = process_environ(pid)
        owner, instance = env.get(OWNER_MARKER), env.get(INSTANCE_MARKER)
        if owner and instance and owner != own:
            found.setdefault(owner, set()).add(instance)
    return found


def down_nodes_instances(own_data_dir: Path) -> dict[str, set[str]]:
    """The Sail servers of the nodes of this machine that are down, by data directory."""
    return {owner: ids for owner, ids in other_nodes_instances(own_data_dir).items() if not node_is_up(owner)}


async def stop_down_node_instances(data_dir: str, keep: Collection[str]) -> list[str]:
    """Stop the Sail servers of a node that is down, but those in `keep` (found again by their markers)."""
    return await LocalSailBackend(data_dir).stop_orphans(keep)
