"""Local compute backend: each instance is a Sail Spark Connect server process on this machine.

Processes are started in their own session (so a stop reaches everything they spawned) and carry
two environment markers, the instance id and the data directory of the backend that started them.
`/proc/<pid>/environ` then tells, after a control-plane restart, whether a pid is still the
instance we think it is, and which Sail processes nobody knows about any more (orphans).

Each instance runs the Python of its Spark line's environment (`InstanceSpec.spark_version`, see
`compute.environments`), installed on first use when it is not yet.

With a `Sandbox` (the server's default), the tracked process is the sandbox's launcher, which
alone carries the markers; Sail runs inside it as the workload user, seeing only its work
directory, its catalogs' storage and its libraries (see `compute.sandbox`).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from sailplane.compute.backend import ComputeError, InstanceHandle, InstanceSpec, InstanceStartError
from sailplane.compute.environments import LINES, SparkEnvError, SparkEnvironments
from sailplane.compute.libraries import LibraryInstaller, LibraryInstallError
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
    stop_marked,
)
from sailplane.compute.sandbox import Mounts, Sandbox, workload_environment

INSTANCE_MARKER = "SAILPLANE_INSTANCE_ID"
OWNER_MARKER = "SAILPLANE_COMPUTE_DIR"
SPARK_CONNECT_SERVICE = "spark.connect.SparkConnectService"

_INSTANCE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Sail logs this line (sail_cli::spark::server, INFO) once it has bound the port, also for --port 0.
_LISTENING_RE = re.compile(rb"Spark Connect server on (\S+):(\d+)")
# Our own configuration must never reach user compute (secrets, database URL) and the server's own
# Sail settings must not leak into an instance whose settings come from its spec.
_STRIPPED_ENV_PREFIXES = ("SAILPLANE_", "SAIL_")
_STRIPPED_ENV_NAMES = {"SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED"}
_LOG_TAIL_BYTES = 4000


def instance_ref(pid: int, start: int | None) -> str:
    """A handle's `ref` for a process: its pid and start time (a reused pid never matches)."""
    return str(pid) if start is None else f"{pid}:{start}"


def parse_ref(ref: str) -> tuple[int, int | None]:
    """(pid, start time or None) of a `ref` this backend made; pid 0 (no process) for any other.

    A ref without a start time (a record from before refs had one) names the pid alone; the
    environment markers still tell a reused pid apart."""
    pid, _, start = ref.partition(":")
    try:
        return int(pid), int(start) if start else None
    except ValueError:
        return 0, None


def pid_of(handle: InstanceHandle) -> int:
    """The launcher process of a local instance (tests and local tooling only)."""
    return parse_ref(handle.ref)[0]


def installed_sail_version() -> str:
    """The Sail this node runs: the pysail every line's environment pins (they all pin the same one)."""
    line = next(iter(LINES.values()))
    for requirement in line.lock.read_text().splitlines():
        name, _, version = requirement.strip().partition("==")
        if name.lower() == "pysail":
            return version
    raise ComputeError(f"{line.lock} pins no pysail")


