"""The web console's first page load: the jobs list with 1,000 jobs, to interactive, and what it ships.

    python bench/console_bench.py [--jobs 1000] [--samples 9]

Runs `sailplane serve` in its own process (fresh data directory, SQLite, loopback; the console as built by
`scripts/build_console.sh` in this checkout), signs up, creates the jobs through the API (a tenth on a schedule, a
tenth with a run, held pending so nothing executes), and drives Debian's Chromium (`/usr/bin/chromium`) through
Playwright (never `playwright install`). Measures:

* first load of `/jobs` to interactive (target ≤ 1.0 s): a fresh browser context each sample (an empty cache, as on
  a first visit; signed in already: the login token is put in localStorage before the page's scripts run), from
  navigation start to the first page of jobs (25 rows) in the table with its pager's Next button enabled, read
  in the page (`performance.now()`), median and worst;
* what the page shipped: JavaScript, CSS and HTML, in KB, raw (decoded) and as sent (gzip: the build's `.gz`
  copies), from the responses the browser received;
* baseline, in the same run and browser: the same first page of jobs (the API's answer, rendered to a static HTML
  table beforehand) served by a tiny local HTTP server, to the last row shown; and the bare API call the page
  makes (listJobs, page 1 of 25), timed from Python. The console's figure is printed as a ratio of both.

Prints PASS/MISS against the target. Nothing is left running: the browser and the server are stopped, also on
failure.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import html
import http.server
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from playwright import sync_api

from session_bench import serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TARGET_S = 1.0
PAGE_ROWS = 25  # the console's jobs page size
AUTH_KEY = "sailplane.auth"  # console/src/api/client.ts
READY = f"""() => document.querySelectorAll('table[aria-label="Jobs"] tbody tr').length === {PAGE_ROWS}
  && [...document.querySelectorAll('nav[aria-label="Pages"] button')]
       .some(b => b.textContent === 'Next' && !b.disabled)"""


def populate(base: str, jobs: int) -> tuple[dict[str, str], str]:
    """Sign up and create the jobs; answers the console's stored auth and the owner's email."""
    client = httpx.Client(base_url=f"{base}/api/v1", timeout=60)
    email = f"bench-{time.time_ns()}@example.com"
    r = client.post("/auth/signup", json={"email": email, "password": "correct-horse-battery-staple",
                                         "displayName": "Bench", "organizationName": "Bench"})
    r.raise_for_status()
    body = r.json()
    client.headers.update({"Authorization": f"Bearer {body['token']}",
                           "LakeSail-Organization-Id": body["organizationId"]})
    team = client.post("/org/teams", json={"name": "bench"}).raise_for_status().json()["team"]["id"]
    started = time.perf_counter()
    for i in range(jobs):
        job: dict[str, Any] = {"jobKey": f"job-{i:04d}", "clusterId": "LOCAL", "teamIds": [team],
                               "description": f"Bench job {i}", "config": {"sql": {"source": f"SELECT {i}"}}}
        if i % 10 == 0:
            job |= {"cronExpression": f"{i % 60} {i % 24} * * *", "cronTimezone": "Europe/Paris"}
        created = client.post("/workloads/jobs", json=job).raise_for_status().json()
        if i % 10 == 5:
            client.post(f"/workloads/jobs/{created['id']}/runs", json={"hold": True}).raise_for_status()
    print(f"created {jobs} jobs in {time.perf_counter() - started:.1f} s")
    client.close()
    return {"token": body["token"], "organizationId": body["organizationId"], "email": email}, email


def api_call_times(base: str, auth: dict[str, str], samples: int) -> list[float]:
    """The page's one list call (listJobs, page 1 of 25, by key), over a fresh connection each time."""
    headers = {"Authorization": f"Bearer {auth['token']}", "LakeSail-Organization-Id": auth["organizationId"]}
    params: dict[str, str | int] = {"page": 1, "limit": PAGE_ROWS, "sortBy": "jobKey", "sortDirection": "asc"}
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        httpx.get(f"{base}/api/v1/workloads/jobs", params=params, headers=headers, timeout=30).raise_for_status()
        times.append(time.perf_counter() - started)
    return times


