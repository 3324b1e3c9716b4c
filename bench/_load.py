"""A small closed-loop HTTP load generator (asyncio + httpx) and process helpers for benchmarks."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def _worker(client: httpx.AsyncClient, url: str, headers: dict[str, str], until: float,
                  latencies: list[float]) -> None:
    while time.perf_counter() < until:
        start = time.perf_counter()
        r = await client.get(url, headers=headers)
        latencies.append(time.perf_counter() - start)
        if r.status_code != 200:
            raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:200]}")


async def _run(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> LoadResult:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        for _ in range(20):  # warm-up
            await client.get(url, headers=headers)
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(*(_worker(client, url, headers, until, latencies) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return LoadResult(
        requests=len(ordered),
        seconds=elapsed,
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


def load(url: str, headers: dict[str, str] | None = None, seconds: float = 5.0, concurrency: int = 8) -> LoadResult:
    return asyncio.run(_run(url, headers or {}, seconds, concurrency))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_uvicorn(app_ref: str, port: int, env: dict[str, str], factory: bool = False) -> subprocess.Popen[bytes]:
    """The same uvicorn settings for every server a benchmark compares."""
    cmd = [sys.executable, "-m", "uvicorn", app_ref, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    if factory:
        cmd.append("--factory")
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=Path(__file__).resolve().parent)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app_ref} did not start")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process: the server's own cost, whatever the load generator costs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
