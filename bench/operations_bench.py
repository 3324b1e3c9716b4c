"""Benchmark (not a test): the overhead of Sailplane's operations on provisioning a network (target ≤ 1.5x).

Measured: the time from `provisionNetwork` to the operation's success (createNetwork first, untimed; then
provision and getOperation every 20 ms until it has ended), against a `sailplane serve` child process with the
production operation settings (1 s claim interval, 30 s leases) and the moto server (tests/infra/moto_server.py) on
loopback. Baseline, in the same run against the same moto server: the same AWS calls made directly with boto3 (one
session for the run; AssumeRole into the connection's role, DescribeAvailabilityZones, CreateStack with the same
template, DescribeStacks until it is CREATE_COMPLETE). After one warm-up round each, rounds alternate the two;
medians and their ratio are printed. moto creates a stack at once, so both sides are bound by calls and
bookkeeping, not by CloudFormation.

Concurrency (`--concurrency 8,32,64`): how many operations one server drives at once without missing a lease renewal.
A second server (SAILPLANE_OPERATIONS_MAX_PARALLEL at the largest count, 3 s leases: a renewal every second must
keep up) is given N provisionNetwork operations at once; printed are the time until all succeeded, operations per
second, and the leases it renewed late or lost (`sailplane_operation_lease_renewals_missed_total`, its /metrics).

Run: .venv/bin/python bench/operations_bench.py [--rounds 7] [--database postgresql] [--concurrency 8,32]
Everything it starts (moto, the server, a throwaway PostgreSQL) is stopped at the end; its stacks are deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.*

from tests.infra.conftest import AWS_ENV, PRINCIPAL, REGION  # noqa: E402
from tests.infra.helpers import verified  # noqa: E402
from tests.runs.live import ServerProcess  # noqa: E402
from tests.support.actors import signup  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.postgres import TempPostgres  # noqa: E402

from sailplane.infra.networks.template import template  # noqa: E402
from sailplane.kit.ids import new_id  # noqa: E402

POLL = 0.02  # the client's getOperation interval, and the baseline's DescribeStacks interval


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.infra.moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **AWS_ENV}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/moto-api/", timeout=2).status_code < 500:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the moto server did not start; see {log}")
        time.sleep(0.1)


def through_sailplane(owner: Any, conn_id: str, cidr: str) -> float:
    base = f"/infra/connections/{conn_id}/networks"
    r = owner.post(base, json={"name": f"bench-{cidr.split('.')[1]}", "config": {"cidr": cidr}})
    assert r.status_code == 201, r.text
    t0 = time.perf_counter()
    op = owner.post(f"{base}/{r.json()['id']}/provision")
    assert op.status_code == 202, op.text
    while True:
        body = owner.get(f"/operations/{op.json()['id']}").json()
        if body["status"] in ("succeeded", "failed"):
            elapsed = time.perf_counter() - t0
            assert body["status"] == "succeeded", body
            return elapsed
        time.sleep(POLL)


def direct(session: Any, moto: str, role_arn: str, external_id: str, cidr: str) -> tuple[float, str]:
    """The same calls with boto3 (one session for the whole run, as a careful script would: its service models
    are loaded once): assume the role, pick the zones, create the stack, wait for it."""
    t0 = time.perf_counter()
    sts = session.client("sts", region_name=REGION, endpoint_url=moto)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="bench", ExternalId=external_id)["Credentials"]
    keys = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"], "region_name": REGION, "endpoint_url": moto}
    zones = [z["ZoneName"] for z in session.client("ec2", **keys).describe_availability_zones(
        Filters=[{"Name": "state", "Values": ["available"]}])["AvailabilityZones"]][:2]
    cfn = session.client("cloudformation", **keys)
    name = f"bench-direct-{new_id().lower()}"
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template(new_id(), cidr, zones)),
                     ClientRequestToken=new_id())
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            break
        time.sleep(POLL)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return time.perf_counter() - t0, name


def missed_leases(api: str) -> float:
    text = httpx.get(f"{api.removesuffix('/api/v1')}/metrics", timeout=30).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("sailplane_operation_lease_renewals_missed_total{"))


def concurrency(tmp: Path, database_url: str, moto: str, counts: list[int]) -> None:
    server = ServerProcess(tmp / "node-concurrency", database_url)
    server.env.update({**AWS_ENV, "SAILPLANE_AWS_ENDPOINT_URL": moto, "SAILPLANE_AWS_PRINCIPAL_ARN": PRINCIPAL,
                       "SAILPLANE_OPERATIONS_INTERVAL_SECONDS": "1", "SAILPLANE_OPERATIONS_LEASE_SECONDS": "3",
                       "SAILPLANE_OPERATIONS_MAX_PARALLEL": str(max(counts))})
    server.env.pop("SAILPLANE_CONTROLLER_INTERVAL_SECONDS", None)

    def customer_aws(service: str, region: str = REGION) -> Any:
        return boto3.session.Session().client(service, region_name=region, endpoint_url=moto)

    try:
        server.start()
        owner = signup(server.api)
        conn_id = verified(owner, customer_aws)["id"]
        base = f"/infra/connections/{conn_id}/networks"
        subnet = 0
        for count in counts:
            ids = []
            for _ in range(count):
                subnet += 1
                r = owner.post(base, json={"name": f"many-{subnet}", "config": {"cidr": f"10.{subnet}.0.0/16"}})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            before = missed_leases(server.api)
            t0 = time.perf_counter()
            ops = []
            for network_id in ids:
                op = owner.post(f"{base}/{network_id}/provision")
                assert op.status_code == 202, op.text
                ops.append(op.json()["id"])
            left = set(ops)
            while left:
                for op_id in list(left):
                    body = owner.get(f"/operations/{op_id}").json()
                    if body["status"] in ("succeeded", "failed"):
                        assert body["status"] == "succeeded", body
                        left.discard(op_id)
                time.sleep(0.05)
            elapsed = time.perf_counter() - t0
            missed = missed_leases(server.api) - before
            print(f"{database_url.split(':')[0]:10} {count:3d} provisionNetwork at once: all succeeded in "
                  f"{elapsed:.1f} s ({count / elapsed:.1f} operations/s), lease renewals missed: {missed:.0f}")
    finally:
        server.stop()


def bench(tmp: Path, database_url: str, rounds: int, counts: list[int]) -> None:
    moto_proc, moto = start_moto(tmp / "moto.log")
    server = ServerProcess(tmp / "node", database_url)
    server.env.update({**AWS_ENV, "SAILPLANE_AWS_ENDPOINT_URL": moto, "SAILPLANE_AWS_PRINCIPAL_ARN": PRINCIPAL,
                       "SAILPLANE_OPERATIONS_INTERVAL_SECONDS": "1", "SAILPLANE_OPERATIONS_LEASE_SECONDS": "30"})
    server.env.pop("SAILPLANE_CONTROLLER_INTERVAL_SECONDS", None)

    def customer_aws(service: str, region: str = REGION) -> Any:
        return boto3.session.Session().client(service, region_name=region, endpoint_url=moto)

    try:
        server.start()
        owner = signup(server.api)
        connection = verified(owner, customer_aws)
        role_arn = connection["providerConfig"]["roleArn"]
        external_id = connection["template"]["parameters"]["ExternalId"]
        session = boto3.session.Session()
        direct(session, moto, role_arn, external_id, "10.200.0.0/16")  # warm-up: the server's first round loads the
        through_sailplane(owner, connection["id"], "10.201.0.0/16")    # models too, so neither side counts it
        ours, theirs = [], []
        for i in range(rounds):
            ours.append(through_sailplane(owner, connection["id"], f"10.{i + 1}.0.0/16"))
            theirs.append(direct(session, moto, role_arn, external_id, f"10.{100 + i}.0.0/16")[0])
        o, t = statistics.median(ours), statistics.median(theirs)
        print(f"{database_url.split(':')[0]:10} provisionNetwork → succeeded: median {o * 1000:.0f} ms (rounds "
              f"{', '.join(f'{x * 1000:.0f}' for x in ours)}) | direct boto3: median {t * 1000:.0f} ms (rounds "
              f"{', '.join(f'{x * 1000:.0f}' for x in theirs)}) | ratio {o / t:.2f}x (target ≤ 1.5x)")
        server.stop()
        if counts:
            concurrency(tmp, database_url, moto, counts)
    finally:
        server.stop()
        try:
            cfn = boto3.session.Session().client("cloudformation", region_name=REGION, endpoint_url=moto)
            for s in cfn.list_stacks()["StackSummaries"]:
                if s["StackStatus"] != "DELETE_COMPLETE":
                    cfn.delete_stack(StackName=s["StackId"])
        finally:
            moto_proc.terminate()
            moto_proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--concurrency", default="8,32", help="operations at once, comma-separated ('' for none)")
    args = parser.parse_args()
    counts = [int(c) for c in args.concurrency.split(",") if c.strip()]
    os.environ.update(AWS_ENV)
    with tempfile.TemporaryDirectory(prefix="sailplane-ops-bench-") as tmp:
        if args.database == "sqlite":
            bench(Path(tmp), f"sqlite:///{tmp}/bench.db", args.rounds, counts)
        else:
            pg = TempPostgres()
            pg.start()
            try:
                bench(Path(tmp), pg.create_database("operations_bench"), args.rounds, counts)
            finally:
                pg.stop()


if __name__ == "__main__":
    main()
