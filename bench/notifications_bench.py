"""Benchmark (not a test) of notification deliveries, on SQLite (or a throwaway PostgreSQL), to a real HTTP
receiver on loopback (tests.support.receiver):

- latency: an event committed (outbox rows written and committed, as a run's end does) → the webhook received
  by the receiver, p50 and p99, against a baseline measured in the same run: one direct HTTP POST to the same
  receiver (request sent → received). The sender polls every `--interval` seconds (no cross-process wake-up),
  so about half an interval is expected on top of the baseline.
- throughput: `--events` events fanned out to 2 channels, all delivered, none twice, with the time it took
  from the commit of the last batch.

Run: .venv/bin/python bench/notifications_bench.py [--events 10000] [--samples 200] [--interval 0.1]
     [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

from tests.support.postgres import TempPostgres  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402

from sailplane.config import Settings  # noqa: E402
from sailplane.kit.db import Database  # noqa: E402
from sailplane.kit.ids import new_id  # noqa: E402
from sailplane.migrations.runner import upgrade  # noqa: E402
from sailplane.notifications.mailer.service import Mailer  # noqa: E402
from sailplane.notifications.models import NotificationChannel, NotificationRule  # noqa: E402
from sailplane.notifications.outbox import Event, record  # noqa: E402
from sailplane.notifications.sender import NotificationRuntime  # noqa: E402
from sailplane.tenancy.org.models import Organization  # noqa: E402


def setup(db: Database, receiver: Receiver, channels: int) -> str:
    with db.session() as s:
        org = Organization(name=f"Notifications bench {new_id()}")
        s.add(org)
        s.flush()
        ids = []
        for i in range(channels):
            c = NotificationChannel(organization_id=org.id, type="webhook", name=f"bench-{i}",
                                    config={"url": f"{receiver.url}/{org.id}/{i}", "_secretKeys": []})
            s.add(c)
            s.flush()
            ids.append(c.id)
        s.add(NotificationRule(organization_id=org.id, name="bench", resource_type="job_run", scope_type="organization",
                               event_types=["job_run.failed"], channel_ids=ids, enabled=True))
        s.commit()
        return org.id


def event(org: str) -> Event:
    run = new_id()
    return Event(org, "job_run.failed", f"job_run:{run}:1:failed", "job_run", run, data={"jobRun": {"id": run}})


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def latency(db: Database, receiver: Receiver, samples: int, interval: float) -> tuple[list[float], list[float]]:
    org = setup(db, receiver, 1)
    with httpx.Client() as client:
        baseline = []
        for _ in range(samples):
            before = len(receiver.requests)
            sent = time.time()
            client.post(f"{receiver.url}/baseline", content=b"{}")
            baseline.append(receiver.requests[before].at - sent)
    measured = []
    rng = random.Random(0)
    for _ in range(samples):
        time.sleep(rng.uniform(0, interval))  # commits at every phase of the sender's tick, not just after one
        e = event(org)
        with db.session() as s:
            record(s, [e])
            s.commit()
        committed = time.time()
        deadline = committed + 30
        while True:
            got = [r for r in receiver.at(f"/{org}/0") if e.resource_id.encode() in r.body]
            if got:
                measured.append(got[0].at - committed)
                break
            if time.time() > deadline:
                raise RuntimeError("a delivery did not arrive within 30 s")
            time.sleep(0.001)
    return baseline, measured


def throughput(db: Database, receiver: Receiver, events: int) -> tuple[float, int, int]:
    org = setup(db, receiver, 2)
    for start in range(0, events, 500):
        with db.session() as s:
            record(s, [event(org) for _ in range(min(500, events - start))])
            s.commit()
    committed = time.time()
    want = 2 * events
    while True:
        got = [r for r in list(receiver.requests) if r.path.startswith(f"/{org}/")]
        if len(got) >= want:
            break
        if time.time() - committed > 1800:
            raise RuntimeError(f"only {len(got)} of {want} deliveries within 30 minutes")
        time.sleep(0.05)
    elapsed = time.time() - committed
    time.sleep(1.0)  # anything sent twice would arrive now
    got = [r for r in list(receiver.requests) if r.path.startswith(f"/{org}/")]
    return elapsed, len(got), len({r.headers["idempotency-key"] for r in got})


def run(name: str, url: str, args: argparse.Namespace, receiver: Receiver, tmp: Path) -> None:
    upgrade(url)
    settings = Settings(data_dir=tmp / name, database_url=url, secret_key="bench", public_url="http://127.0.0.1",
                        notifications_interval_seconds=args.interval, notifications_allow_loopback=True)
    db = Database(url, pool_size=8, max_overflow=16)
    runtime = NotificationRuntime(db, settings, Mailer(settings))
    runtime.start()
    try:
        baseline, measured = latency(db, receiver, args.samples, args.interval)
        print(f"{name}: direct POST p50 {pct(baseline, .5):.1f} ms, p99 {pct(baseline, .99):.1f} ms; "
              f"committed → received p50 {pct(measured, .5):.1f} ms, p99 {pct(measured, .99):.1f} ms "
              f"(p50 {pct(measured, .5) - pct(baseline, .5):.1f} ms above the baseline; sender interval "
              f"{args.interval} s, mean {statistics.mean(measured) * 1000:.1f} ms)")
        elapsed, received, distinct = throughput(db, receiver, args.events)
        print(f"{name}: {args.events} events × 2 channels: {received} received ({distinct} distinct) in "
              f"{elapsed:.1f} s ({received / elapsed:.0f}/s)")
    finally:
        runtime.stop()
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    receiver = Receiver().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.only in (None, "sqlite"):
                run("sqlite", f"sqlite:///{tmp}/bench.db", args, receiver, Path(tmp))
            if args.only in (None, "postgresql"):
                pg = TempPostgres()
                pg.start()
                try:
                    run("postgresql", pg.create_database("notifications_bench"), args, receiver, Path(tmp))
                finally:
                    pg.stop()
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