def local_limitation(image_uri: str | None, libraries: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The first setting this backend cannot honour, as (field path under `sail`/`lakesail`, why).

    It runs the Sail its Spark environments pin, so an image can only name that version; it
    fetches libraries over http(s) with pip, so s3:// locations need a cloud cluster.
    """
    if image_uri:
        version = installed_sail_version()
        tag = image_uri.rsplit("/", 1)[-1].partition(":")[2]
        if tag not in (version, f"v{version}"):
            return ("lakesailImageUri",
                    f"the local cluster runs the installed Sail {version} (pysail); an image can only name that "
                    f"version (e.g. public.ecr.aws/lakesail/sail:{version}), other images need a Kubernetes cluster")
    for i, entry in enumerate(libraries):
        requirements = entry.get("requirements") or {}
        for path, url in (("whl", entry.get("whl")), ("requirements.uri", requirements.get("uri")),
                          ("pypi.repo", (entry.get("pypi") or {}).get("repo"))):
            if isinstance(url, str) and url.startswith("s3://"):
                return (f"libraries.{i}.{path}", "the local cluster fetches libraries over http(s); s3:// needs a "
                        "Kubernetes cluster with a cloud connection")
    return None


def sail_env_name(key: str) -> str:
    """`catalog.list` → `SAIL_CATALOG__LIST`; names already spelled `SAIL_*` pass through."""
    if key.startswith("SAIL_"):
        return key
    return "SAIL_" + key.replace(".", "__").replace("-", "_").upper()


def sail_settings_env(spec: InstanceSpec) -> dict[str, str]:
    """The `SAIL_*` variables for a spec: execution mode first, explicit settings on top."""
    env: dict[str, str] = {}
    if spec.execution_mode == "standalone":
        env["SAIL_MODE"] = "local"
    elif spec.execution_mode == "cluster":
        if spec.workers < 1:
            raise ComputeError("cluster execution needs at least one worker")
        env["SAIL_MODE"] = "local-cluster"
        env["SAIL_CLUSTER__WORKER_INITIAL_COUNT"] = str(spec.workers)
        env["SAIL_CLUSTER__WORKER_MAX_COUNT"] = str(spec.workers)
    else:
        raise ComputeError(f"unknown execution mode {spec.execution_mode!r}")
    for key, value in spec.settings.items():
        env[sail_env_name(key)] = str(value)
    return env


def _ensure_listen_log(rust_log: str | None) -> str:
    """Keep the 'listening on' line visible whatever log level the spec asks for: we read the port from it."""
    directive = "sail_cli=info"
    if not rust_log:
        return "info"
    return rust_log if directive in rust_log else f"{rust_log},{directive}"


def _tail(path: Path, offset: int = 0, limit: int = _LOG_TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(offset, size - limit))
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


async def grpc_health_check(address: str, *, timeout: float = 5.0) -> bool:
    """Standard grpc.health.v1 check (Sail implements it); True only for SERVING. Its messages (protobuf, ~2 MB)
    are loaded by the first check: the gateway relays bytes and needs none."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in (SPARK_CONNECT_SERVICE, ""):
            try:
                response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND and service:
                    continue  # a server that only reports overall health
                return False
            return bool(response.status == health_pb2.HealthCheckResponse.SERVING)
    return False


class LocalSailBackend:
    """Sail Spark Connect servers as child processes, logs under `<data_dir>/instances/<id>.log`.

    Without a sandbox, instances run unconfined as this process's user (tests of the backend itself);
    the server always passes one unless the administrator turned it off.
    """

    def __init__(self, data_dir: str | os.PathLike[str], *, host: str = "127.0.0.1", python: str | None = None,
                 sandbox: Sandbox | None = None, environments: SparkEnvironments | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.instances_dir = self.data_dir / "instances"
        self.host = host
        self.environments = environments or SparkEnvironments()
        # `python -m pysail` of the instance's Spark line; `python` replaces it for every line (tests).
        self.python = python
        self.sandbox = sandbox
        self.libraries = LibraryInstaller(self.data_dir / "libraries", sandbox=sandbox)
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- paths and process set-up ---------------------------------------------------------------

    def log_path(self, instance_id: str) -> Path:
        return self.instances_dir / f"{instance_id}.log"

    def work_dir(self, instance_id: str) -> Path:
        """The instance's current directory, so relative paths (e.g. spark-warehouse) stay per instance."""
        return self.instances_dir / instance_id

    def output_dir(self, handle: InstanceHandle) -> Path:
        return self.work_dir(handle.instance_id) / "output"

    def command(self, python: str) -> list[str]:
        return [python, "-m", "pysail", "spark", "server", "--ip", self.host, "--port", "0"]

    def environment(self, spec: InstanceSpec, libraries: Path | None = None) -> dict[str, str]:
        if self.sandbox is not None:
            env = workload_environment()
        else:
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(_STRIPPED_ENV_PREFIXES) and k not in _STRIPPED_ENV_NAMES
            }
        env.update(spec.extra_env)
        env.update(sail_settings_env(spec))
        env["RUST_LOG"] = _ensure_listen_log(env.get("RUST_LOG"))
        env[INSTANCE_MARKER] = spec.instance_id
        env[OWNER_MARKER] = str(self.data_dir)
        if libraries is not None:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(libraries), env.get("PYTHONPATH")) if p)
        return env

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, spec: InstanceSpec, *, timeout: float = 60.0) -> InstanceHandle:
        if not _INSTANCE_ID_RE.match(spec.instance_id):
            raise ComputeError(f"invalid instance id {spec.instance_id!r}")
        running = [pid for iid, pid in self.scan() if iid == spec.instance_id]
        if running:
            raise ComputeError(f"instance {spec.instance_id} is already running (pid {running[0]})")
        try:  # before the start clock: a first install of big packages takes its own time
            spark = await self.environments.ensure(spec.spark_version)
            libraries = await self.libraries.install(spec.libraries, spark)
        except (SparkEnvError, LibraryInstallError, ValueError) as exc:
            raise InstanceStartError(str(exc)) from exc
        env = self.environment(spec, libraries)
        log_path = self.log_path(spec.instance_id)
        work_dir = self.work_dir(spec.instance_id)
        work_dir.mkdir(parents=True, exist_ok=True)
        command = self.command(self.python or spark.python)
        if self.sandbox is not None:
            command = await asyncio.to_thread(self._confine, spec, command, work_dir, libraries)
        started_at = datetime.now(UTC)
        with open(log_path, "ab") as log:
            log.write(f"--- sailplane: starting instance {spec.instance_id} at {started_at.isoformat()}\n".encode())
            log.flush()
            offset = log.tell()
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=work_dir,
                start_new_session=True,
                close_fds=True,
            )
        self._children[proc.pid] = proc
        ref = instance_ref(proc.pid, process_start(proc.pid))
        try:
            port = await self._wait_ready(proc, log_path, offset, timeout)
        except BaseException:
            await asyncio.to_thread(self._stop_pid, spec.instance_id, proc.pid, 2.0)
            raise
        return InstanceHandle(
            instance_id=spec.instance_id, ref=ref, host=self.host, port=port, started_at=started_at
        )

    def _confine(self, spec: InstanceSpec, command: list[str], work_dir: Path, libraries: Path | None) -> list[str]:
        """The sandboxed command: its work directory (with `output/` for a run's results) and its
        catalogs' storage writable, its libraries readable, the markers kept outside."""
        assert self.sandbox is not None
        output = work_dir / "output"
        output.mkdir(exist_ok=True)
        storage = [Path(p) for p in spec.storage]
        for path in storage:
            if not path.exists():
                path.mkdir(parents=True)
                self.sandbox.own(path)
        self.sandbox.own(work_dir, output)
        mounts = Mounts(readable=(libraries,) if libraries else (), writable=(work_dir, *storage))
        return self.sandbox.command(command, cwd=work_dir, mounts=mounts, unset_env=(INSTANCE_MARKER, OWNER_MARKER))

    async def _wait_ready(self, proc: subprocess.Popen[bytes], log_path: Path, offset: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        port: int | None = None
        delay = 0.02
        while True:
            code = proc.poll()
            if code is not None:
                raise InstanceStartError(
                    f"Sail exited with code {code} before it was ready; log {log_path}:\n{_tail(log_path, offset)}"
                )
            if port is None:
                port = self._port_from_log(log_path, offset)
            remaining = deadline - time.monotonic()
            if port is not None and await grpc_health_check(
                f"{self.host}:{port}", timeout=max(0.1, min(2.0, remaining))
            ):
                return port
            if time.monotonic() >= deadline:
                where = f"port {port} not SERVING" if port else "it never reported its port"
                raise InstanceStartError(
                    f"Sail did not become ready within {timeout:.0f}s ({where}); log {log_path}:\n"
                    f"{_tail(log_path, offset)}"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    @staticmethod
    def _port_from_log(log_path: Path, offset: int) -> int | None:
        with open(log_path, "rb") as f:
            f.seek(offset)
            match = _LISTENING_RE.search(f.read(64 * 1024))
        return int(match.group(2)) if match else None

    async def check_health(self, handle: InstanceHandle, *, timeout: float = 5.0) -> bool:
        if not await self.find(handle):
            return False
        return await grpc_health_check(handle.address, timeout=timeout)

    async def stop(self, handle: InstanceHandle, *, grace: float = 10.0) -> None:
        pid, start = parse_ref(handle.ref)
        await asyncio.to_thread(self._stop_pid, handle.instance_id, pid, grace, start)

    async def find(self, handle: InstanceHandle) -> bool:
        return self._is_instance(handle.instance_id, *parse_ref(handle.ref))

    def running(self, handle: InstanceHandle) -> bool:
        pid, start = parse_ref(handle.ref)
        if start is None:
            return pid > 0 and process_running(pid)
        return process_start(pid) == start

    async def stop_by_id(self, instance_id: str, *, grace: float = 5.0) -> bool:
        """By the instance marker alone (not the data directory): a server of any node of this machine."""
        return await asyncio.to_thread(stop_marked, INSTANCE_MARKER, instance_id, grace)

    async def stop_orphans(self, known_ids: Collection[str]) -> list[str]:
        known = set(known_ids)
        orphans = [(iid, pid) for iid, pid in self.scan() if iid not in known]
        await asyncio.gather(*(asyncio.to_thread(self._stop_pid, iid, pid, 5.0) for iid, pid in orphans))
        return [iid for iid, _ in orphans]

    def scan(self) -> list[tuple[str, int]]:
        """(instance id, pid) of every live instance started by a backend with this data directory.

        One pid per instance: its process group's leader (what `start` returned) when alive; the
        processes it started carry the same markers (a sandbox's init does) and go with its group.
        """
        found: dict[str, tuple[bool, int]] = {}
        me = os.getpid()
        for pid in proc_pids():
            if pid == me or not process_running(pid) or not owned_by_us(pid):
                continue
            env = process_environ(pid)
            iid = env.get(INSTANCE_MARKER)
            if iid and env.get(OWNER_MARKER) == str(self.data_dir):
                leader = group_of(pid) == pid
                if iid not in found or (leader and not found[iid][0]):
                    found[iid] = (leader, pid)
        return [(iid, pid) for iid, (_, pid) in found.items()]

    # -- internals (blocking; run in a thread) --------------------------------------------------

    def _is_instance(self, instance_id: str, pid: int, start: int | None = None) -> bool:
        """A live process (started at `start`, when known) whose environment carries our markers:
        a reused pid never matches."""
        if pid <= 0 or not process_running(pid) or not owned_by_us(pid):
            return False
        if start is not None and process_start(pid) != start:
            return False
        env = process_environ(pid)
        return env.get(INSTANCE_MARKER) == instance_id and env.get(OWNER_MARKER) == str(self.data_dir)

    def _exited(self, pid: int) -> bool:
        """Whether the process has exited, without reaping our own child (so its pid stays reserved)."""
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
        """Wait for the process and every process of its group (a sandbox's launcher exits before Sail)."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while not self._exited(pid) or group_alive(pgid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        return True

    def _stop_pid(self, instance_id: str, pid: int, grace: float, start: int | None = None) -> None:
        """SIGTERM the process group, SIGKILL it after `grace`, then reap.

        A marked process that is not its group's leader (a sandbox's init whose launcher was killed)
        takes its whole group along: the markers say the group is the instance's.
        """
        proc = self._children.get(pid)
        if proc is None and not self._is_instance(instance_id, pid, start):
            return  # already gone, or the pid now belongs to someone else
        pgid = pid if proc is not None else (group_of(pid) or pid)
        if not self._exited(pid) or group_alive(pgid):
            _signal(pgid, pid, signal.SIGTERM)
            if not self._wait_exit(pid, pgid, grace):
                _signal(pgid, pid, signal.SIGKILL)
                if not self._wait_exit(pid, pgid, 30.0):
                    raise ComputeError(f"instance {instance_id} (pid {pid}) did not die after SIGKILL")
        if proc is not None:
            # Our child is gone but not reaped yet, so its group id cannot have been reused: clear stragglers.
            signal_group(pid, signal.SIGKILL)
            proc.wait()
            self._children.pop(pid, None)


def _signal(pgid: int, pid: int, sig: signal.Signals) -> None:
    signal_group(pgid, sig)
    signal_process(pid, sig)
