"""Notebooks end to end: startNotebook → the template's `42` in a real browser, and the proxy's cost on a
kernel round trip.

    python bench/notebook_bench.py [--rounds 3] [--samples 200] [--quick]

Runs `sailplane serve` in its own process (fresh data directory, SQLite, plaintext gateway on loopback, the
workload sandbox as configured), signs up, and drives Debian's Chromium (`/usr/bin/chromium`) through
Playwright (never `playwright install`). The notebook environment (marimo) must be installed
(SAILPLANE_NOTEBOOK_ENVS_DIR); Sail is pysail's `sail` CLI next to this Python. Measures:

* start → first cell result in the browser (target ≤ 3.0 s): POST start, wait for `running` (its Sail session
  and marimo server up), POST open, visit the URL (through the proxy), editor shown, click "run all", the
  template's `42` shown. The split says where the time goes (Sail server ready and marimo answering are read
  from the node's database and marimo's log while it starts). Baseline in the same run, in the same browser:
  a `sail spark server` and a `marimo edit` of the same template (the notebook environment's Python,
  SPARK_REMOTE to that Sail server, no sandbox, no token) started directly and at once, the editor opened
  on marimo's own port, run all, `42`. Each visit is a fresh browser context (an empty cache: marimo's
  ~360 asset requests each time, as on a first visit; its assets live under each notebook's own path).
* the proxy's overhead on a kernel round trip (target ≤ 1.2× direct): what the browser does to run a cell,
  POST `api/kernel/run` (one cell, code `1 + <n>`: no Spark, a unique output) and wait on marimo's WebSocket
  for the cell's output and its return to idle. marimo answers the POST at once (it queues the run) and the
  result only comes over the WebSocket, so this is the cheapest call that crosses both relays. Through the
  proxy (the open URL's cookie) vs straight to the same marimo server (its token as Bearer), same kernel
  session (reconnected), in alternating blocks; the POST's own answer, median and p90.

`--quick`: one round and 60 round trips per route (about a minute).

Nothing is left running: the notebooks are stopped, leftover marimo and Sail servers of the data directory
are swept, and the directly started servers are killed with their process groups, also on failure or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright import sync_api
from websockets.sync.client import ClientConnection, connect

from sailplane.compute.environments import notebook_environment
from sailplane.compute.local import LocalSailBackend
from sailplane.compute.local_notebooks import LocalNotebookBackend
from sailplane.kit.crypto import Encryptor
from sailplane.workloads.notebooks.template import TEMPLATE
from session_bench import Api, free_port, serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_ALL = '[data-testid="chrome-controls-bottom-right"] [data-testid="run-button"]'
START_TARGET = 3.0
PROXY_TARGET = 1.2


def sail_cli() -> str:
    found = shutil.which("sail", path=str(Path(sys.executable).parent)) or shutil.which("sail")
    if found is None:
        raise SystemExit("the sail CLI (pysail) is not installed next to this Python")
    return found


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.time() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            found = check()
            if found:
                return found
        if time.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # a kernel that outlived its leader
        os.killpg(proc.pid, signal.SIGKILL)


# -- the platform ------------------------------------------------------------------------------------


class Notebooks:
    """The API calls of a notebook's life, on the benchmark's signed-up owner."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.client = api.client
        r = self.client.post("/workloads/compute-configs", json={"name": "bench", "teamId": api.team})
        r.raise_for_status()
        self.config = str(r.json()["id"])

    def create(self, name: str) -> str:
        r = self.client.post("/workloads/notebooks", json={"workloadConfigId": self.config, "name": name})
        r.raise_for_status()
        return str(r.json()["item"]["notebookId"])

    def status(self, nid: str) -> dict[str, Any]:
        r = self.client.get(f"/workloads/notebooks/{nid}")
        r.raise_for_status()
        [found] = [n for n in r.json()["included"]["notebooks"] if n["id"] == nid]
        return found  # type: ignore[no-any-return]

    def wait(self, nid: str, *statuses: str, timeout: float = 120.0, interval: float = 0.02) -> dict[str, Any]:
        found: dict[str, Any] = wait_for(lambda: (n := self.status(nid))["status"] in statuses and n, timeout,
                                         f"notebook {nid} to be {'/'.join(statuses)}", interval)
        return found

    def start(self, nid: str) -> None:
        self.client.post(f"/workloads/notebooks/{nid}/start").raise_for_status()

    def open_path(self, nid: str) -> str:
        """The open URL's path and query (its host is the configured public URL)."""
        r = self.client.post(f"/workloads/notebooks/{nid}/open")
        r.raise_for_status()
        parts = urlsplit(r.json()["url"])
        return f"{parts.path}?{parts.query}"

    def stop(self, nid: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            r = self.client.post(f"/workloads/notebooks/{nid}/stop")
            if r.status_code == 200:
                self.wait(nid, "stopped", "failed", timeout=60, interval=0.1)


class StartWatch:
    """While a notebook starts, when (wall clock) its Sail server was first `running` in the node's database,
    when marimo was spawned (the backend's line in its log) and when marimo first answered (its banner)."""

    def __init__(self, data_dir: Path, nid: str) -> None:
        self.db = data_dir / "sailplane.db"
        self.log = data_dir / "notebooks" / f"{nid}.log"
        self.nid = nid
        self.seen: dict[str, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StartWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1, check_same_thread=False)
        try:
            while not self._done.is_set() and len(self.seen) < 3:
                now = time.time()
                with contextlib.suppress(sqlite3.Error):
                    row = conn.execute(
                        "SELECT c.status FROM notebooks n JOIN sessions s ON s.id = n.session_id "
                        "JOIN compute_instances c ON c.id = s.compute_instance_id WHERE n.id = ?",
                        (self.nid,)).fetchone()
                    if row and row[0] == "running":
                        self.seen.setdefault("sail", now)
                with contextlib.suppress(OSError):
                    text = self.log.read_text(errors="replace")
                    spawned = re.search(r"--- sailplane: starting notebook \S+ at (\S+)", text)
                    if spawned:
                        self.seen.setdefault("spawned", datetime.fromisoformat(spawned[1]).timestamp())
                        if "http://" in text[spawned.end():]:
                            self.seen.setdefault("marimo", now)
                time.sleep(0.01)
        finally:
            conn.close()


def in_browser(browser: Any, url: str, marks: dict[str, float]) -> None:
    """Open `url`, wait for the editor, run all, wait for the template's 42; marks the times."""
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(url)
        if response is None or response.status != 200:
            raise RuntimeError(f"{url}: {response.status if response else 'no response'}")
        marks["page"] = time.time()
        page.wait_for_selector(".cm-editor", timeout=60_000)
        marks["editor"] = time.time()
        page.locator(RUN_ALL).click()
        marks["run all"] = time.time()
        try:
            page.get_by_text("42", exact=True).first.wait_for(timeout=120_000)
        except sync_api.TimeoutError:
            raise RuntimeError(f"no 42 on the page: {page.inner_text('body')[:2000]}") from None
        marks["42"] = time.time()
    finally:
        context.close()


def platform_round(nb: Notebooks, base: str, data_dir: Path, browser: Any, n: int) -> dict[str, float]:
    """Seconds from POST start to each step."""
    nid = nb.create(f"bench {n}")
    marks: dict[str, float] = {}
    try:
        with StartWatch(data_dir, nid) as watch:
            t0 = time.time()
            nb.start(nid)
            marks["API answer"] = time.time()
            running = nb.wait(nid, "running", "failed")
            if running["status"] != "running":
                raise RuntimeError(f"notebook failed: {running['statusMessage']}")
            marks["running"] = time.time()
        path = nb.open_path(nid)
        marks["open URL"] = time.time()
        in_browser(browser, base + path, marks)
    finally:
        nb.stop(nid)
    split = {"API answer": marks["API answer"]}
    split.update({k: watch.seen[k] for k in ("spawned", "sail", "marimo") if k in watch.seen})
    split.update({k: marks[k] for k in ("running", "open URL", "page", "editor", "run all", "42")})
    return {k: v - t0 for k, v in split.items()}


# -- the baseline: Sail and marimo started directly ---------------------------------------------------


def direct_round(python: str, sail: str, work: Path, browser: Any, n: int) -> dict[str, float]:
    work.mkdir(parents=True)
    notebook = work / "notebook.py"
    notebook.write_text(TEMPLATE)
    sail_port, marimo_port = free_port(), free_port()
    base = f"/notebooks/direct{n}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
           "SPARK_REMOTE": f"sc://127.0.0.1:{sail_port}"}
    procs: list[subprocess.Popen[bytes]] = []
    marks: dict[str, float] = {}
    try:
        t0 = time.time()
        with (work / "sail.log").open("wb") as out:
            procs.append(subprocess.Popen(
                [sail, "spark", "server", "--ip", "127.0.0.1", "--port", str(sail_port), "-C", str(work)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
        with (work / "marimo.log").open("wb") as out:
            procs.append(subprocess.Popen(
                [python, "-m", "marimo", "edit", str(notebook), "--headless", "--host", "127.0.0.1", "--port",
                 str(marimo_port), "--no-token", "--base-url", base, "--skip-update-check", "--no-sandbox"],
                cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True))
        health = f"http://127.0.0.1:{marimo_port}{base}/health"
        ready: dict[str, float] = {}

        def both_ready() -> bool:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a directly started server exited; see {work}")
            if "sail" not in ready and listening(sail_port):
                ready["sail"] = time.time()
            if "marimo" not in ready and httpx.get(health, timeout=1).status_code == 200:
                ready["marimo"] = time.time()
            return len(ready) == 2

        wait_for(both_ready, 60, "the directly started Sail and marimo")
        marks.update(ready)
        in_browser(browser, f"http://127.0.0.1:{marimo_port}{base}/", marks)
    finally:
        for proc in procs:
            kill_group(proc)
    return {k: marks[k] - t0 for k in ("sail", "marimo", "page", "editor", "run all", "42")}


# -- the proxy's overhead on a kernel round trip ------------------------------------------------------


class Kernel:
    """One route to a marimo server: HTTP calls and its WebSocket, for a kernel session."""

    def __init__(self, http: httpx.Client, ws_url: str, ws_headers: dict[str, str], session_id: str) -> None:
        self.http = http
        self.ws_url = ws_url
        self.ws_headers = ws_headers
        self.session_id = session_id
        page = http.get("").text
        token = re.search(r'"serverToken"\s*:\s*"([^"]+)"', page)
        if token is None:
            raise RuntimeError(f"no server token in marimo's page: {page[:500]}")
        http.headers.update({"Marimo-Session-Id": session_id, "Marimo-Server-Token": token[1]})
        self.ws: ClientConnection | None = None

    def __enter__(self) -> Kernel:
        self.ws = connect(f"{self.ws_url}?session_id={self.session_id}", additional_headers=self.ws_headers,
                          open_timeout=30, max_size=None).__enter__()  # closed in __exit__
        self.wait_op("kernel-ready", "reconnected", timeout=60)  # a new kernel session, or back to ours
        return self

    def __exit__(self, *_: object) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def wait_op(self, *ops: str, timeout: float = 30.0, when: Callable[[dict[str, Any]], bool] | None = None) -> Any:
        assert self.ws is not None
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise RuntimeError(f"no {'/'.join(ops)} message")
            message = json.loads(self.ws.recv(timeout=left))
            if message.get("op") in ops and (when is None or when(message.get("data") or {})):
                return message.get("data")

    def post(self, path: str, body: dict[str, Any]) -> None:
        r = self.http.post(path, json=body)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")

    def run_cell(self, cell: str, code: str, expect: str) -> tuple[float, float]:
        """POST the run, then the cell's output (containing `expect`) and its idle status on the WebSocket:
        (seconds to the POST's answer, seconds to the end)."""
        t0 = time.perf_counter()
        self.post("api/kernel/run", {"cellIds": [cell], "codes": [code]})
        answered = time.perf_counter() - t0
        output = False

        def done(data: dict[str, Any]) -> bool:
            nonlocal output
            if data.get("cell_id") != cell:
                return False
            out = data.get("output")
            if out and expect in json.dumps(out.get("data")):
                output = True
            return output and data.get("status") == "idle"

        self.wait_op("cell-op", when=done)
        return answered, time.perf_counter() - t0


def proxy_overhead(nb: Notebooks, base: str, data_dir: Path, samples: int,
                   blocks: int = 6) -> dict[str, list[tuple[float, float]]]:
    nid = nb.create("bench round trips")
    nb.start(nid)
    try:
        if nb.wait(nid, "running", "failed")["status"] != "running":
            raise RuntimeError("the round-trip notebook failed to start")
        db = sqlite3.connect(f"file:{data_dir / 'sailplane.db'}?mode=ro", uri=True)
        try:
            host, port, secret = db.execute("SELECT server_host, server_port, server_secret FROM notebooks "
                                            "WHERE id = ?", (nid,)).fetchone()
        finally:
            db.close()
        token = Encryptor((data_dir / "secret.key").read_text().strip()).decrypt(secret)
        session_id = f"s_{uuid.uuid4().hex[:10]}"
        bearer = {"Authorization": f"Bearer {token}"}
        direct_http = httpx.Client(base_url=f"http://{host}:{port}/notebooks/{nid}/", headers=bearer, timeout=30)
        proxied_http = httpx.Client(base_url=f"{base}/notebooks/{nid}/", timeout=30)
        with direct_http, proxied_http:
            r = proxied_http.get(base + nb.open_path(nid))  # the open URL: sets the proxy's cookie
            if r.status_code not in (200, 303):
                raise RuntimeError(f"open URL: {r.status_code}")
            cookie = "; ".join(f"{k}={v}" for k, v in proxied_http.cookies.items())
            routes = {
                "direct": Kernel(direct_http, f"ws://{host}:{port}/notebooks/{nid}/ws", bearer, session_id),
                "proxy": Kernel(proxied_http, f"{base.replace('http', 'ws', 1)}/notebooks/{nid}/ws",
                                {"Cookie": cookie}, session_id),
            }
            with routes["direct"] as kernel:  # the kernel session, its graph; the template's cells are not run
                kernel.post("api/kernel/instantiate", {"objectIds": [], "values": [], "autoRun": False})
                for i in range(20):  # warm-up
                    kernel.run_cell("bench", f"1 + {i}", str(1 + i))
            times: dict[str, list[tuple[float, float]]] = {"direct": [], "proxy": []}
            per_block = max(1, samples // blocks)
            n = 1000
            for block in range(blocks):  # alternating: the machine's noise falls on both
                for route in (("direct", "proxy") if block % 2 == 0 else ("proxy", "direct")):
                    with routes[route] as kernel:  # reconnects to the same kernel session
                        for _ in range(3):
                            n += 1
                            kernel.run_cell("bench", f"1 + {n}", str(1 + n))
                        for _ in range(per_block):
                            n += 1
                            times[route].append(kernel.run_cell("bench", f"1 + {n}", str(1 + n)))
        return times
    finally:
        nb.stop(nid)


# -- report ------------------------------------------------------------------------------------------


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def ms2(value: float) -> str:
    return f"{value * 1000:.2f} ms"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


@contextlib.contextmanager
def sweeping(data_dir: Path) -> Iterator[None]:
    """Whatever marimo or Sail server of the data directory is left at the end is stopped (and said)."""
    try:
        yield
    finally:
        left = asyncio.run(LocalNotebookBackend(data_dir).stop_orphans(()))
        left += asyncio.run(LocalSailBackend(data_dir).stop_orphans(()))
        if left:
            print(f"(stopped {len(left)} server(s) left by the benchmark)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="start rounds, each platform then direct")
    parser.add_argument("--samples", type=int, default=200, help="kernel round trips per route")
    parser.add_argument("--quick", action="store_true", help="1 round, 60 round trips per route")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.samples = 1, 60
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Debian's Chromium is not installed at {CHROMIUM} (scripts/bootstrap.sh dev)")
    environment = notebook_environment().env()
    if not environment.installed:
        raise SystemExit(f"the notebook environment is not installed at {environment.path} "
                         "(SAILPLANE_NOTEBOOK_ENVS_DIR)")
    sail = sail_cli()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so every cleanup below runs
    with tempfile.TemporaryDirectory(prefix="sailplane-notebook-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        with sweeping(data_dir), serve(data_dir) as (api_base, _), sync_api.sync_playwright() as playwright:
            base = api_base.removesuffix("/api/v1")
            nb = Notebooks(Api(api_base))
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                # Warm-up (first Sail and marimo loads, the browser's first page) is not measured.
                platform_round(nb, base, data_dir, browser, 0)
                direct_round(environment.python, sail, Path(tmp) / "direct0", browser, 0)
                platform: list[dict[str, float]] = []
                direct: list[dict[str, float]] = []
                for n in range(1, args.rounds + 1):
                    platform.append(platform_round(nb, base, data_dir, browser, n))
                    direct.append(direct_round(environment.python, sail, Path(tmp) / f"direct{n}", browser, n))
            finally:
                browser.close()
            report_start(platform, direct)
            report_round_trips(proxy_overhead(nb, base, data_dir, args.samples))


def report_start(platform: list[dict[str, float]], direct: list[dict[str, float]]) -> None:
    def med(rounds: list[dict[str, float]], key: str) -> float | None:
        values = [r[key] for r in rounds if key in r]
        return statistics.median(values) if values else None

    p, d = med(platform, "42"), med(direct, "42")
    assert p is not None and d is not None
    print(f"start -> marimo editor + first cell result in Chromium, median of {len(platform)} rounds "
          f"(target <= {START_TARGET:.1f} s):")
    print(f"  {'':<34}{'platform':>10}{'direct':>10}")
    rows = [("API answer (POST start)", "API answer", None), ("marimo spawned", "spawned", None),
            ("Sail server ready", "sail", "sail"), ("marimo answering", "marimo", "marimo"),
            ("notebook running (API)", "running", None), ("open URL (POST open)", "open URL", None),
            ("page loaded", "page", "page"), ("editor shown", "editor", "editor"),
            ("run all clicked", "run all", "run all"), ("42 shown", "42", "42")]
    for label, pk, dk in rows:
        print(f"  {label:<34}{ms(med(platform, pk)):>10}{ms(med(direct, dk) if dk else None):>10}")
    print(f"  total {p:.3f} s vs direct {d:.3f} s: ratio {p / d:.2f}x -- "
          f"{'PASS' if p <= START_TARGET else 'MISS'} (target <= {START_TARGET:.1f} s)")
    rounds = {name: ", ".join(f"{r['42']:.2f}" for r in runs) for name, runs in (("platform", platform),
                                                                                 ("direct", direct))}
    print(f"  rounds (s): platform {rounds['platform']}; direct {rounds['direct']}")
    sys.stdout.flush()


def report_round_trips(times: dict[str, list[tuple[float, float]]]) -> None:
    def stat(route: str, part: int, how: Callable[[list[float]], float]) -> float:
        return how([sample[part] for sample in times[route]])

    print(f"kernel round trip (POST api/kernel/run, then the cell's output and idle on the WebSocket), "
          f"{len(times['proxy'])} samples per route, same marimo server and kernel session:")
    print(f"  {'':<34}{'direct':>10}{'proxy':>10}{'ratio':>8}")
    rows: list[tuple[str, int, Callable[[list[float]], float]]] = [
        ("POST answered, median", 0, statistics.median), ("round trip, median", 1, statistics.median),
        ("round trip, p90", 1, p90)]
    for label, part, how in rows:
        d, p = stat("direct", part, how), stat("proxy", part, how)
        print(f"  {label:<34}{ms2(d):>10}{ms2(p):>10}{p / d:>7.2f}x")
    ratio = stat("proxy", 1, statistics.median) / stat("direct", 1, statistics.median)
    print(f"  round trip through the proxy: {ratio:.2f}x direct -- {'PASS' if ratio <= PROXY_TARGET else 'MISS'} "
          f"(target <= {PROXY_TARGET:.1f}x)")


if __name__ == "__main__":
    main()
