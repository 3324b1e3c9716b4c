"""Job runs: created → running latency, and listing a page of runs among a million on PostgreSQL.

    python bench/jobs_bench.py [--runs 30] [--rows 1000000] [--skip-latency] [--skip-listing]

1. createJobRun → `running` (target p50 ≤ 0.3 s). `sailplane serve` in its own process (fresh data
   directory, SQLite), a Python job; each sample POSTs a run and polls describeJobRun (every 5 ms)
   until it is `running` (the driver process has started on a Sail server). The first run is the
   warm-up (the Sail pool of the job's settings is filled on first use) and is reported apart. The
   baseline in the same run is the floor: `execution.start_run` of the same job straight against an
   already-running Sail server, with no API, database or dispatcher in between.
2. listJobRuns / listMyJobRuns, page of 100 among 1,000,000 runs (target p50 ≤ 30 ms): a throwaway
   PostgreSQL (tests/support/postgres.py), rows bulk-loaded with COPY, the API served by `sailplane
   serve` in its own process. First pages (which also count the total, capped at 10,000) and deep
   pages (keyset markers at random depths). Baseline: the bare `SELECT … ORDER BY id DESC LIMIT 100`
   on the same table through psycopg. The query plans are printed (index scans, no OFFSET, no
   COUNT over the table).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.postgres

from sailplane.compute.backend import InstanceSpec  # noqa: E402
from sailplane.compute.local import LocalSailBackend  # noqa: E402
from sailplane.kit.ids import new_id  # noqa: E402
from sailplane.workloads.runs.execution import RunSpec, start_run  # noqa: E402

JOB_CODE = "import time\ntime.sleep(0.2)\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@contextlib.contextmanager
def serve(data_dir: Path, database_url: str | None = None) -> Iterator[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAILPLANE_")}
    env.update({"SAILPLANE_DATA_DIR": str(data_dir), "SAILPLANE_GATEWAY_PORT": "0"})
    if database_url:
        env["SAILPLANE_DATABASE_URL"] = database_url
    log = open(data_dir.parent / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "sailplane.cli", "serve", "--port", str(port), "--no-gateway-tls",
         "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"serve did not start; see {data_dir.parent / f'serve-{port}.log'}")
            time.sleep(0.1)
        yield f"{base}/api/v1"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        log.close()
        left = asyncio.run(LocalSailBackend(data_dir).stop_orphans(()))
        if left:
            print(f"(stopped {len(left)} Sail process(es) left by the benchmark)")


def signup(base: str) -> tuple[httpx.Client, str, str]:
    """A fresh organization's owner: (client, team ID, member ID)."""
    client = httpx.Client(base_url=base, timeout=60)
    r = client.post("/auth/signup", json={"email": f"bench-{time.time_ns()}@example.com",
                                          "password": "correct-horse-battery-staple", "displayName": "Bench",
                                          "organizationName": "Bench"})
    r.raise_for_status()
    body = r.json()
    client.headers.update({"Authorization": f"Bearer {body['token']}",
                           "LakeSail-Organization-Id": body["organizationId"]})
    team = client.post("/org/teams", json={"name": "bench"})
    team.raise_for_status()
    return client, team.json()["team"]["id"], body["memberId"]


def team_member(owner: httpx.Client, base: str, team: str) -> httpx.Client:
    """A new member of the owner's organization (no org-wide role) who belongs to `team` only."""
    email, password = f"member-{time.time_ns()}@example.com", "correct-horse-battery-staple"
    created = owner.post("/users", json={"email": email, "displayName": "Member", "password": password,
                                         "roleIds": ["MEMBER"]})
    created.raise_for_status()
    owner.put(f"/org/teams/{team}/members/{created.json()['memberId']}", json={}).raise_for_status()
    token = httpx.post(f"{base}/auth/login", json={"email": email, "password": password}).json()["token"]
    return httpx.Client(base_url=base, timeout=60, headers={
        "Authorization": f"Bearer {token}", "LakeSail-Organization-Id": owner.headers["LakeSail-Organization-Id"]})


