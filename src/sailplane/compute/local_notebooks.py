"""Local notebook backend: each notebook server is a `marimo edit` process on this machine.

Like `compute.local`'s Sail servers: started in a session of its own (a stop reaches everything it
spawned: the marimo kernel too), in the workload sandbox when the node has one, and tracked by two
environment markers on the launcher, the notebook id and the data directory of the backend that
started it, so after a control-plane restart `/proc` tells whether a pid is still that server and
which marimo servers nobody knows about any more (orphans). The markers differ from the Sail
servers' (`SAILPLANE_INSTANCE_ID`), so neither backend ever takes the other's processes for its own.

marimo runs with the notebook environment's Python (`compute.environments.notebook_environment`:
marimo and the PySpark client, pinned apart from the control plane). The access token reaches it on
standard input (`--token-password-file -`), never on its command line.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

import httpx

from sailplane.compute.backend import ComputeError
from sailplane.compute.environments import SparkEnvError, SparkEnvironments, notebook_environment
from sailplane.compute.libraries import LibraryInstaller, LibraryInstallError
from sailplane.compute.local import OWNER_MARKER, instance_ref, parse_ref
from sailplane.compute.notebook_servers import NotebookServerHandle, NotebookServerSpec, NotebookStartError
from sailplane.compute.processes import (
    group_alive,
    group_of,
    owned_by_us,
    proc_pids,
    process_environ,
    process_running,
    process_start,
    signal_group,
    signal_process,
)
from sailplane.compute.sandbox import Mounts, Sandbox, workload_environment

NOTEBOOK_MARKER = "SAILPLANE_NOTEBOOK_ID"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_STRIPPED_ENV_PREFIXES = ("SAILPLANE_", "SAIL_", "MARIMO_")
_LOG_TAIL_BYTES = 3000


def free_port(host: str) -> int:
    """A port nobody listens on now (marimo needs a number; the short race is retried by the caller)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, offset: int = 0, limit: int = _LOG_TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(offset, size - limit))
            return f.read().decode(errors="replace").strip()
    except FileNotFoundError:
        return ""


