"""Interactive sessions end to end: createSession → first query result, and memory per idle session.

    python bench/session_bench.py [--runs 8] [--idle-sessions 4]

Runs `sailplane serve` in its own process (fresh data directory, SQLite, plaintext gateway on
loopback), signs up, and measures:

* createSession → first `select 1` result through the gateway (target ≤ 1.0 s): POST the session,
  POST a token, open a stock PySpark client on the connection string, run the query. The baseline
  in the same run is the floor any platform pays: start a Sail server directly, connect, same query.
* RSS per idle session: the Sail server of each open session after one query (its own instance,
  with the processes of its sandbox),
  the control plane's growth per open session, and the per-session cost when sessions share one
  instance with allowShared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from pyspark.sql import SparkSession

from sailplane.compute.backend import InstanceSpec
from sailplane.compute.local import LocalSailBackend


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0  # a kernel thread, or gone


def group_rss_mib(pgid: int) -> float:
    """An instance's whole process group: a sandboxed Sail server is its launcher, init and Sail."""
    total = 0.0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
            if int(stat[stat.rfind(b")") + 2 :].split()[2]) == pgid:
                total += rss_mib(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return total


@contextlib.contextmanager
def serve(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port, gateway_port = free_port(), free_port()
    env = {**os.environ, "SAILPLANE_DATA_DIR": str(data_dir), "SAILPLANE_GATEWAY_PORT": str(gateway_port),
           "SAILPLANE_CONTROLLER_INTERVAL_SECONDS": "1"}
    env.pop("SAILPLANE_DATABASE_URL", None)
    log = open(data_dir.parent / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "sailplane.cli", "serve", "--port", str(port), "--no-gateway-tls",
         "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"serve did not start; see {data_dir.parent / 'serve.log'}")
            time.sleep(0.1)
        yield f"{base}/api/v1", proc
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        log.close()
        backend = LocalSailBackend(data_dir)
        left = asyncio.run(backend.stop_orphans(()))
        if left:
            print(f"(stopped {len(left)} Sail process(es) left by the benchmark)")


class Api:
    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=60)
        email = f"bench-{time.time_ns()}@example.com"
        r = self.client.post("/auth/signup", json={"email": email, "password": "correct-horse-battery-staple",
                                                   "displayName": "Bench", "organizationName": "Bench"})
        r.raise_for_status()
        body = r.json()
        self.client.headers.update({"Authorization": f"Bearer {body['token']}",
                                    "LakeSail-Organization-Id": body["organizationId"]})
        team = self.client.post("/org/teams", json={"name": "bench"})
        team.raise_for_status()
        self.team = team.json()["team"]["id"]

    def create(self, **body: Any) -> dict[str, Any]:
        r = self.client.post("/workloads/sessions", json={"teamId": self.team, **body})
        r.raise_for_status()
        created: dict[str, Any] = r.json()
        return created

    def token(self, session_id: str) -> str:
        r = self.client.post(f"/workloads/sessions/{session_id}/token", json={})
        r.raise_for_status()
        return str(r.json()["token"])

    def close(self, session_id: str) -> None:
        self.client.delete(f"/workloads/sessions/{session_id}").raise_for_status()


def first_query_through_platform(api: Api) -> tuple[float, dict[str, float], str]:
    t0 = time.perf_counter()
    session = api.create()
    t1 = time.perf_counter()
    token = api.token(session["id"])
    t2 = time.perf_counter()
    url = f"{session['connectionInfo']['grpcEndpoint']}/;x-sailplane-token={token}"
    spark = SparkSession.builder.remote(url).create()
    t3 = time.perf_counter()
    assert spark.sql("select 1").collect()[0][0] == 1
    t4 = time.perf_counter()
    spark.stop()
    parts = {"createSession": t1 - t0, "token": t2 - t1, "client": t3 - t2, "first query": t4 - t3}
    return t4 - t0, parts, session["id"]


def first_query_direct(backend: LocalSailBackend, n: int) -> float:
    t0 = time.perf_counter()
    handle = asyncio.run(backend.start(InstanceSpec(instance_id=f"DIRECT{n}")))
    spark = SparkSession.builder.remote(f"sc://localhost:{handle.port}").create()
    assert spark.sql("select 1").collect()[0][0] == 1
    elapsed = time.perf_counter() - t0
    spark.stop()
    asyncio.run(backend.stop(handle))
    return elapsed


def idle_memory(api: Api, data_dir: Path, server_pid: int, count: int, shared: bool) -> tuple[float, float]:
    """(Sail RSS per session, control-plane RSS growth per session) after one query each."""
    backend = LocalSailBackend(data_dir)
    before = {iid for iid, _ in backend.scan()}
    server_before = rss_mib(server_pid)
    sessions = []
    for _ in range(count):
        session = api.create(allowShared=shared)
        spark = SparkSession.builder.remote(
            f"{session['connectionInfo']['grpcEndpoint']}/;x-sailplane-token={api.token(session['id'])}").create()
        spark.sql("select 1").collect()
        spark.stop()
        sessions.append(session)
    time.sleep(1.0)  # let them settle (and the controller record activity)
    pids = [pid for iid, pid in backend.scan() if iid not in before]
    sail = sum(group_rss_mib(pid) for pid in pids) / count
    server = (rss_mib(server_pid) - server_before) / count
    for session in sessions:
        api.close(session["id"])
    return sail, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--idle-sessions", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sailplane-session-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        direct_backend = LocalSailBackend(Path(tmp) / "direct")
        with serve(data_dir) as (base, proc):
            api = Api(base)
            # Warm-up (imports, first gRPC channel, first Sail binary load) is not measured.
            _, _, warm = first_query_through_platform(api)
            api.close(warm)
            first_query_direct(direct_backend, 0)
            platform, direct = [], []
            parts: dict[str, list[float]] = {}
            for n in range(1, args.runs + 1):
                total, split, sid = first_query_through_platform(api)
                platform.append(total)
                for key, value in split.items():
                    parts.setdefault(key, []).append(value)
                api.close(sid)
                direct.append(first_query_direct(direct_backend, n))
            p, d = statistics.median(platform), statistics.median(direct)
            print(f"createSession -> first query result: median {p:.3f} s over {args.runs} runs "
                  f"(target <= 1.0 s: {'met' if p <= 1.0 else 'MISSED'})")
            print("  of which: " + ", ".join(f"{k} {statistics.median(v) * 1000:.0f} ms" for k, v in parts.items()))
            print(f"  baseline, Sail started directly + same client and query: median {d:.3f} s; ratio {p / d:.2f}x")
            own, server_own = idle_memory(api, data_dir, proc.pid, args.idle_sessions, shared=False)
            shared, server_shared = idle_memory(api, data_dir, proc.pid, args.idle_sessions, shared=True)
            print(f"RSS per idle session, own Sail instance: {own:.1f} MiB Sail "
                  f"+ {server_own:.2f} MiB control plane ({args.idle_sessions} sessions)")
            print(f"RSS per idle session, allowShared (one instance): {shared:.1f} MiB Sail "
                  f"+ {server_shared:.2f} MiB control plane; ratio shared/own {shared / own:.2f}x")


if __name__ == "__main__":
    main()
