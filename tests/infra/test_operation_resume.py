"""An operation whose runner died mid-way (its server was killed: the row keeps its lease and the step it was at)
is left alone while the lease holds, then resumed by a live server at the recorded step once it lapses: the steps
recorded as done are not run again, and the stack ends up updated exactly once.

The crashed runner is simulated by the row it would leave behind (written here with the server's own model);
the server that resumes it is the real one, with its real runner, against the moto server.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from sailplane.infra.connections.sync import KIND, STEPS
from sailplane.infra.connections.template import TEMPLATE_VERSION
from sailplane.infra.operations.models import Operation
from sailplane.infra.operations.steps import SUCCEEDED_STEP, initial_progress, step_progress
from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from tests.infra.helpers import as_older_version, stack_outputs, verified, wait_operation
from tests.support.actors import signup
from tests.support.server import LiveServer

DEAD_RUNNER = "0123456789abcdef:CRASHEDRUNNER"  # another node's runner, gone without giving its lease back
MARK = 12.5  # the duration the dead runner recorded for its steps: a step run again would add to it


def _crashed_operation(db: Database, connection: dict[str, Any], owner_org: str, member: str, stack_arn: str,
                       lease_left: float) -> str:
    """A sync operation as a runner killed during `update_stack` leaves it: two steps recorded done, leased."""
    operation_id = new_id()
    progress = initial_progress(operation_id, STEPS)
    for index in (0, 1):
        progress = step_progress(progress, index, SUCCEEDED_STEP, "done before the crash", MARK)
    progress = step_progress(progress, 2, "running", STEPS[2][1])
    now = utcnow()
    with db.session() as session:
        session.add(Operation(
            id=operation_id, organization_id=owner_org, member_id=member, operation=KIND, status="running",
            resource_type="connection", resource_id=connection["id"], step_index=2,
            state={"stackArn": stack_arn, "previousVersion": "0"}, progress=progress, attempts=1,
            lease_owner=DEAD_RUNNER, lease_expires_at=now + timedelta(seconds=lease_left), started_at=now,
            created_by=member, updated_by=member))
        session.commit()
    return operation_id


def test_an_operation_is_resumed_at_its_step_once_its_lease_lapses(infra_api: str, infra_server: LiveServer,
                                                                    customer_aws: Any) -> None:
    owner = signup(infra_api)
    connection = verified(owner, customer_aws, as_older_version)
    stack_name = connection["template"]["stackName"]
    stack_arn = owner.get(f"/infra/connections/{connection['id']}").json()["item"]["providerConfig"]["stackArn"]
    db = Database(infra_server.settings.database_url, pool_size=1, max_overflow=1)
    try:
        operation_id = _crashed_operation(db, connection, owner.org_id or "", owner.member_id or "", stack_arn,
                                          lease_left=2.0)

        # While the dead runner's lease holds, the live runner (claiming every 0.2 s) leaves the operation alone.
        def untouched() -> Operation:
            with db.session() as session:
                row = session.scalar(select(Operation).where(Operation.id == operation_id))
                assert row is not None
                return row

        for _ in range(8):
            row = untouched()
            if row.lease_expires_at is not None and row.lease_expires_at <= utcnow() + timedelta(seconds=0.3):
                break
            assert (row.lease_owner, row.step_index, row.attempts, row.status) == (DEAD_RUNNER, 2, 1, "running")
            time.sleep(0.25)
        assert stack_outputs(customer_aws, stack_name)["TemplateVersion"] == "0"

        ended = wait_operation(owner, operation_id, timeout=30)
        assert ended["status"] == "succeeded", ended
        assert ended["result"] == {"stackArn": stack_arn, "previousVersion": "0", "templateVersion": TEMPLATE_VERSION,
                                   "updated": True}
        resources = ended["progress"]["resources"]
        assert [r["status"] for r in resources] == ["succeeded"] * 5
        # The steps the dead runner had finished were not run again: their recorded durations are as it left them.
        assert [r["duration"] for r in resources[:2]] == [MARK, MARK]
        assert all(r["duration"] < MARK for r in resources[2:])
        final = untouched()
        assert final.attempts == 2 and final.lease_owner is None and final.step_index == 4
        assert stack_outputs(customer_aws, stack_name)["TemplateVersion"] == TEMPLATE_VERSION
        events = customer_aws("cloudformation").describe_stack_events(StackName=stack_name)["StackEvents"]
        assert sum(1 for e in events if e.get("ResourceType") == "AWS::CloudFormation::Stack"
                   and e.get("ResourceStatus") == "UPDATE_IN_PROGRESS") <= 1
        described = owner.get(f"/infra/connections/{connection['id']}").json()["item"]
        assert described["templateSyncedAt"] is not None
    finally:
        db.dispose()


def test_a_server_restarted_on_the_same_node_takes_its_own_leases_at_once(infra_api: str, infra_server: LiveServer,
                                                                         customer_aws: Any) -> None:
    """The lease of this node's previous life (same data directory, another process life) is not waited for: a
    restart resumes such an operation at once, at its step. Simulated as above; the restart is a second real
    server on the same node and database."""
    from sailplane.infra.operations.runner import node_tag
    from tests.infra.conftest import infra_settings

    owner = signup(infra_api)
    connection = verified(owner, customer_aws, as_older_version)
    stack_arn = owner.get(f"/infra/connections/{connection['id']}").json()["item"]["providerConfig"]["stackArn"]
    settings = infra_server.settings
    db = Database(settings.database_url, pool_size=1, max_overflow=1)
    try:
        operation_id = _crashed_operation(db, connection, owner.org_id or "", owner.member_id or "", stack_arn,
                                          lease_left=600.0)
        with db.session() as session:
            row = session.get(Operation, operation_id)
            assert row is not None
            row.lease_owner = f"{node_tag(str(settings.data_dir))}:PREVIOUSLIFE"
            session.commit()
        restarted = LiveServer(infra_settings(settings.data_dir, settings.database_url,
                                              settings.aws_endpoint_url))
        restarted.start()
        try:
            ended = wait_operation(owner, operation_id, timeout=30)
        finally:
            restarted.stop()
        assert ended["status"] == "succeeded", ended
        assert [r["duration"] for r in ended["progress"]["resources"][:2]] == [MARK, MARK]
    finally:
        db.dispose()