def create_job(client: httpx.Client, team: str, key: str, code: str = JOB_CODE) -> str:
    r = client.post("/workloads/jobs", json={"jobKey": key, "clusterId": "LOCAL", "teamIds": [team],
                                            "config": {"python": {"source": code}}, "maxConcurrentRuns": 1})
    r.raise_for_status()
    return str(r.json()["id"])


# --- 1. created → running ---------------------------------------------------------------------------

def created_to_running(client: httpx.Client, job: str) -> tuple[float, float]:
    """(client-observed seconds to `running`, server-recorded createdAt → runnerStartedAt)."""
    t0 = time.perf_counter()
    run = client.post(f"/workloads/jobs/{job}/runs", json={})
    run.raise_for_status()
    run_id = run.json()["id"]
    observed = None
    while True:
        body = client.get(f"/workloads/jobs/{job}/runs/{run_id}").json()
        if observed is None and body["status"] in ("running", "succeeded", "failed", "timeout"):
            observed = time.perf_counter() - t0
        if body["status"] in ("succeeded", "failed", "timeout", "cancelled"):
            break
        time.sleep(0.005)
    if body["status"] != "succeeded":
        raise RuntimeError(f"run {run_id} ended {body['status']}: {body['statusMessage']}")

    def ts(v: str) -> datetime:
        return datetime.fromisoformat(v.replace("Z", "+00:00"))

    recorded = (ts(body["runnerStartedAt"]) - ts(body["createdAt"])).total_seconds()
    assert observed is not None
    return observed, recorded


def direct_start(tmp: Path, runs: int) -> list[float]:
    backend = LocalSailBackend(tmp / "direct")
    handle = asyncio.run(backend.start(InstanceSpec(instance_id="BENCHDIRECT")))
    samples = []
    try:
        for n in range(runs + 1):
            base = tmp / "direct-runs" / str(n)
            spec = RunSpec(run_id=f"BENCH{n}", job_key="bench", job_type="python", work_dir=base / "work",
                           output_dir=base / "out", log_path=base / "run.log", python_source=JOB_CODE)

            async def once(spec: RunSpec = spec) -> float:
                t0 = time.perf_counter()
                process = await start_run(spec, handle.address)
                elapsed = time.perf_counter() - t0
                await process.wait()
                return elapsed

            elapsed = asyncio.run(once())
            if n:
                samples.append(elapsed)
    finally:
        asyncio.run(backend.stop(handle))
    return samples


