"""Live servers for run tests, and shortcuts: jobs, runs, waiting for states, processes.

Run tests use a database of their own (a second SQLite file, or a second database on the test
PostgreSQL server): every server on a database dispatches its ready runs, so other test servers
on the shared database would otherwise execute (and hold the logs of) these tests' runs.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sailplane.compute.local import INSTANCE_MARKER, LocalSailBackend
from sailplane.config import Settings
from sailplane.kit.ids import new_id
from sailplane.workloads.runs.execution import RUN_MARKER, find_run_processes
from tests.conftest import make_settings
from tests.support.actors import Actor
from tests.support.waiting import wait_until as _wait_until

TERMINAL = ("succeeded", "failed", "timeout", "cancelled")
EXECUTING = ("dispatched", "waiting_for_sail", "running")
# Fast loops so lifecycle tests take seconds: leases, retries and kept instances. The stop grace is long, so a test
# sees a process that ignores SIGTERM still stopping however loaded the machine (it then ends that process itself);
# every other test's processes end at SIGTERM and never wait for it.
RUNNER_EXTRA = {
    "runs_poll_interval": "0.2", "runs_lease_seconds": "3", "runs_renew_interval": "0.5",
    "runs_retain_seconds": "3", "runs_retry_backoff": "0.2", "runs_pool_size": "2", "runs_stop_grace": "60",
}


def fresh_database(database_url: str, directory: Path) -> str:
    """An empty database beside the shared test database (same engine)."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{directory / f'runs-{new_id().lower()}.db'}"
    import psycopg

    base, _, _name = database_url.rpartition("/")
    name = f"runs_{new_id().lower()}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{plain}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def runner_settings(data_dir: Path, database_url: str, **extra: str) -> Settings:
    # Jobs may clone local repositories only from a source root, beside (never inside) the data directory.
    sources = data_dir.parent / f"{data_dir.name}-git-sources"
    sources.mkdir(exist_ok=True)
    return make_settings(data_dir, database_url, None, controller_interval_seconds=0.2,
                         compute_start_timeout_seconds=60.0, source_roots=(sources,),
                         extra={**RUNNER_EXTRA, **extra})


def source_repo(settings: Settings, name: str = "repo") -> Path:
    """Where a test's git repository must live for the server's jobs to clone it."""
    return settings.source_roots[0] / f"{name}-{new_id()}"


# --- processes ------------------------------------------------------------------------------------

def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X", b"")


def run_processes(data_dir: Path) -> list[int]:
    """Live driver processes of runs whose output goes under `data_dir`."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _alive(int(name)):
            env = _environ(int(name))
            if RUN_MARKER in env and env.get("SAILPLANE_OUTPUT_PATH", "").startswith(str(data_dir)):
                found.append(int(name))
    return found


def instance_alive(instance_id: str) -> bool:
    return any(_alive(int(n)) and _environ(int(n)).get(INSTANCE_MARKER) == instance_id
               for n in os.listdir("/proc") if n.isdigit())


def sail_instances(data_dir: Path) -> dict[str, int]:
    return dict(LocalSailBackend(data_dir).scan())


def assert_nothing_left(data_dir: Path) -> None:
    """No Sail server and no run process of this node may outlive its server."""
    import asyncio

    backend = LocalSailBackend(data_dir)
    sail = backend.scan()
    drivers = run_processes(data_dir)
    asyncio.run(backend.stop_orphans(()))
    for pid in drivers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, 9)
    assert sail == [], f"Sail processes left running: {sail}"
    assert drivers == [], f"run processes left running: {drivers}"


# --- API shortcuts --------------------------------------------------------------------------------

def unique_key(prefix: str = "job") -> str:
    return f"{prefix}-{new_id().lower()}"


def make_job(actor: Actor, team: str, config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"jobKey": fields.pop("jobKey", unique_key()), "clusterId": "LOCAL", "teamIds": [team],
            "config": config, **fields}
    r = actor.post("/workloads/jobs", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def python_job(actor: Actor, team: str, source: str, **fields: Any) -> dict[str, Any]:
    lakesail = fields.pop("lakesail", None)
    config: dict[str, Any] = {"python": {"source": source, **fields.pop("python", {})}}
    if lakesail:
        config["lakesail"] = lakesail
    return make_job(actor, team, config, **fields)


def sql_job(actor: Actor, team: str, sql: str, **fields: Any) -> dict[str, Any]:
    return make_job(actor, team, {"sql": {"source": sql}}, **fields)


def create_run(actor: Actor, job_id: str, status: int = 201, **body: Any) -> dict[str, Any]:
    headers = body.pop("headers", {})
    r = actor.post(f"/workloads/jobs/{job_id}/runs", json=body, headers=headers)
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def describe(actor: Actor, job_id: str, run_id: str) -> dict[str, Any]:
    r = actor.get(f"/workloads/jobs/{job_id}/runs/{run_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]



def wait_until(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Runs take longer than sessions to settle: a longer default than tests.support.waiting's."""
    return _wait_until(check, timeout, interval)


