"""Processes on this machine, found through /proc: whether one is alive, and stopping the Sail
server of an instance whichever process started it (a previous life of this node, another node
on the same machine), which the backend's handles cannot do for servers it did not start."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from sailplane.compute.local import INSTANCE_MARKER, group_alive


def _environ_value(pid: int, name: str) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    prefix = name.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2:][:1]
    return state not in (b"Z", b"X", b"")


def kill_instance_processes(instance_id: str, grace: float = 5.0) -> bool:
    """Stop the Sail server of `instance_id` whichever node started it (its environment names the
    instance): SIGTERM to its process group, SIGKILL after `grace`. Blocking."""
    me = os.getpid()
    pids = [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) != me]
    targets = [p for p in pids if process_alive(p) and _environ_value(p, INSTANCE_MARKER) == instance_id]
    if not targets:
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while any(process_alive(p) or group_alive(p) for p in targets) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not any(process_alive(p) or group_alive(p) for p in targets):
            break
    return True
