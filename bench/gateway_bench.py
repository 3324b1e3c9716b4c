"""Spark Connect gateway overhead, measured against talking to Sail directly in the same run.

    python bench/gateway_bench.py [--latency-runs 300] [--megabytes 100] [--holder-check database|none]

Prints: median `spark.sql("select 1").collect()` latency (target ≤ 1.3× direct), time to pull
~100 MB of Arrow with `toArrow()` (target ≤ 1.05× direct), and the RSS of an idle Sail instance.
The gateway runs in its own process, so it does not share a GIL with the client. As in the server, it
re-validates the token's holder against a database (a SQLite file seeded with one member, their login
and session), through the access cache the server uses (`--access-cache-seconds`, 5 by default): only
the first call waits for that check, later ones are answered from memory while the cache is refreshed
in the background. A second gateway without the holder check ("bare gateway") runs alongside, so the
check's own cost shows in the same run; `--holder-check none` measures only the bare gateway.

Each latency ratio compares the same client configuration with and without the gateway: Sail ignores
a token it is sent, so "direct" carries the token exactly as the gateway path does. The token goes
either as plain metadata (`x-sailplane-token=`, what the README recommends) or as PySpark's `token=`,
which attaches it through gRPC call credentials: a per-call Python callback in the client that costs
it milliseconds whether or not a gateway is in between ("direct, no token" shows that cost).
For the pull, "direct" is PySpark's default (Sail gzips every batch for a client that accepts it; the
gateway does not let it) and "direct-identity" a client that asks for no compression.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.connect.client.core import DefaultChannelBuilder
from pyspark.sql.connect.session import SparkSession as ConnectSession

from sailplane.compute.backend import InstanceSpec
from sailplane.compute.local import LocalSailBackend, pid_of
from sailplane.gateway.spark_connect import TOKEN_HEADER
from sailplane.gateway.tokens import SigningKeys


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def seed_holder(database_url: str) -> dict[str, str]:
    """A database (migrated like the server's) holding one member with a login and an active session in
    their team; returns the claims that name them in a session token."""
    from datetime import timedelta

    from sailplane.iam.auth.models import Login, User
    from sailplane.kit.clock import utcnow
    from sailplane.kit.db import Database
    from sailplane.migrations.runner import upgrade
    from sailplane.tenancy.org.models import Member, MemberRole, Organization
    from sailplane.tenancy.teams.models import Team, TeamMemberRole
    from sailplane.workloads.models import ComputeInstance, InteractiveSession, WorkloadConfig

    upgrade(database_url)
    db = Database(database_url)
    now = utcnow()
    with db.session() as s:
        user = User(email="bench@example.com", display_name="Bench")
        org = Organization(name="Bench")
        s.add_all([user, org])
        s.flush()
        member = Member(organization_id=org.id, user_id=user.id)
        team = Team(organization_id=org.id, name="bench", default_role_id="TEAMDEVELOPER")
        login = Login(user_id=user.id, token_hash="0" * 64, created_at=now, expires_at=now + timedelta(days=1))
        s.add_all([member, team, login])
        s.flush()
        config = WorkloadConfig(organization_id=org.id, team_id=team.id, workload_type="spark_connect",
                                cluster_id="LOCAL", content_hash="0" * 64)
        s.add_all([MemberRole(member_id=member.id, role_id="MEMBER", organization_id=org.id),
                   TeamMemberRole(team_id=team.id, member_id=member.id, role_id="TEAMDEVELOPER",
                                  organization_id=org.id), config])
        s.flush()
        instance = ComputeInstance(organization_id=org.id, workload_config_id=config.id, cluster_id="LOCAL",
                                   backend="local", node="bench", status="running")
        s.add(instance)
        s.flush()
        session = InteractiveSession(
            organization_id=org.id, team_id=team.id, member_id=member.id, workload_config_id=config.id,
            compute_instance_id=instance.id, endpoint_type="spark_connect", name="bench", status="active",
            idle_timeout_seconds=3600, idle_close_delay_seconds=3600, max_duration_seconds=3600,
            timeout_at=now + timedelta(hours=1))
        s.add(session)
        s.commit()
        claims = {"sid": session.id, "sub": member.id, "org": org.id, "via": f"login:{login.id}"}
    db.dispose()
    return claims


def serve_gateway(upstream: str, key_dir: str, database_url: str, access_cache_seconds: float) -> None:
    """Child process: a gateway that routes every valid token to `upstream`, checking its holder against
    `database_url` ("none": no holder check); prints its port."""
    from sailplane.gateway.spark_connect import Claims, SparkConnectGateway
    from sailplane.kit.db import Database
    from sailplane.workloads.holders import DatabaseHolderCheck

    async def resolve(claims: Claims, method: str) -> str:
        return upstream

    async def main() -> None:
        activity: dict[str, float] = {}
        check = DatabaseHolderCheck(Database(database_url)) if database_url != "none" else None
        gateway = SparkConnectGateway(
            SigningKeys.load_or_create(key_dir),
            resolve,
            on_activity=lambda sid: activity.__setitem__(sid, time.monotonic()),
            holder_check=check,
            holder_ttl=access_cache_seconds,
        )
        port = await gateway.start("127.0.0.1", 0)
        print(json.dumps({"port": port}), flush=True)
        await asyncio.to_thread(sys.stdin.read)  # run until the parent closes our stdin
        await gateway.stop(1)

    asyncio.run(main())


@contextlib.contextmanager
def session(url: str, *, identity_encoding: bool = False) -> Iterator[SparkSession]:
    if identity_encoding:
        # Advertise no compression, as the gateway does on its hop to Sail: Sail then skips gzip.
        builder = DefaultChannelBuilder(url)
        builder.setChannelOption("grpc.compression_enabled_algorithms_bitset", 1)
        spark = ConnectSession.builder.channelBuilder(builder).create()
    else:
        spark = SparkSession.builder.remote(url).create()
    try:
        yield spark
    finally:
        spark.stop()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-runs", type=int, default=300)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--transfer-runs", type=int, default=5)
    parser.add_argument("--holder-check", choices=("database", "none"), default="database",
                        help="re-validate the token's holder against a database, as the server does (default)")
    parser.add_argument("--access-cache-seconds", type=float, default=5.0)
    parser.add_argument("--serve-gateway", nargs=3, metavar=("UPSTREAM", "KEY_DIR", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        upstream, key_dir, database_url = args.serve_gateway
        serve_gateway(upstream, key_dir, database_url, args.access_cache_seconds)
        return

    data_dir = Path(tempfile.mkdtemp(prefix="sailplane-bench-"))
    database_url, claims = "none", {"sid": "BENCH", "sub": "bench"}
    if args.holder_check == "database":
        database_url = f"sqlite:///{data_dir / 'bench.db'}"
        claims = seed_holder(database_url)
    backend = LocalSailBackend(data_dir)
    handle = asyncio.run(backend.start(InstanceSpec("BENCH1")))
    time.sleep(2)  # let the fresh server settle before reading its footprint
    idle_rss_fresh = rss_mib(pid_of(handle))
    def start_gateway(db_url: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, __file__, "--serve-gateway", handle.address, str(data_dir), db_url,
             "--access-cache-seconds", str(args.access_cache_seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    gateways = [start_gateway(database_url)]
    if database_url != "none":
        gateways.append(start_gateway("none"))
    gateway_proc = gateways[0]
    try:
        ports = []
        for proc in gateways:
            assert proc.stdout is not None
            ports.append(json.loads(proc.stdout.readline())["port"])
        gateway_port = ports[0]
        extra = {k: v for k, v in claims.items() if k not in ("sid", "sub")}
        token = SigningKeys.load_or_create(data_dir).issue(claims["sid"], claims["sub"], 3600, extra_claims=extra)
        urls = {
            "direct, no token": f"sc://localhost:{handle.port}",
            "direct": f"sc://localhost:{handle.port}/;{TOKEN_HEADER}={token}",
            "gateway": f"sc://localhost:{gateway_port}/;{TOKEN_HEADER}={token}",
            **({"bare gateway": f"sc://localhost:{ports[1]}/;{TOKEN_HEADER}={token}"} if len(ports) > 1 else {}),
            "direct token=": f"sc://localhost:{handle.port}/;token={token}",
            "gateway token=": f"sc://localhost:{gateway_port}/;token={token}",
        }
        with contextlib.ExitStack() as stack:
            spark = {name: stack.enter_context(session(url)) for name, url in urls.items()}
            identity = stack.enter_context(session(urls["direct"], identity_encoding=True))

            # Latency: interleave the paths so drift on the machine hits all alike.
            for s in spark.values():
                for _ in range(30):
                    s.sql("select 1").collect()
            latency: dict[str, list[float]] = {name: [] for name in spark}
            for _ in range(args.latency_runs):
                for name, s in spark.items():
                    latency[name].append(timed(lambda s=s: s.sql("select 1").collect()))

            # Throughput: ~100 bytes a row, pulled as Arrow (no per-row Python objects to hide behind).
            rows = args.megabytes * 1024 * 1024 // 100
            query = f"SELECT id, repeat('x', 92) AS s FROM range({rows})"
            pull = {"direct": spark["direct"], "direct-identity": identity, "gateway": spark["gateway"]}
            sizes = {name: s.sql(query).toArrow().nbytes for name, s in pull.items()}  # also warms up
            transfer: dict[str, list[float]] = {name: [] for name in pull}
            for _ in range(args.transfer_runs):
                for name, s in pull.items():
                    transfer[name].append(timed(lambda s=s: s.sql(query).toArrow()))
        time.sleep(2)
        idle_rss_used = rss_mib(pid_of(handle))
        gateway_rss = rss_mib(gateway_proc.pid)
    finally:
        for proc in gateways:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(30)
        asyncio.run(backend.stop(handle))

    lat = {k: statistics.median(v) * 1000 for k, v in latency.items()}
    xfer = {k: statistics.median(v) for k, v in transfer.items()}
    mb = sizes["direct"] / 1e6
    cache = f"{args.access_cache_seconds:g} s access cache" if args.holder_check == "database" else "no holder check"
    print(f"gateway: {cache}")
    print("select 1 median latency (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in lat.items()))
    print(f"  ratio gateway/direct (token as metadata): {lat['gateway'] / lat['direct']:.2f}x (target <= 1.30x)")
    if "bare gateway" in lat:
        print(f"  ratio bare gateway/direct: {lat['bare gateway'] / lat['direct']:.2f}x; the holder check's cost: "
              f"gateway/bare gateway {lat['gateway'] / lat['bare gateway']:.3f}x")
    print(f"  ratio gateway/direct (PySpark token=): {lat['gateway token='] / lat['direct token=']:.2f}x")
    print(f"  token= itself, direct: {lat['direct token='] / lat['direct, no token']:.2f}x the same client without it")
    print(
        f"Arrow pull of {mb:.0f} MB: direct {xfer['direct']:.2f} s ({mb / xfer['direct']:.0f} MB/s), "
        f"gateway {xfer['gateway']:.2f} s ({mb / xfer['gateway']:.0f} MB/s)"
    )
    print(f"  ratio gateway/direct: {xfer['gateway'] / xfer['direct']:.3f}x (target <= 1.05x)")
    print(
        f"  direct without gzip (client advertises identity): {xfer['direct-identity']:.2f} s; "
        f"ratio gateway/direct-identity: {xfer['gateway'] / xfer['direct-identity']:.3f}x"
    )
    print(f"idle Sail RSS: {idle_rss_fresh:.0f} MiB fresh, {idle_rss_used:.0f} MiB after the runs")
    print(f"gateway process RSS after the runs: {gateway_rss:.0f} MiB")
    assert len(set(sizes.values())) == 1, sizes


if __name__ == "__main__":
    main()
