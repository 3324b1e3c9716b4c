"""Many keep-alive clients against one server at once: a mix of reads and writes, counted by outcome.

Shared by the load test (tests/service/test_load.py) and the load benchmark (bench/load_bench.py).
`sailplane serve` runs in its own process (`Served`) so the load generator never shares its GIL.

The mix, per client, cycles through: describeTeam, listTeams, listJobRuns, createTeam (the next
turn deletes it again), describeTeam, createQuery (the next turn deletes it), listTeams, describeTeam,
listJobRuns, describeTeam: 60% reads, 40% writes. Deleting what a client created keeps the data the
same size during a run, so a later phase does not slow down merely because the tables grew; each
client starts at a different place in the cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from tests.support.ports import free_port

PASSWORD = "correct-horse-battery-staple"
T = TypeVar("T")
CYCLE = ("describeTeam", "listTeams", "listJobRuns", "team", "describeTeam", "query", "listTeams",
         "describeTeam", "listJobRuns", "describeTeam")


class Served:
    """`sailplane serve` in its own process on a fresh data directory, its log kept in a file."""

    def __init__(self, data_dir: Path, database_url: str | None = None, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ("--log-level", "warning")) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.port = free_port()
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SAILPLANE_")}
        environ.update({"SAILPLANE_DATA_DIR": str(data_dir), "SAILPLANE_GATEWAY_PORT": "0",
                        "SAILPLANE_WORKLOAD_SANDBOX": os.environ.get("SAILPLANE_WORKLOAD_SANDBOX", "sandbox")})
        if database_url:
            environ["SAILPLANE_DATABASE_URL"] = database_url
        environ.update(env or {})
        self._env = environ
        self._args = args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.base}/api/v1"

    def start(self, timeout: float = 120) -> None:
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps it; closed with the process
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sailplane.cli", "serve", "--port", str(self.port), "--no-gateway-tls",
                 *self._args], env=self._env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                raise RuntimeError(f"serve did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tracebacks(self) -> int:
        return self.log().count("Traceback (most recent call last)")

    def terminate(self, timeout: float) -> float | None:
        """SIGTERM; seconds until the process exited, or None when it had to be killed after `timeout`."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def served(data_dir: Path, database_url: str | None = None, env: dict[str, str] | None = None,
           args: tuple[str, ...] = ("--log-level", "warning")) -> Iterator[Served]:
    server = Served(data_dir, database_url, env, args)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.terminate(30)
        from sailplane.compute.local import LocalSailBackend

        asyncio.run(LocalSailBackend(data_dir).stop_orphans(()))


@dataclass
class World:
    """What the clients act on: an owner's token, a few teams to read, a job whose runs are listed."""

    api: str
    headers: dict[str, str]
    team_ids: list[str]
    job_id: str
    peer_team: str


def make_world(api: str, teams: int = 20) -> World:
    with httpx.Client(base_url=api, timeout=60) as client:
        r = client.post("/auth/signup", json={"email": f"load-{time.time_ns()}@example.com", "password": PASSWORD,
                                              "displayName": "Load", "organizationName": "Load"})
        r.raise_for_status()
        body = r.json()
        headers = {"Authorization": f"Bearer {body['token']}", "LakeSail-Organization-Id": body["organizationId"]}
        client.headers.update(headers)
        team_ids = []
        for i in range(teams):
            t = client.post("/org/teams", json={"name": f"team {i:03}"})
            t.raise_for_status()
            team_ids.append(t.json()["team"]["id"])
        job = client.post("/workloads/jobs", json={"jobKey": "load", "clusterId": "LOCAL", "teamIds": [team_ids[0]],
                                                  "config": {"sql": {"source": "SELECT 1"}}})
        job.raise_for_status()
        return World(api, headers, team_ids, job.json()["id"], team_ids[0])


