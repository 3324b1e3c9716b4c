"""A server killed with SIGKILL while it provisions a network: the next start of the server (same node) takes the
operation up again and finishes it; one stack, the network `active`, the operation `succeeded`.

The server is a real `sailplane serve` child process against a moto server of this test's own. To kill the server
while its operation is surely in flight (moto answers in milliseconds), the moto server is paused (SIGSTOP) before
provisioning: the runner's first AWS call hangs inside the `plan` step, the server is killed there, and moto is let
go (SIGCONT) before the next start.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.infra.conftest import PRINCIPAL, REGION, moto_process
from tests.infra.helpers import verified, wait_operation
from tests.infra.kube_standin import KubeStandIn
from tests.support.actors import signup
from tests.support.databases import fresh_database
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until


@pytest.fixture
def own_moto(tmp_path: Path, kube_api: KubeStandIn, aws_credentials: None) -> Any:
    with moto_process(tmp_path, kube_api) as (proc, url):
        yield proc, url


def infra_process(data_dir: Path, database_url: str, moto: str) -> ServerProcess:
    server = ServerProcess(data_dir, database_url)
    server.env.update({"SAILPLANE_AWS_ENDPOINT_URL": moto, "SAILPLANE_AWS_PRINCIPAL_ARN": PRINCIPAL,
                       "SAILPLANE_OPERATIONS_INTERVAL_SECONDS": "0.2", "SAILPLANE_OPERATIONS_LEASE_SECONDS": "3"})
    return server


def test_a_provisioning_killed_mid_step_is_finished_by_the_next_start(tmp_path: Path, database_url: str,
                                                                        own_moto: Any) -> None:
    moto, moto_url = own_moto

    def customer_aws(service: str, region: str = REGION) -> Any:
        return boto3.session.Session().client(service, region_name=region, endpoint_url=moto_url)

    database = fresh_database(database_url, tmp_path)
    server = infra_process(tmp_path / "node", database, moto_url).start()
    try:
        owner = signup(server.api)
        conn_id = verified(owner, customer_aws)["id"]
        base = f"/infra/connections/{conn_id}/networks"
        r = owner.post(base, json={"name": "n", "config": {"cidr": "10.90.0.0/16"}})
        assert r.status_code == 201, r.text
        network = r.json()
        stack_name = network["iacState"]["stackName"]

        os.kill(moto.pid, signal.SIGSTOP)
        try:
            op = owner.post(f"{base}/{network['id']}/provision")
            assert op.status_code == 202, op.text
            op_id = op.json()["id"]

            def in_plan() -> bool:
                body = owner.get(f"/operations/{op_id}").json()
                return bool(body["status"] == "running" and body["progress"]["resources"][0]["status"] == "running")

            wait_until(in_plan, timeout=30, interval=0.05)
            server.kill()
        finally:
            os.kill(moto.pid, signal.SIGCONT)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{server.api}/operations/{op_id}", timeout=2)

        server.start()
        ended = wait_operation(owner, op_id, timeout=60)
        assert ended["status"] == "succeeded", ended
        assert [r["status"] for r in ended["progress"]["resources"]] == ["succeeded"] * 4

        summaries = customer_aws("cloudformation").list_stacks()["StackSummaries"]
        assert [s["StackStatus"] for s in summaries if s["StackName"] == stack_name] == ["CREATE_COMPLETE"]
        vpcs = customer_aws("ec2").describe_vpcs(
            Filters=[{"Name": "tag:sailplane:network", "Values": [network["id"]]}])["Vpcs"]
        assert len(vpcs) == 1
        item = owner.get(f"{base}/{network['id']}").json()["item"]
        assert item["status"] == "active" and item["providerNetworkId"] == vpcs[0]["VpcId"]
    finally:
        server.stop()
