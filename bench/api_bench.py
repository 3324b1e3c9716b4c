"""Benchmark (not a test): describe-team and list-teams (100 teams) against a bare FastAPI endpoint
returning a similar JSON document, same uvicorn settings, same run. Targets: ≥ 0.5× the bare
requests/second; idle server RSS ≤ 150 MB. Run: .venv/bin/python bench/api_bench.py [seconds]
"""

from __future__ import annotations

import sys
import tempfile
import time

import httpx

from _load import cpu_seconds, free_port, load, rss_mb, start_uvicorn, stop

PASSWORD = "benchmark-password-1"


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    data = tempfile.mkdtemp(prefix="sailplane-bench-")
    ours_port, bare_port = free_port(), free_port()
    ours = start_uvicorn("sailplane.app:create_app", ours_port, {"SAILPLANE_DATA_DIR": data}, factory=True)
    bare = start_uvicorn("_bare_app:app", bare_port, {})
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
        header = (f"{'case':18} {'ours rps':>9} {'bare rps':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}"
                  f" {'cpu ms/req ours':>16} {'bare':>6}")
        print(header + "  (target ratio >= 0.5)")
        for name, ours_url, bare_url in cases:
            c0 = cpu_seconds(bare.pid)
            base = load(bare_url, seconds=seconds)
            bare_cpu = (cpu_seconds(bare.pid) - c0) / base.requests * 1000
            c0 = cpu_seconds(ours.pid)
            mine = load(ours_url, headers, seconds=seconds)
            ours_cpu = (cpu_seconds(ours.pid) - c0) / mine.requests * 1000
            print(f"{name:18} {mine.rps:9.0f} {base.rps:9.0f} {mine.rps / base.rps:6.2f} "
                  f"{mine.p50_ms:7.1f} {mine.p99_ms:7.1f} {ours_cpu:16.2f} {bare_cpu:6.2f}")
        print(f"idle server RSS: {idle_rss:.0f} MB (target ≤ 150 MB); bare FastAPI: {rss_mb(bare.pid):.0f} MB")
    finally:
        stop(ours)
        stop(bare)


if __name__ == "__main__":
    main()