@dataclass
class Outcome:
    """What the clients of one phase saw."""

    clients: int
    seconds: float = 0.0
    ok: int = 0
    shed: int = 0  # 503 with Retry-After: refused quickly under overload
    shed_without_retry_after: int = 0
    timeouts: int = 0
    errors: int = 0  # any other status, or a broken connection
    unanswered: int = 0  # still waiting when an abandoned phase ended
    oldest_unanswered: float = 0.0  # how long the longest of those had waited, in seconds
    latencies: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    generator_cpu: float = 0.0  # CPU seconds the load generator itself used

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct_ms(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def note(self, what: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(what)


class HttpError(Exception):
    """The connection broke or the server answered something that is not HTTP."""


class _Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a load generator's client must cost far less
    than the server's request, or at 200 clients it measures itself (httpx costs about as much as a
    small request of ours)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.fixed = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\n{self.fixed}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + payload)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = raw.decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            content = await self.reader.readexactly(int(headers.get("content-length", "0")))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError, IndexError) as exc:
            self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from None
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class _Client:
    def __init__(self, world: World, index: int, out: Outcome) -> None:
        self.world = world
        self.index = index
        self.out = out
        url = urlsplit(world.api)
        self.prefix = url.path
        self.conn = _Connection(url.hostname or "127.0.0.1", url.port or 80, world.headers)
        self.turn = index % len(CYCLE)
        self.made_team: str | None = None
        self.made_query: str | None = None
        self.serial = 0

    def _name(self, what: str) -> str:
        self.serial += 1
        return f"{what} {self.index}-{self.serial}-{time.monotonic_ns()}"

    def _request(self) -> tuple[str, str, dict[str, Any] | None, str]:
        """(method, path, JSON body, what) of this client's next request."""
        op = CYCLE[self.turn % len(CYCLE)]
        self.turn += 1
        w = self.world
        team = w.team_ids[(self.index + self.turn) % len(w.team_ids)]
        if op == "describeTeam":
            return "GET", f"/org/teams/{team}", None, op
        if op == "listTeams":
            return "GET", "/org/teams?limit=20", None, op
        if op == "listJobRuns":
            return "GET", f"/workloads/jobs/{w.job_id}/runs?limit=20", None, op
        if op == "team":
            if self.made_team is not None:
                return "DELETE", f"/org/teams/{self.made_team}", None, "deleteTeam"
            return "POST", "/org/teams", {"name": self._name("load")}, "createTeam"
        if self.made_query is not None:
            return "DELETE", f"/workloads/queries/{self.made_query}", None, "deleteQuery"
        return "POST", "/workloads/queries", {"name": self._name("q"), "sql": "SELECT 1",
                                              "teamIds": [w.peer_team]}, "createQuery"

    def _remember(self, what: str, content: bytes) -> None:
        if what == "createTeam":
            self.made_team = json.loads(content)["team"]["id"]
        elif what == "deleteTeam":
            self.made_team = None
        elif what == "createQuery":
            self.made_query = json.loads(content)["id"]
        elif what == "deleteQuery":
            self.made_query = None

    async def run(self, until: float, timeout: float) -> None:
        out = self.out
        try:
            while time.monotonic() < until:
                method, path, body, what = self._request()
                started = time.monotonic()
                try:
                    async with asyncio.timeout(timeout):
                        status, headers, content = await self.conn.request(method, self.prefix + path, body)
                except asyncio.CancelledError:
                    out.unanswered += 1
                    out.oldest_unanswered = max(out.oldest_unanswered, time.monotonic() - started)
                    raise
                except TimeoutError:
                    self.conn.close()
                    out.timeouts += 1
                    out.note(f"{what}: timeout after {time.monotonic() - started:.1f}s")
                    continue
                except (HttpError, OSError) as exc:
                    out.errors += 1
                    out.note(f"{what}: {exc}")
                    await asyncio.sleep(0.1)
                    continue
                elapsed = time.monotonic() - started
                if status < 300:
                    out.ok += 1
                    out.latencies.append(elapsed)
                    self._remember(what, content)
                elif status == 503:
                    out.shed += 1
                    if not headers.get("retry-after"):
                        out.shed_without_retry_after += 1
                        out.note(f"{what}: 503 without Retry-After: {content[:200]!r}")
                    # A well-behaved client waits as told (capped: this is a load generator, not a user).
                    await asyncio.sleep(min(float(headers.get("retry-after") or 1), 1.0))
                else:
                    out.errors += 1
                    out.note(f"{what}: {status} {content[:200]!r}")
        finally:
            self.conn.close()


async def _phase(world: World, clients: int, seconds: float, timeout: float, *,
                 abandon: bool = False) -> Outcome:
    out = Outcome(clients)
    cpu = time.process_time()
    started = time.monotonic()
    until = started + seconds
    tasks = [asyncio.ensure_future(_Client(world, i, out).run(until, timeout)) for i in range(clients)]
    if abandon:
        # Stop the load at once (as when clients are killed): requests in flight are dropped.
        await asyncio.wait(tasks, timeout=seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        out.seconds = min(time.monotonic(), until) - started
    else:
        await asyncio.gather(*tasks)
        out.seconds = time.monotonic() - started
    out.generator_cpu = time.process_time() - cpu
    return out


def phase(world: World, clients: int, seconds: float, timeout: float = 30.0, *, abandon: bool = False) -> Outcome:
    """`clients` keep-alive clients, each sending its next request as soon as the last is answered, for
    `seconds`. With `abandon`, requests still in flight at the end are dropped (the connections closed)."""
    return _run(_phase(world, clients, seconds, timeout, abandon=abandon))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(coro)
    return uvloop.run(coro)


def time_to_answer(world: World, timeout: float = 120.0) -> float | None:
    """Seconds until a fresh client's describeTeam is answered 200 (None: not within `timeout`)."""
    started = time.monotonic()
    deadline = started + timeout
    with httpx.Client(base_url=world.api, headers=world.headers) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                remaining = max(0.1, deadline - time.monotonic())
                if client.get(f"/org/teams/{world.team_ids[0]}", timeout=remaining).status_code == 200:
                    return time.monotonic() - started
            time.sleep(0.05)
    return None


def terminate_under_load(server: Served, world: World, clients: int, load_seconds: float,
                         exit_timeout: float = 60.0) -> float | None:
    """Load the server for `load_seconds`, then SIGTERM it while the clients keep sending: seconds until it
    exited (None: it did not within `exit_timeout` and was killed)."""

    async def run() -> float | None:
        load = asyncio.ensure_future(_phase(world, clients, load_seconds + exit_timeout, 5.0, abandon=True))
        await asyncio.sleep(load_seconds)
        exited = await asyncio.to_thread(server.terminate, exit_timeout)
        load.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await load
        return exited

    return _run(run())