def bench_latency(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="sailplane-jobs-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with serve(tmp / "data") as base:
            client, team, _ = signup(base)
            job = create_job(client, team, "latency")
            cold, cold_recorded = created_to_running(client, job)
            observed, recorded = [], []
            for _ in range(runs):
                time.sleep(1.0)  # the pool refills behind each run (as between runs of a real schedule)
                o, r = created_to_running(client, job)
                observed.append(o)
                recorded.append(r)
        direct = direct_start(tmp, runs)
    p50, p95 = statistics.median(observed), pct(observed, 95)
    print(f"createJobRun -> running: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms over {runs} runs "
          f"(target p50 <= 300 ms: {'met' if p50 <= 0.3 else 'MISSED'})")
    print(f"  server-recorded createdAt -> runnerStartedAt: p50 {statistics.median(recorded) * 1000:.0f} ms, "
          f"p95 {pct(recorded, 95) * 1000:.0f} ms")
    print(f"  first run (Sail pool empty, waiting_for_sail): {cold * 1000:.0f} ms "
          f"(recorded {cold_recorded * 1000:.0f} ms)")
    d50, d95 = statistics.median(direct), pct(direct, 95)
    print(f"  baseline, start_run straight against a running Sail server: p50 {d50 * 1000:.1f} ms, "
          f"p95 {d95 * 1000:.1f} ms; the platform adds {(p50 - d50) * 1000:.0f} ms at p50")


# --- 2. listing among a million -----------------------------------------------------------------------

def bulk_load(pg_url: str, org_id: str, member_id: str, jobs: list[str], target: str, quiet: str, rows: int) -> None:
    import psycopg

    now = datetime.now(UTC)
    started = time.perf_counter()
    with psycopg.connect(pg_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY job_runs (id, organization_id, job_id, job_version, status, resource_cleanup_mode, "
                      "trigger, attempt, dispatched_at, finished_at, runner_started_at, runner_completed_at, "
                      "runner_execution_time_us, output_path, cleaned_at, created_at, created_by, updated_at, "
                      "updated_by) FROM STDIN") as copy:
            for n in range(rows):
                # Half the runs belong to the target job, one in a thousand to the quiet job (of another
                # team), the rest spread over the others.
                job = target if n % 2 == 0 else quiet if n % 1000 == 1 else jobs[n % len(jobs)]
                run_id = new_id()
                status = "failed" if n % 10 == 0 else "succeeded"
                copy.write_row((run_id, org_id, job, 1, status, "always", "schedule", 0, now, now, now, now,
                                1_000_000, f"/data/jobs/x/runs/{run_id}", now, now, member_id, now, member_id))
        conn.commit()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE job_runs")  # the steady state autovacuum keeps: visibility map, statistics
    print(f"  loaded {rows:,} runs with COPY in {time.perf_counter() - started:.1f} s")


def member_page_sql(org_id: str, team_id: str, marker: str, which: str = "older") -> str:
    """A statement of a team member's /me/jobs/runs on PostgreSQL (`older`: a deep page; `total`: the first
    page's count), values inlined."""
    from sqlalchemy.dialects import postgresql

    from sailplane.kit.dialect import dialect_of
    from sailplane.workloads.runs import team_listing
    from sailplane.workloads.runs.reads import LISTED_COLUMNS, TOTAL_CAP

    statement = getattr(team_listing.statements(LISTED_COLUMNS, TOTAL_CAP, dialect_of("postgresql://")), which)
    bound = statement.params(org_id=org_id, team_ids=[team_id], marker=marker, limit=101)
    return str(bound.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def timed(fn: Any, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def bench_listing(rows: int, samples: int) -> None:
    import psycopg
    from tests.support.postgres import TempPostgres

    pg = TempPostgres()
    pg.start()
    try:
        url = pg.create_database("jobs_bench")
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with tempfile.TemporaryDirectory(prefix="sailplane-jobs-list-") as tmp, serve(Path(tmp) / "data", url) as base:
            client, team, member_id = signup(base)
            org_id = client.headers["LakeSail-Organization-Id"]
            jobs = [create_job(client, team, f"list-{i}") for i in range(10)]
            target, small = jobs[0], jobs[1]
            quiet_team = client.post("/org/teams", json={"name": "quiet"}).json()["team"]["id"]
            quiet = create_job(client, quiet_team, "quiet")
            member = team_member(client, base, quiet_team)
            bulk_load(plain, org_id, member_id, jobs[1:], target, quiet, rows)
            job_url, small_url, mine_url = f"/workloads/jobs/{target}/runs", f"/workloads/jobs/{small}/runs", \
                "/me/jobs/runs"
            with psycopg.connect(plain) as conn:
                ids = [r[0] for r in conn.execute(
                    "SELECT id FROM job_runs WHERE job_id = %s ORDER BY id DESC", (target,))]
                small_ids = [r[0] for r in conn.execute(
                    "SELECT id FROM job_runs WHERE job_id = %s ORDER BY id DESC", (small,))]
                all_ids = [r[0] for r in conn.execute(
                    "SELECT id FROM job_runs WHERE organization_id = %s ORDER BY id DESC", (org_id,))]

                def get(path: str, **params: Any) -> None:
                    r = client.get(path, params={"limit": 100, **params})
                    r.raise_for_status()
                    assert len(r.json()["items"]) == 100

                quiet_ids = [r[0] for r in conn.execute(
                    "SELECT id FROM job_runs WHERE job_id = %s ORDER BY id DESC", (quiet,))]

                def get_as_member(**params: Any) -> None:
                    r = member.get(mine_url, params={"limit": 100, **params})
                    r.raise_for_status()
                    assert len(r.json()["items"]) == min(100, len(quiet_ids)), r.json()["total"]

                for _ in range(20):  # warm-up: connections, caches
                    get(job_url)
                    get(mine_url)
                    get_as_member()
                # Deep markers come from lists sliced once: slicing a list of a million IDs inside the
                # timed call costs milliseconds of its own (on the client, not the server).
                deep_ids, deep_small_ids, deep_all_ids = ids[:-200], small_ids[:-200], all_ids[:-200]
                deep_quiet_ids = quiet_ids[:-200]
                results = {
                    "listJobRuns, first page": timed(lambda: get(job_url), samples),
                    "listJobRuns, deep page": timed(lambda: get(job_url, marker=random.choice(deep_ids)), samples),
                    "listJobRuns (a job with 1/18 of the runs), deep page": timed(
                        lambda: get(small_url, marker=random.choice(deep_small_ids)), samples),
                    "listJobRuns (a job with 1/1000 of the runs), deep page": timed(
                        lambda: get(f"/workloads/jobs/{quiet}/runs", marker=random.choice(deep_quiet_ids)), samples),
                    "listMyJobRuns, first page": timed(lambda: get(mine_url), samples),
                    "listMyJobRuns, deep page": timed(
                        lambda: get(mine_url, marker=random.choice(deep_all_ids)), samples),
                    f"listMyJobRuns, a member who sees one job with {len(quiet_ids):,} runs, first page": timed(
                        get_as_member, samples),
                    "listMyJobRuns, that member, deep page": timed(
                        lambda: get_as_member(marker=random.choice(deep_quiet_ids)), samples),
                }
                bare_sql = ("SELECT * FROM job_runs WHERE job_id = %s AND id < %s ORDER BY id DESC LIMIT 100")

                def bare() -> None:
                    assert len(conn.execute(bare_sql, (target, random.choice(deep_ids))).fetchall()) == 100

                for _ in range(20):
                    bare()
                baseline = timed(bare, samples)
                plans = {
                    "page (listJobRuns, the job with half the runs)": (
                        bare_sql.replace("*", "id"), (target, ids[len(ids) // 2])),
                    "page (listJobRuns, a job with 1/18 of the runs)": (
                        bare_sql.replace("*", "id"), (small, small_ids[len(small_ids) // 2])),
                    "page (listMyJobRuns, admin)": (
                        "SELECT id FROM job_runs WHERE organization_id = %s AND id < %s ORDER BY id DESC LIMIT 101",
                        (org_id, all_ids[len(all_ids) // 2])),
                    "first-page total (capped)": (
                        "SELECT count(*) FROM (SELECT id FROM job_runs WHERE job_id = %s LIMIT 10001) AS t",
                        (target,)),
                    "page (listMyJobRuns, the member; the server's statement)": (
                        member_page_sql(org_id, quiet_team, quiet_ids[len(quiet_ids) // 2]), ()),
                    "first-page total (listMyJobRuns, the member; the server's statement)": (
                        member_page_sql(org_id, quiet_team, "", "total"), ()),
                }
                explained = {name: [r[0] for r in conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, args)]
                             for name, (sql, args) in plans.items()}
        print(f"listing a page of 100 among {rows:,} runs on PostgreSQL (through the API, p50 / p95):")
        for name, values in results.items():
            p50 = statistics.median(values)
            print(f"  {name}: {p50 * 1000:.1f} ms / {pct(values, 95) * 1000:.1f} ms "
                  f"(target p50 <= 30 ms: {'met' if p50 <= 0.030 else 'MISSED'})")
        b50 = statistics.median(baseline)
        print(f"  baseline, bare SELECT ... ORDER BY id DESC LIMIT 100 (psycopg): {b50 * 1000:.2f} ms / "
              f"{pct(baseline, 95) * 1000:.2f} ms")
        for name, lines in explained.items():
            print(f"  plan, {name}:")
            for line in lines:
                print(f"    {line}")
    finally:
        pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="created→running samples (after one warm-up)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="runs in the listing table")
    parser.add_argument("--samples", type=int, default=100, help="requests per listing measurement")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-listing", action="store_true")
    args = parser.parse_args()
    if not args.skip_latency:
        bench_latency(args.runs)
    if not args.skip_listing:
        bench_listing(args.rows, args.samples)


if __name__ == "__main__":
    main()
