"""Benchmark (not a test): `sailplane jobs list` wall time against `curl` of the same API page.

    python bench/cli_bench.py [--rounds 9] [--jobs 50]

Runs `sailplane serve` in its own process (fresh data directory, SQLite, compute on but idle), signs up, creates
`--jobs` jobs (one page of listJobs) and saves a CLI profile for the signed-up user in a private config directory.
Each round then times, from process start to exit:

* the CLI: `python -m sailplane.cli jobs list --output json` (interpreter start, imports, reading the profile,
  one listJobs request, printing);
* the baseline: `curl` of the same page (`GET /api/v1/workloads/jobs` with the same token and organization).

Rounds alternate CLI, curl, CLI, curl, … so a background burst hits both; printed are the medians and the median of
the paired ratios (target ≤ 3×). The CLI's output is checked to hold every job, so a failing command cannot look fast.
What bounds it: the interpreter alone is about 1× curl, and the command then loads only what it uses (no server
module, no pydantic, no other command group, no rich for JSON, no httpx command line, no CA bundle for an http://
server: tests/client/test_cli_startup.py), but importing typer itself is about 3× curl and httpx with httpcore about
4×, each more than the whole target; `python -X importtime -m sailplane.cli jobs list --output json` shows where the
time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parent.parent / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(data_dir: Path) -> Iterator[str]:
    port, gateway_port = free_port(), free_port()
    env = {**os.environ, "SAILPLANE_DATA_DIR": str(data_dir), "SAILPLANE_GATEWAY_PORT": str(gateway_port)}
    env.pop("SAILPLANE_DATABASE_URL", None)
    log = open(data_dir.parent / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "sailplane.cli", "serve", "--port", str(port), "--no-gateway-tls",
         "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"sailplane serve exited: see {data_dir.parent / 'serve.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("sailplane serve did not become healthy in 120 s")
            time.sleep(0.3)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def prepare(base: str, jobs: int) -> tuple[str, str]:
    """A signed-up owner with `jobs` jobs in one team: (token, organization ID)."""
    api = f"{base}/api/v1"
    with httpx.Client(base_url=api, timeout=60) as client:
        r = client.post("/auth/signup", json={"email": "bench@example.com", "password": "correct-horse-battery-staple",
                                              "displayName": "Bench", "organizationName": "Bench"})
        r.raise_for_status()
        token, org = r.json()["token"], r.json()["organizationId"]
        client.headers.update({"Authorization": f"Bearer {token}", "LakeSail-Organization-Id": org})
        team = client.post("/org/teams", json={"name": "bench"})
        team.raise_for_status()
        for i in range(jobs):
            client.post("/workloads/jobs", json={
                "jobKey": f"bench-{i:03}", "clusterId": "LOCAL", "teamIds": [team.json()["team"]["id"]],
                "config": {"python": {"source": "print(1)"}}, "maxConcurrentRuns": 1}).raise_for_status()
    return token, org


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--jobs", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sailplane-cli-bench-"))
    try:
        run(tmp, args.rounds, args.jobs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the database and the saved token go with the server


def run(tmp: Path, rounds: int, jobs: int) -> None:
    with serve(tmp / "data") as base:
        token, org = prepare(base, jobs)
        config = tmp / "config"
        env = {**os.environ, "SAILPLANE_CONFIG_DIR": str(config),
               "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
        # As installed (pip writes bytecode at install): the warm-up run below writes it, the timed runs load it.
        # Without it every start compiles Sailplane's modules from source again.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        sys.path.insert(0, str(SRC))
        os.environ["SAILPLANE_CONFIG_DIR"] = str(config)
        from sailplane.client.cli.profiles import DEFAULT_PROFILE, Profile, save

        save(DEFAULT_PROFILE, Profile(base, token, org, "bench@example.com"))
        cli = [sys.executable, "-m", "sailplane.cli", "jobs", "list", "--output", "json"]
        curl = ["curl", "-sSf", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
                "-H", f"LakeSail-Organization-Id: {org}", f"{base}/api/v1/workloads/jobs"]
        _, out = timed(cli, env)  # warm the page cache and the server
        listed = json.loads(out)
        if len(listed) != jobs:
            raise SystemExit(f"`sailplane jobs list` listed {len(listed)} jobs, expected {jobs}")
        timed(curl, env)
        cli_s, curl_s, ratios = [], [], []
        for _ in range(rounds):
            c, _ = timed(cli, env)
            b, _ = timed(curl, env)
            cli_s.append(c)
            curl_s.append(b)
            ratios.append(c / b)
        print(f"{'case':34} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
        for name, values in ((f"sailplane jobs list ({jobs} jobs)", cli_s), ("curl (same page)", curl_s)):
            print(f"{name:34} {statistics.median(values) * 1000:10.0f} {min(values) * 1000:8.0f} "
                  f"{max(values) * 1000:8.0f}")
        print(f"ratio (median of {rounds} paired rounds): {statistics.median(ratios):.2f}× "
              f"(range {min(ratios):.2f}-{max(ratios):.2f}; target ≤ 3×)")


if __name__ == "__main__":
    main()
