"""Many triggers at once, served by two server processes' dispatchers on one database: a job with
maxConcurrentRuns = 1 never has two runs executing, and every run finishes exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.data.helpers import build_org
from tests.runs.live import EXECUTING, TERMINAL, assert_nothing_left, python_job, runner_settings, wait_until
from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def second_server(tmp_path_factory: pytest.TempPathFactory, runs_database: str,
                  runs_server: LiveServer) -> Iterator[LiveServer]:
    """Another node on the same database (its own data directory, its own dispatcher)."""
    data_dir = tmp_path_factory.mktemp("runs-node-2")
    live = LiveServer(runner_settings(data_dir, runs_database))
    live.start()
    try:
        yield live
    finally:
        live.stop()
        assert_nothing_left(data_dir)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Watcher:
    """Polls the job's runs and records the most runs ever seen executing at once."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url, self.headers = url, headers
        self.most = 0
        self.snapshots = 0
        self.statuses: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                items = client.get(self.url, params={"limit": 100}, headers=self.headers).json()
                runs = items["included"]["jobRuns"]
                self.statuses |= {r["status"] for r in runs}
                self.most = max(self.most, sum(r["status"] in EXECUTING for r in runs))
                self.snapshots += 1
                time.sleep(0.02)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _trigger(apis: list[str], headers: dict[str, str], job_id: str, count: int) -> list[httpx.Response]:
    def post(i: int) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            return client.post(f"{apis[i % len(apis)]}/workloads/jobs/{job_id}/runs", json={}, headers=headers)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(post, range(count)))


def _all_runs(url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = httpx.get(url, params={"limit": 100}, headers=headers, timeout=30)
    return r.json()["included"]["jobRuns"]  # type: ignore[no-any-return]


def test_fifty_triggers_with_max_one_running(runs_api: str, runs_data_dir: Path, second_server: LiveServer) -> None:
    org = build_org(runs_api)
    job = python_job(org.dev1, org.team1, "import time\ntime.sleep(0.05)\nprint('done')\n", maxConcurrentRuns=1)
    apis = [runs_api, f"{second_server.url}/api/v1"]
    headers = org.dev1.headers()
    url = f"{runs_api}/workloads/jobs/{job['id']}/runs"
    with Watcher(url, headers) as watcher:
        responses = _trigger(apis, headers, job["id"], 50)
        assert [r.status_code for r in responses] == [201] * 50, [r.text for r in responses if r.status_code != 201]
        wait_until(lambda: all(r["status"] in TERMINAL for r in _all_runs(url, headers)), timeout=300, interval=0.5)
    runs = _all_runs(url, headers)
    assert len(runs) == 50 and {r["status"] for r in runs} == {"succeeded"}, {r["status"] for r in runs}
    assert watcher.most == 1 and watcher.snapshots > 10, (watcher.most, watcher.snapshots)
    # The stronger check, from the recorded times: each run was dispatched after the previous one finished.
    ordered = sorted(runs, key=lambda r: ts(r["dispatchedAt"]))
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert ts(after["dispatchedAt"]) >= ts(before["finishedAt"]), (before, after)
    # Both servers took part: each run's log is on the node that executed it, and on one only.
    nodes = [runs_data_dir, second_server.settings.data_dir]
    ran = [sum((node / "runs" / r["id"] / "driver.log").exists() for r in runs) for node in nodes]
    assert sum(ran) == 50 and min(ran) > 0, ran


def test_max_concurrent_runs_above_one(runs_api: str, second_server: LiveServer) -> None:
    org = build_org(runs_api)
    job = python_job(org.dev1, org.team1, "import time\ntime.sleep(1)\n", maxConcurrentRuns=3)
    apis = [runs_api, f"{second_server.url}/api/v1"]
    headers = org.dev1.headers()
    url = f"{runs_api}/workloads/jobs/{job['id']}/runs"
    with Watcher(url, headers) as watcher:
        responses = _trigger(apis, headers, job["id"], 12)
        assert all(r.status_code == 201 for r in responses)
        wait_until(lambda: all(r["status"] in TERMINAL for r in _all_runs(url, headers)), timeout=300, interval=0.5)
    assert {r["status"] for r in _all_runs(url, headers)} == {"succeeded"}
    assert 2 <= watcher.most <= 3, watcher.most
