"""Run tests' shortcuts: settings, jobs, runs, waiting for states, processes.

Run tests use a database of their own (tests.support.databases.fresh_database): every server on a
database dispatches its ready runs, so other test servers on the shared database would otherwise
execute (and hold the logs of) these tests' runs.
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
from tests.support.server import RUNNER_EXTRA
from tests.support.waiting import wait_until as _wait_until

TERMINAL = ("succeeded", "failed", "timeout", "cancelled")
EXECUTING = ("dispatched", "waiting_for_sail", "running")


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
