"""Processes on this machine, seen through /proc: the one place that knows how (local compute only).

The local backend (`compute.local`), the node sweep (`compute.nodes`) and the run driver engine
(`runs.execution`) all track their processes by environment markers and process groups; they share
these helpers so that "alive", "whose" and "stop the group" mean the same thing everywhere.
Nothing here is needed by a backend that runs elsewhere (a Kubernetes cluster).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

_GONE = {"Z", "X"}  # zombie (waiting to be reaped) or dead: not running any more


def read_proc(pid: int, name: str) -> bytes | None:
    """`/proc/<pid>/<name>`, or None when there is no such process (or it is not readable)."""
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return None


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group id) from /proc/<pid>/stat, or None when there is no such process."""
    stat = read_proc(pid, "stat")
    if not stat:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()  # the command name may contain spaces and parentheses
    try:
        return fields[0].decode(), int(fields[2])
    except (IndexError, ValueError):
        return None


def process_state(pid: int) -> str | None:
    """The one-letter state of a process (None: no such process)."""
    stat = read_proc(pid, "stat")
    if not stat:
        return None
    return stat[stat.rfind(b")") + 2 :][:1].decode() or None


def process_running(pid: int) -> bool:
    """A process that exists and is neither a zombie nor dead."""
    state = process_state(pid)
    return state is not None and state not in _GONE


def process_start(pid: int) -> int | None:
    """When a running process started (clock ticks since boot, /proc/<pid>/stat field 22): with its
    pid, a name no later process takes. None: no such process, or a zombie or dead one."""
    stat = read_proc(pid, "stat")
    if not stat:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return None if fields[0].decode() in _GONE else int(fields[19])
    except (IndexError, ValueError):
        return None


def group_of(pid: int) -> int | None:
    """The process group id of `pid` (None: no such process)."""
    stat = proc_stat(pid)
    return stat[1] if stat else None


def process_environ(pid: int) -> dict[str, str]:
    """The environment a process started with (empty when it is gone or not ours to read)."""
    raw = read_proc(pid, "environ") or b""
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def environ_value(pid: int, name: str) -> str | None:
    """One variable of a process's start environment (the markers we track processes by)."""
    raw = read_proc(pid, "environ") or b""
    prefix = name.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def proc_pids() -> Iterator[int]:
    """Every pid of this machine (of our pid namespace)."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def owned_by_us(pid: int) -> bool:
    """Only processes of our own uid can be instances: a workload cannot forge one by copying markers."""
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return False


def group_alive(pgid: int) -> bool:
    """Whether a process of the group is still alive (zombies waiting to be reaped do not count)."""
    try:
        os.killpg(pgid, 0)  # the cheap common answer: no such group
    except (ProcessLookupError, PermissionError):
        return False
    for pid in proc_pids():
        stat = proc_stat(pid)
        if stat is not None and stat[1] == pgid and stat[0] not in _GONE:
            return True
    return False


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a process group; one that is gone (or no longer ours) is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def signal_process(pid: int, sig: signal.Signals) -> None:
    """Signal one process; one that is gone (or no longer ours) is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_marked(marker: str, value: str, grace: float = 5.0, kill_wait: float = 10.0) -> bool:
    """Stop every process whose environment has `marker=value`, whichever process started it:
    SIGTERM to each one's group and itself, SIGKILL after `grace`. Blocking; True when any was found.

    For servers this node holds no handle to (a previous life, another node of this machine).
    """
    me = os.getpid()
    pids = [p for p in proc_pids() if p != me]
    targets = [p for p in pids if process_running(p) and environ_value(p, marker) == value]
    if not targets:
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
        for pid in targets:
            signal_group(pid, sig)
            signal_process(pid, sig)
        deadline = time.monotonic() + wait
        while any(process_running(p) or group_alive(p) for p in targets) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not any(process_running(p) or group_alive(p) for p in targets):
            break
    return True