def wait_for(actor: Actor, job_id: str, run_id: str, *statuses: str, timeout: float = 90.0,
             cleaned: bool = False) -> dict[str, Any]:
    """The run once it is in one of `statuses` (default: any final state), and cleaned up if asked."""
    wanted = statuses or TERMINAL
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        nonlocal last
        last = describe(actor, job_id, run_id)
        if last["status"] in wanted and (not cleaned or last["cleanedAt"]):
            return last
        if last["status"] in TERMINAL and last["status"] not in wanted:
            raise AssertionError(f"run ended {last['status']}: {last['statusMessage']}\n{logs(actor, job_id, run_id)}")
        return None

    try:
        return wait_until(check, timeout)  # type: ignore[no-any-return]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nrun: {last}\nlog:\n{logs(actor, job_id, run_id)}") from None


def logs(actor: Actor, job_id: str, run_id: str, offset: int = 0) -> str:
    r = actor.get(f"/workloads/jobs/{job_id}/runs/{run_id}/logs", params={"offset": offset})
    return r.text


def parquet_rows(path: str) -> list[dict[str, Any]]:
    table = pq.read_table(path)
    return table.to_pylist()  # type: ignore[no-any-return]


def attempts_in_log(text: str) -> int:
    return len(re.findall(r"^--- sailplane: run \S+ \(\w+\) starting", text, flags=re.MULTILINE))


def iso_order(run: dict[str, Any], *fields: str) -> bool:
    values = [run[f] for f in fields]
    return all(v is not None for v in values) and values == sorted(values)


def processes_of(run_id: str) -> list[int]:
    return find_run_processes(run_id)




# --- a server in its own process (it can be killed) -----------------------------------------------

class ServerProcess:
    """`sailplane serve` as a child process, so a test can SIGKILL it mid-run like a crash."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        from tests.support.ports import free_port

        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()  # below the ephemeral range: bound later, by the child (tests/support/ports.py)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAILPLANE_")}
        env.update({"SAILPLANE_DATA_DIR": str(data_dir), "SAILPLANE_DATABASE_URL": database_url,
                    "SAILPLANE_SECRET_KEY": "test-secret-key-for-encryption-at-rest",
                    "SAILPLANE_GATEWAY_PORT": "0", "SAILPLANE_CONTROLLER_INTERVAL_SECONDS": "0.2"})
        env.update({f"SAILPLANE_{k.upper()}": v for k, v in RUNNER_EXTRA.items()})
        self.env = env
        self.proc: Any = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> ServerProcess:
        import subprocess
        import sys

        import httpx

        log = open(self.data_dir / f"server-{self.port}.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sailplane.cli", "serve", "--port", str(self.port), "--no-gateway-tls",
             "--log-level", "warning"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        log.close()

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {(self.data_dir / f'server-{self.port}.log').read_text()}")
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=120, interval=0.1)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs; its runs' processes and Sail servers stay behind."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM: a graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=120)