class LocalNotebookBackend:
    """marimo servers as child processes: work directories `<data_dir>/notebooks/<id>/` (the notebook
    file, marimo's own state; emptied on every start), logs `<data_dir>/notebooks/<id>.log`."""

    def __init__(self, data_dir: str | os.PathLike[str], *, host: str = "127.0.0.1", sandbox: Sandbox | None = None,
                 environment: SparkEnvironments | None = None, libraries: LibraryInstaller | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.root = self.data_dir / "notebooks"
        self.host = host
        self.sandbox = sandbox
        self.environment = environment or notebook_environment()
        self.libraries = libraries or LibraryInstaller(self.data_dir / "libraries", sandbox=sandbox)
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- paths ---------------------------------------------------------------------------------

    def work_dir(self, notebook_id: str) -> Path:
        return self.root / notebook_id

    def log_path(self, notebook_id: str) -> Path:
        return self.root / f"{notebook_id}.log"

    def output_tail(self, notebook_id: str) -> str:
        return _tail(self.log_path(notebook_id))

    @staticmethod
    def _file(spec_or_id: NotebookServerSpec | str) -> str:
        return spec_or_id.filename if isinstance(spec_or_id, NotebookServerSpec) else "notebook.py"

    def health_url(self, host: str, port: int, base_url: str | None) -> str:
        return f"http://{host}:{port}{(base_url or '').rstrip('/')}/health"

    def environment_of(self, spec: NotebookServerSpec, libraries: Path | None) -> dict[str, str]:
        if self.sandbox is not None:
            env = workload_environment()
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_ENV_PREFIXES)}
        env.update({k: v for k, v in spec.env.items() if k not in (NOTEBOOK_MARKER, OWNER_MARKER)})
        env[NOTEBOOK_MARKER] = spec.notebook_id
        env[OWNER_MARKER] = str(self.data_dir)
        if libraries is not None:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(libraries), env.get("PYTHONPATH")) if p)
        return env

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, spec: NotebookServerSpec, *, timeout: float = 60.0) -> NotebookServerHandle:
        if not _ID_RE.match(spec.notebook_id):
            raise ComputeError(f"invalid notebook id {spec.notebook_id!r}")
        if any(nid == spec.notebook_id for nid, _ in self.scan()):
            raise ComputeError(f"a server of notebook {spec.notebook_id} is already running")
        try:  # before the start clock: a first install takes its own time
            env = await self.environment.ensure()
            libraries = await self.libraries.install(spec.libraries, env)
        except (SparkEnvError, LibraryInstallError) as exc:
            raise NotebookStartError(str(exc)) from exc
        work_dir = self.work_dir(spec.notebook_id)
        try:  # empty on every start: no file a previous kernel (another editor's code) wrote survives
            shutil.rmtree(work_dir)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise NotebookStartError(f"the notebook's working directory could not be emptied: {exc}") from exc
        work_dir.mkdir(parents=True, exist_ok=True)
        path = work_dir / spec.filename
        path.write_text(spec.source, encoding="utf-8")
        port = free_port(self.host)
        command = [env.python, "-m", "marimo", "edit", str(path), "--headless", "--host", self.host, "--port",
                   str(port), "--token-password-file", "-", "--skip-update-check", "--no-sandbox"]
        if spec.base_url:
            command += ["--base-url", spec.base_url]
        if self.sandbox is not None:
            self.sandbox.own(work_dir, recursive=True)
            mounts = Mounts(readable=(libraries,) if libraries else (), writable=(work_dir,))
            command = self.sandbox.command(command, cwd=work_dir, mounts=mounts,
                                           unset_env=(NOTEBOOK_MARKER, OWNER_MARKER))
        log_path = self.log_path(spec.notebook_id)
        started_at = datetime.now(UTC)
        with open(log_path, "ab") as log:
            log.write(f"--- sailplane: starting notebook {spec.notebook_id} at {started_at.isoformat()}\n".encode())
            log.flush()
            offset = log.tell()
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                    env=self.environment_of(spec, libraries), cwd=work_dir, start_new_session=True,
                                    close_fds=True)
        self._children[proc.pid] = proc
        assert proc.stdin is not None
        try:
            proc.stdin.write(spec.token.encode())
            proc.stdin.close()
        except OSError:
            pass  # it exited already: the wait below says why
        ref = instance_ref(proc.pid, process_start(proc.pid))
        try:
            await self._wait_ready(proc, self.health_url(self.host, port, spec.base_url), log_path, offset, timeout)
        except BaseException:
            await asyncio.to_thread(self._stop_pid, spec.notebook_id, proc.pid, 2.0)
            raise
        return NotebookServerHandle(notebook_id=spec.notebook_id, ref=ref, host=self.host, port=port,
                                    started_at=started_at, base_url=spec.base_url)

    async def _wait_ready(self, proc: subprocess.Popen[bytes], url: str, log_path: Path, offset: int,
                          timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                code = proc.poll()
                if code is not None:
                    raise NotebookStartError(f"marimo exited with code {code} before it was ready:\n"
                                             f"{_tail(log_path, offset)}")
                try:
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() >= deadline:
                    raise NotebookStartError(f"marimo did not answer within {timeout:.0f}s:\n{_tail(log_path, offset)}")
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.25)

    async def check_health(self, handle: NotebookServerHandle, *, timeout: float = 5.0) -> bool:
        if not await self.find(handle):
            return False
        async with httpx.AsyncClient(timeout=timeout) as client:
            try:
                response = await client.get(self.health_url(handle.host, handle.port, handle.base_url))
            except httpx.HTTPError:
                return False
        return response.status_code == 200

    async def stop(self, handle: NotebookServerHandle, *, grace: float = 10.0) -> None:
        pid, start = parse_ref(handle.ref)
        await asyncio.to_thread(self._stop_pid, handle.notebook_id, pid, grace, start)

    async def stop_by_id(self, notebook_id: str, *, grace: float = 5.0) -> bool:
        found = [pid for nid, pid in self.scan() if nid == notebook_id]
        for pid in found:
            await asyncio.to_thread(self._stop_pid, notebook_id, pid, grace)
        return bool(found)

    async def find(self, handle: NotebookServerHandle) -> bool:
        return self._is_server(handle.notebook_id, *parse_ref(handle.ref))

    def running(self, handle: NotebookServerHandle) -> bool:
        pid, start = parse_ref(handle.ref)
        if pid <= 0:
            return False
        proc = self._children.get(pid)
        if proc is not None and proc.poll() is not None:
            return False
        return process_running(pid) if start is None else process_start(pid) == start

    async def stop_orphans(self, known_ids: Collection[str]) -> list[str]:
        known = set(known_ids)
        orphans = [(nid, pid) for nid, pid in self.scan() if nid not in known]
        await asyncio.gather(*(asyncio.to_thread(self._stop_pid, nid, pid, 5.0) for nid, pid in orphans))
        return [nid for nid, _ in orphans]

    async def read_source(self, handle: NotebookServerHandle) -> str | None:
        try:
            return (self.work_dir(handle.notebook_id) / self._file(handle.notebook_id)).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def scan(self) -> list[tuple[str, int]]:
        """(notebook id, pid) of every live server started by a backend with this data directory (its
        process group's leader when alive)."""
        found: dict[str, tuple[bool, int]] = {}
        me = os.getpid()
        for pid in proc_pids():
            if pid == me or not process_running(pid) or not owned_by_us(pid):
                continue
            env = process_environ(pid)
            nid = env.get(NOTEBOOK_MARKER)
            if nid and env.get(OWNER_MARKER) == str(self.data_dir):
                leader = group_of(pid) == pid
                if nid not in found or (leader and not found[nid][0]):
                    found[nid] = (leader, pid)
        return [(nid, pid) for nid, (_, pid) in found.items()]

    # -- internals (blocking; run in a thread) ------------------------------------------------

    def _is_server(self, notebook_id: str, pid: int, start: int | None = None) -> bool:
        if pid <= 0 or not process_running(pid) or not owned_by_us(pid):
            return False
        if start is not None and process_start(pid) != start:
            return False
        env = process_environ(pid)
        return env.get(NOTEBOOK_MARKER) == notebook_id and env.get(OWNER_MARKER) == str(self.data_dir)

    def _exited(self, pid: int) -> bool:
        proc = self._children.get(pid)
        if proc is not None:
            if proc.returncode is not None:
                return True
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True
            return info is not None
        return not process_running(pid)

    def _wait_exit(self, pid: int, pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while not self._exited(pid) or group_alive(pgid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        return True

    def _stop_pid(self, notebook_id: str, pid: int, grace: float, start: int | None = None) -> None:
        """SIGTERM the process group, SIGKILL it after `grace`, then reap our child."""
        proc = self._children.get(pid)
        if proc is None and not self._is_server(notebook_id, pid, start):
            return  # gone, or the pid is someone else's now
        pgid = pid if proc is not None else (group_of(pid) or pid)
        if not self._exited(pid) or group_alive(pgid):
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 30.0)):
                signal_group(pgid, sig)
                signal_process(pid, sig)
                if self._wait_exit(pid, pgid, wait):
                    break
            else:
                raise ComputeError(f"the server of notebook {notebook_id} (pid {pid}) did not die after SIGKILL")
        if proc is not None:
            signal_group(pid, signal.SIGKILL)
            proc.wait()
            self._children.pop(pid, None)

