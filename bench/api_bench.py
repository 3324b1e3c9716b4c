"""Benchmark (not a test): describe-team and list-teams (100 teams) against a bare FastAPI endpoint
returning a similar JSON document, same uvicorn settings, same run. Targets: ≥ 0.5× the bare
requests/second; idle server RSS ≤ 150 MB. Run: .venv/bin/python bench/api_bench.py [seconds] [rounds]

The cost of request metrics: the same cases against a second server on the same database with
SAILPLANE_METRICS_ENABLED=0 (RequestMetricsMiddleware skipped), paired rounds again. Target: ≤ 5% fewer
requests/second with metrics on.

Each case alternates short rounds (bare, ours, bare, ours, …) and reports the median of the paired
ratios: on a small machine the load generator shares the CPU with the server, and a background
burst during one long phase would otherwise decide the ratio. Also printed: the server CPU time per
request (the load generator's cost excluded), which says how far each server is from its own limit.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import httpx

from _load import cpu_seconds, free_port, load, rss_mb, start_uvicorn, stop

PASSWORD = "benchmark-password-1"


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    data = tempfile.mkdtemp(prefix="sailplane-bench-")
    ours_port, bare_port, off_port = free_port(), free_port(), free_port()
    ours = start_uvicorn("sailplane.app:create_app", ours_port, {"SAILPLANE_DATA_DIR": data}, factory=True)
    bare = start_uvicorn("_bare_app:app", bare_port, {})
    off = None  # the metrics-off server, started once the data exists (its migrations are then a no-op)
    try:
        time.sleep(1)
        idle_rss = rss_mb(ours.pid)
        api = f"http://127.0.0.1:{ours_port}/api/v1"
        r = httpx.post(f"{api}/auth/signup", json={"email": "bench@example.com", "password": PASSWORD,
                                                 "displayName": "Bench", "organizationName": "Bench"})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        team_ids = []
        for i in range(100):
            t = httpx.post(f"{api}/org/teams", headers=headers, json={"name": f"Team {i:03}"})
            t.raise_for_status()
            team_ids.append(t.json()["team"]["id"])
        cases = [
            ("describe-team", f"{api}/org/teams/{team_ids[0]}", f"http://127.0.0.1:{bare_port}/team"),
            ("list-teams(100)", f"{api}/org/teams?limit=100", f"http://127.0.0.1:{bare_port}/teams"),
        ]
        header = (f"{'case':18} {'ours rps':>9} {'bare rps':>9} {'ratio':>6} {'range':>10} {'p50 ms':>7} {'p99 ms':>7}"
                  f" {'cpu ms/req ours':>16} {'bare':>6}")
        print(header + f"  (target ratio >= 0.5; median of {rounds} paired rounds)")
        for name, ours_url, bare_url in cases:
            ratios, mine, base, cpu_ours, cpu_bare = [], [], [], 0.0, 0.0
            for _ in range(rounds):
                c0 = cpu_seconds(bare.pid)
                b = load(bare_url, seconds=seconds)
                cpu_bare += cpu_seconds(bare.pid) - c0
                c0 = cpu_seconds(ours.pid)
                m = load(ours_url, headers, seconds=seconds)
                cpu_ours += cpu_seconds(ours.pid) - c0
                ratios.append(m.rps / b.rps)
                mine.append(m)
                base.append(b)
            ours_rps = sum(r.requests for r in mine) / sum(r.seconds for r in mine)
            bare_rps = sum(r.requests for r in base) / sum(r.seconds for r in base)
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
            p50 = statistics.median(r.p50_ms for r in mine)
            p99 = statistics.median(r.p99_ms for r in mine)
            print(f"{name:18} {ours_rps:9.0f} {bare_rps:9.0f} {statistics.median(ratios):6.2f} {spread:>10} "
                  f"{p50:7.1f} {p99:7.1f} {cpu_ours / sum(r.requests for r in mine) * 1000:16.2f} "
                  f"{cpu_bare / sum(r.requests for r in base) * 1000:6.2f}")
        off = start_uvicorn("sailplane.app:create_app", off_port,
                            {"SAILPLANE_DATA_DIR": data, "SAILPLANE_METRICS_ENABLED": "0"}, factory=True)
        print(f"{'metrics cost':18} {'on rps':>9} {'off rps':>9} {'on/off':>6} {'range':>10} {'cpu ms/req on':>14}"
              f" {'off':>6}"
              f"  (target: ≤ 5% fewer requests/s with metrics on; median of {rounds} paired rounds)")
        for name, ours_url, _ in cases:
            off_url = ours_url.replace(f":{ours_port}/", f":{off_port}/")
            on_runs, off_runs, cpu_on, cpu_off = [], [], 0.0, 0.0
            for _ in range(rounds):
                c0 = cpu_seconds(off.pid)
                off_runs.append(load(off_url, headers, seconds=seconds))
                cpu_off += cpu_seconds(off.pid) - c0
                c0 = cpu_seconds(ours.pid)
                on_runs.append(load(ours_url, headers, seconds=seconds))
                cpu_on += cpu_seconds(ours.pid) - c0
            ratios = [a.rps / b.rps for a, b in zip(on_runs, off_runs, strict=True)]
            on_rps = sum(r.requests for r in on_runs) / sum(r.seconds for r in on_runs)
            off_rps = sum(r.requests for r in off_runs) / sum(r.seconds for r in off_runs)
            print(f"{name:18} {on_rps:9.0f} {off_rps:9.0f} {statistics.median(ratios):6.3f} "
                  f"{min(ratios):.2f}-{max(ratios):.2f} "
                  f"{cpu_on / sum(r.requests for r in on_runs) * 1000:14.2f} "
                  f"{cpu_off / sum(r.requests for r in off_runs) * 1000:6.2f}"
                  f"  ({(1 - statistics.median(ratios)) * 100:+.1f}% fewer)")
        bare_p99 = load(cases[0][2], seconds=seconds).p99_ms
        print(f"(the bare endpoint's own p99 under the same load generator: {bare_p99:.1f} ms)")
        print(f"idle server RSS: {idle_rss:.0f} MB (target ≤ 150 MB); bare FastAPI: {rss_mb(bare.pid):.0f} MB")
    finally:
        stop(ours)
        stop(bare)
        if off is not None:
            stop(off)


if __name__ == "__main__":
    main()
