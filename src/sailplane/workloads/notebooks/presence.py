"""Which notebooks have a browser attached on this node, whether their owner is one of them, and when traffic
last passed.

The proxy counts the marimo WebSockets it relays (a marimo editor keeps one open while its tab is
shown) and touches a notebook on every request; the notebook controller reads both to move a
notebook to `detached` or `idle` and, past their timeouts, to stop it. The owner's sockets are counted apart:
while one is attached the owner is active, and team members who may edit get read mode (`opening.Target.now`).
In memory because a browser is attached to the node whose proxy relays it (a notebook's marimo server is
relayed only by its own node, so this node's count is complete); the database keeps `last_active_at`
(written by ping and, at most every few seconds, by the controller from `last_seen`).
"""

from __future__ import annotations

import threading
import time


def _add(counts: dict[str, int], notebook_id: str, delta: int) -> None:
    left = counts.get(notebook_id, 0) + delta
    if left > 0:
        counts[notebook_id] = left
    else:
        counts.pop(notebook_id, None)


class NotebookPresence:
    """Thread-safe: the proxy runs on the API's event loop, the controller on a background loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: dict[str, int] = {}
        self._owner_sockets: dict[str, int] = {}
        self._seen: dict[str, float] = {}
        self._kernels: dict[str, int] = {}

    def kernel_changed(self, notebook_id: str) -> None:
        """The notebook's kernel was handed to another editor (or claimed): the proxy's cached answers are old."""
        with self._lock:
            self._kernels[notebook_id] = self._kernels.get(notebook_id, 0) + 1

    def kernel_epoch(self, notebook_id: str) -> int:
        """How many kernel changes this node saw for the notebook (the proxy keys its cached answers by it)."""
        with self._lock:
            return self._kernels.get(notebook_id, 0)

    def attach(self, notebook_id: str, *, owner: bool = False) -> None:
        """A browser's WebSocket to the notebook opened (`owner`: the notebook's owner, in edit mode)."""
        with self._lock:
            _add(self._sockets, notebook_id, 1)
            if owner:
                _add(self._owner_sockets, notebook_id, 1)
            self._seen[notebook_id] = time.time()

    def detach(self, notebook_id: str, *, owner: bool = False) -> None:
        """That WebSocket closed (`owner` as it was attached)."""
        with self._lock:
            _add(self._sockets, notebook_id, -1)
            if owner:
                _add(self._owner_sockets, notebook_id, -1)
            self._seen[notebook_id] = time.time()

    def touch(self, notebook_id: str) -> None:
        """Traffic for the notebook passed the proxy (a request or a WebSocket message)."""
        with self._lock:
            self._seen[notebook_id] = time.time()

    def attached(self, notebook_id: str) -> bool:
        with self._lock:
            return self._sockets.get(notebook_id, 0) > 0

    def owner_attached(self, notebook_id: str) -> bool:
        """Whether the notebook's owner has a WebSocket attached (the owner is active)."""
        with self._lock:
            return self._owner_sockets.get(notebook_id, 0) > 0

    def last_seen(self, notebook_id: str) -> float | None:
        """Epoch seconds of the last traffic through this node's proxy, if any since it started."""
        with self._lock:
            return self._seen.get(notebook_id)

    def forget(self, notebook_id: str) -> None:
        """The notebook stopped: nothing of it is attached any more."""
        with self._lock:
            self._sockets.pop(notebook_id, None)
            self._owner_sockets.pop(notebook_id, None)
            self._seen.pop(notebook_id, None)
            self._kernels[notebook_id] = self._kernels.get(notebook_id, 0) + 1
