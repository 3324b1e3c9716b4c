"""Load: many keep-alive clients at once against one `sailplane serve` (its own process), on SQLite and
PostgreSQL. Benchmark, not a test (tests/service/test_load.py is the short test of the same thing).

    python bench/load_bench.py [--database sqlite|postgresql|both] [--seconds 60] [--step-seconds 15]
                               [--clients 10,40,100,200]

The clients send a mix of reads (describeTeam, listTeams, listJobRuns) and writes (createTeam,
createQuery, and deleting what they created), each its next request as soon as the last is answered
(tests/support/load.py). Phases, in one run against one server: 10 clients (the peak, the baseline of
every ratio), then each larger count for --step-seconds, the largest for --seconds; then the load
stops at once (requests in flight dropped) and the time until a fresh request is answered is the
recovery time; 10 clients again (throughput after the overload); finally SIGTERM while the largest
count of clients keeps sending, and the time until the process exited.

Targets at the largest count: ≥ 0.7× the 10-client throughput, 0 timeouts (30 s client timeout),
every refusal a quick 503 with Retry-After, 0 tracebacks in the server log, answering again at once
(≤ 1 s) when the load stops, and exiting within 15 s of SIGTERM under load. PostgreSQL is a throwaway
server (tests/support/postgres.py). --seconds 10 --step-seconds 5 is a quick run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from tests.support.load import Outcome, World, make_world, phase, served, terminate_under_load, time_to_answer  # noqa: E402
from tests.support.postgres import TempPostgres  # noqa: E402

TIMEOUT = 30.0


HEADER = (f"{'phase':12} {'clients':>7} {'s':>4} {'ok/s':>7} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'503s':>6} "
          f"{'timeouts':>8} {'errors':>6} {'tracebacks':>10} {'gen cpu':>7}")


def row(name: str, out: Outcome, peak: float, tracebacks: int) -> str:
    return (f"{name:12} {out.clients:7} {out.seconds:4.0f} {out.rps:7.1f} {out.rps / peak:6.2f} "
            f"{out.pct_ms(50):7.0f} {out.pct_ms(99):7.0f} {out.shed:6} {out.timeouts:8} {out.errors:6} "
            f"{tracebacks:10} {out.generator_cpu / out.seconds:7.0%}")


def bench(database: str, counts: list[int], seconds: float, step: float) -> bool:
    pg = None
    url = None
    if database == "postgresql":
        pg = TempPostgres()
        pg.start()
        url = pg.create_database("sailplane_load")
    try:
        with tempfile.TemporaryDirectory(prefix="sailplane-load-bench-") as tmp, \
                served(Path(tmp) / "data", url) as server:
            world: World = make_world(server.api)
            phase(world, counts[0], 3, TIMEOUT)  # warm-up
            print(f"\n{database}:\n  {HEADER}")
            seen = server.tracebacks()
            peak_out = phase(world, counts[0], step, TIMEOUT)
            peak = peak_out.rps or 1.0
            print("  " + row("peak", peak_out, peak, server.tracebacks() - seen))
            last = peak_out
            examples: list[str] = []
            for n in counts[1:]:
                seen = server.tracebacks()
                biggest = n == counts[-1]
                last = phase(world, n, seconds if biggest else step, TIMEOUT, abandon=biggest)
                examples += last.examples
                print("  " + row(f"{n} clients", last, peak, server.tracebacks() - seen))
            recovery = time_to_answer(world)
            after = phase(world, counts[0], step, TIMEOUT)
            print("  " + row("after", after, peak, 0))
            exit_seconds = terminate_under_load(server, world, counts[-1], min(step, 5.0))
            tracebacks = server.tracebacks()
            if tracebacks:
                log = server.log()
                first = log.index("Traceback (most recent call last)")
                examples.append("server log: " + log[max(0, first - 300): first + 1500])
    finally:
        if pg is not None:
            pg.stop()
    ratio = last.rps / peak
    recovered = f"{recovery:.2f} s" if recovery is not None else "NOT within 120 s"
    exited = f"{exit_seconds:.1f} s" if exit_seconds is not None else "NOT within 60 s (killed)"
    print(f"  {database}: peak {peak:.1f} req/s at {counts[0]} clients; at {counts[-1]} clients {ratio:.2f}x the peak "
          f"(target >= 0.7), {last.timeouts} timeouts, {last.unanswered} unanswered when the load stopped "
          f"(oldest waiting {last.oldest_unanswered:.1f} s), {last.shed} quick 503s "
          f"({last.shed_without_retry_after} without Retry-After), {last.errors} other errors, "
          f"{tracebacks} tracebacks in the whole server log; answered again {recovered} after the load stopped; "
          f"after it {after.rps / peak:.2f}x the peak; exited {exited} after SIGTERM under load")
    for example in examples[:5]:
        print(f"    e.g. {example}")
    return (ratio >= 0.7 and last.timeouts == 0 and last.oldest_unanswered < TIMEOUT / 2 and last.errors == 0
            and last.shed_without_retry_after == 0 and tracebacks == 0 and recovery is not None and recovery <= 1.0
            and exit_seconds is not None and exit_seconds <= 15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the largest-count phase")
    parser.add_argument("--step-seconds", type=float, default=15.0, help="length of every other phase")
    parser.add_argument("--clients", default="10,40,100,200", help="client counts; the first is the baseline")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    met = [bench(db, counts, args.seconds, args.step_seconds) for db in databases]
    print("\nall targets met" if all(met) else "\nTARGETS MISSED")


if __name__ == "__main__":
    main()
