"""A provisioning operation whose runner died after CreateStack was sent but before the step's end was recorded
(its server was killed: the row keeps its lease and the step it was at) is resumed by a live server once the lease
lapses, at that step: the stack the dead runner created is found by its name (`iacState.stackName`) and not created
again, and the network ends active with the stack's outputs.

The crashed runner is simulated by what it leaves behind: the operation row (written with the server's own model)
and the stack it had created in the customer's account (created here with the template the step would send). The
server that resumes it is the real one, with its real runner, against the moto server.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from sailplane.infra.networks.models import Network
from sailplane.infra.networks.service import PROVISION, PROVISION_STEPS
from sailplane.infra.networks.template import template
from sailplane.infra.operations.models import Operation
from sailplane.infra.operations.steps import SUCCEEDED_STEP, initial_progress, step_progress
from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from tests.infra.conftest import REGION
from tests.infra.helpers import verified, wait_operation
from tests.support.actors import signup
from tests.support.server import LiveServer

DEAD_RUNNER = "0123456789abcdef:CRASHEDRUNNER"
MARK = 12.5  # the duration the dead runner recorded for `plan`: a step run again would add to it
ZONES = [f"{REGION}a", f"{REGION}b"]


def test_a_provisioning_resumes_at_its_step_without_a_second_stack(infra_api: str, infra_server: LiveServer,
                                                                   customer_aws: Any) -> None:
    owner = signup(infra_api)
    conn_id = verified(owner, customer_aws)["id"]
    r = owner.post(f"/infra/connections/{conn_id}/networks", json={"name": "n", "config": {"cidr": "10.80.0.0/16"}})
    assert r.status_code == 201, r.text
    network = r.json()
    stack_name = network["iacState"]["stackName"]
    # What the dead runner did in `create_stack` before it was killed: the stack exists in the account.
    cfn = customer_aws("cloudformation")
    cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(template(network["id"], "10.80.0.0/16", ZONES)))

    db = Database(infra_server.settings.database_url, pool_size=1, max_overflow=1)
    try:
        operation_id = new_id()
        progress = step_progress(initial_progress(operation_id, PROVISION_STEPS), 0, SUCCEEDED_STEP,
                                 "done before the crash", MARK)
        progress = step_progress(progress, 1, "running", PROVISION_STEPS[1][1])
        now = utcnow()
        with db.session() as session:
            row = session.scalar(select(Network).where(Network.id == network["id"]))
            assert row is not None
            row.status = "provisioning"  # as provisionNetwork left it
            session.add(Operation(
                id=operation_id, organization_id=owner.org_id, member_id=owner.member_id, operation=PROVISION,
                status="running", resource_type="network", resource_id=network["id"], step_index=1,
                state={"stackName": stack_name, "zones": ZONES}, progress=progress, attempts=1,
                lease_owner=DEAD_RUNNER, lease_expires_at=now + timedelta(seconds=1.5), started_at=now,
                created_by=owner.member_id, updated_by=owner.member_id))
            session.commit()

        ended = wait_operation(owner, operation_id, timeout=30)
        assert ended["status"] == "succeeded", ended
        resources = ended["progress"]["resources"]
        assert [r["status"] for r in resources] == ["succeeded"] * 4
        assert resources[0]["duration"] == MARK  # plan was not run again
        with db.session() as session:
            final = session.scalar(select(Operation).where(Operation.id == operation_id))
            assert final is not None and final.attempts == 2 and final.lease_owner is None

        # One stack of that name, one VPC of the network: the one the dead runner had created.
        summaries = cfn.list_stacks()["StackSummaries"]
        assert [s["StackStatus"] for s in summaries if s["StackName"] == stack_name] == ["CREATE_COMPLETE"]
        vpcs = customer_aws("ec2").describe_vpcs(
            Filters=[{"Name": "tag:sailplane:network", "Values": [network["id"]]}])["Vpcs"]
        assert len(vpcs) == 1
        item = owner.get(f"/infra/connections/{conn_id}/networks/{network['id']}").json()["item"]
        assert item["status"] == "active" and item["providerNetworkId"] == vpcs[0]["VpcId"]
        assert item["iacOutputs"]["AvailabilityZones"] == ",".join(ZONES)
    finally:
        db.dispose()