def static_page(base: str, auth: dict[str, str]) -> bytes:
    """The same first page of jobs, rendered beforehand to a plain HTML table (the floor of showing it)."""
    headers = {"Authorization": f"Bearer {auth['token']}", "LakeSail-Organization-Id": auth["organizationId"]}
    body = httpx.get(f"{base}/api/v1/workloads/jobs", params={"page": 1, "limit": PAGE_ROWS}, headers=headers,
                     timeout=30).raise_for_status().json()
    jobs = {j["id"]: j for j in body["included"]["jobs"]}
    runs = {r["id"]: r for r in body["included"]["jobRuns"]}
    rows = []
    for item in body["items"]:
        job = jobs[item["jobId"]]
        run = runs.get(item["latestJobRunId"] or "")
        rows.append(f"<tr><td><a href=\"/jobs/{job['id']}\">{html.escape(job['jobKey'])}</a></td>"
                    f"<td>{html.escape(job['cronExpression'] or 'By hand')}</td><td>{job['nextRunAt'] or '—'}</td>"
                    f"<td>{run['status'] if run else 'Never run'}</td><td>{job['createdAt']}</td></tr>")
    return ("<!doctype html><html><head><meta charset=utf-8><title>Jobs</title></head><body><h1>Jobs</h1>"
            "<table aria-label=\"Jobs\"><thead><tr><th>Name</th><th>Schedule</th><th>Next run</th><th>Last run</th>"
            f"<th>Created</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<nav aria-label=\"Pages\"><button>Next</button></nav></body></html>").encode()


@contextlib.contextmanager
def static_server(page: bytes) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the browser may close early
                self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def first_load(browser: Any, url: str, auth: dict[str, str] | None,
               shipped: dict[str, list[tuple[str, int, int]]] | None = None) -> float:
    """Seconds from navigation start to the first page of jobs shown and its pager usable, in a fresh context."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        if auth is not None:
            context.add_init_script(f"localStorage.setItem({json.dumps(AUTH_KEY)}, {json.dumps(json.dumps(auth))})")
        page = context.new_page()
        responses: list[Any] = []
        page.on("response", lambda response: responses.append(response))
        page.goto(url, wait_until="commit")
        page.wait_for_function(READY, polling="raf", timeout=30_000)
        elapsed_ms = float(page.evaluate("performance.now()"))
        if shipped is not None:
            for response in responses:
                kind = response.request.resource_type
                if kind not in ("script", "stylesheet", "document"):
                    continue
                raw = len(response.body())
                sent = response.request.sizes()["responseBodySize"]
                encoding = response.headers.get("content-encoding", "")
                wire = sent if encoding == "gzip" else len(gzip.compress(response.body(), 9))
                shipped.setdefault(kind, []).append((response.url.rsplit("/", 1)[-1] or "/", raw, wire))
        return elapsed_ms / 1000
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=9)
    args = parser.parse_args()
    from sailplane.console import DEFAULT_DIR
    if not (DEFAULT_DIR / "index.html").is_file():
        raise SystemExit(f"the console is not built at {DEFAULT_DIR} (scripts/build_console.sh)")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Debian's Chromium is not installed at {CHROMIUM} (scripts/bootstrap.sh dev)")

    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        with serve(data_dir) as (api_base, _):
            base = api_base.removesuffix("/api/v1")
            auth, _ = populate(base, args.jobs)
            api_times = api_call_times(base, auth, args.samples * 3)
            with static_server(static_page(base, auth)) as static_url, sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    first_load(browser, f"{base}/jobs", auth)  # warm the server (its first requests), not measured
                    shipped: dict[str, list[tuple[str, int, int]]] = {}
                    console: list[float] = []
                    static: list[float] = []
                    for i in range(args.samples):  # alternating, so both see the same machine
                        console.append(first_load(browser, f"{base}/jobs", auth, shipped if i == 0 else None))
                        static.append(first_load(browser, static_url, None))
                finally:
                    browser.close()

    def line(name: str, values: list[float]) -> str:
        return (f"{name:<44} median {statistics.median(values) * 1000:7.1f} ms   "
                f"worst {max(values) * 1000:7.1f} ms   (n={len(values)})")

    print(f"\nFirst load of /jobs to interactive, {args.jobs} jobs (fresh browser context each time):")
    print(line("console (/jobs, 25 rows + pager usable)", console))
    print(line("baseline: static HTML of the same 25 rows", static))
    print(line("baseline: the bare listJobs call (Python)", api_times))
    median = statistics.median(console)
    print(f"ratio: {median / statistics.median(static):.1f}x the static page, "
          f"{median / statistics.median(api_times):.1f}x the bare API call")

    print("\nShipped for the page (KB; raw = decoded, gzip = as sent):")
    totals = [0, 0]
    for kind in ("document", "script", "stylesheet"):
        files = shipped.get(kind, [])
        raw, wire = sum(f[1] for f in files), sum(f[2] for f in files)
        totals[0] += raw
        totals[1] += wire
        names = ", ".join(f[0] for f in files)
        print(f"  {kind:<10} {raw / 1024:7.1f} raw {wire / 1024:7.1f} gzip   {len(files)} file(s): {names}")
    print(f"  {'total':<10} {totals[0] / 1024:7.1f} raw {totals[1] / 1024:7.1f} gzip")
    verdict = "PASS" if median <= TARGET_S else "MISS"
    print(f"\n{verdict}: median first load to interactive {median * 1000:.0f} ms (target ≤ {TARGET_S * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
