"""A step waiting on AWS (`again`) is run again once its wait is over, not at the runner's next look for work; a busy
stack is described again soon at first and less often the longer it stays busy.

The runner is the real one (`OperationRunner`) on a real database; the operation is of a kind this test defines (a
step that waits once), because the moto server settles every stack at once: no real step waits there.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from sailplane.infra import stacks
from sailplane.infra.operations.models import Operation
from sailplane.infra.operations.runner import OperationRunner
from sailplane.infra.operations.steps import (
    AGAIN,
    OperationKind,
    Outcome,
    Step,
    StepContext,
    again,
    initial_progress,
    next_step,
)
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from sailplane.tenancy.org.models import Organization

INTERVAL = 60.0  # the runner's own look for work: far longer than any wait below


def waits_once(delay: float) -> OperationKind:
    """A first step that waits `delay` seconds once (as a step does while CloudFormation works), then a second."""
    def wait(ctx: StepContext) -> Outcome:
        if ctx.state.get("waited"):
            return next_step("Waited.")
        return again(delay, "The stack is CREATE_IN_PROGRESS.", waited=True)

    return OperationKind("test_wait", (Step("wait", "Wait for the stack", wait),
                                       Step("record", "Record", lambda ctx: next_step("Recorded."))))


def pending_operation(db: Database) -> str:
    op_id = new_id()
    with db.session() as session:
        org = Organization(id=new_id(), name="Waits")
        session.add(org)
        session.flush()
        session.add(Operation(id=op_id, organization_id=org.id, operation="test_wait", status="pending",
                              resource_type="test", resource_id=op_id,
                              progress=initial_progress(op_id, (("wait", "Wait"), ("record", "Record")))))
        session.commit()
    return op_id


def test_a_waiting_step_runs_again_when_its_wait_is_over(db: Database) -> None:
    """The step asks to be run again in 0.3 s: the operation succeeds within seconds, though the runner looks for
    work only every minute (it did at its start, when it claimed the operation)."""
    op_id = pending_operation(db)
    runner = OperationRunner(db, {"test_wait": waits_once(0.3)}, node="waits-test", interval=INTERVAL)
    ended: dict[str, Any] = {}

    async def main() -> None:
        await runner.start()
        try:
            deadline = time.monotonic() + 15  # a quarter of the interval: only a wake at the wait's end gets here
            while time.monotonic() < deadline:
                with db.session() as session:
                    row = session.scalar(select(Operation).where(Operation.id == op_id))
                    assert row is not None
                    if row.status not in ("pending", "running"):
                        ended.update(status=row.status, attempts=row.attempts,
                                     steps=[r["status"] for r in row.progress["resources"]])
                        return
                await asyncio.sleep(0.05)
        finally:
            await runner.stop(timeout=30)

    asyncio.run(main())
    assert ended == {"status": "succeeded", "attempts": 2, "steps": ["succeeded", "succeeded"]}, ended


def stack(status: str, **times: datetime) -> dict[str, Any]:
    return {"StackName": "s", "StackStatus": status, **times}


def test_a_busy_stack_is_described_again_soon_at_first_then_less_often() -> None:
    now = datetime.now(UTC)
    assert stacks.wait(stack("CREATE_COMPLETE", CreationTime=now)) is None
    just_started = stacks.wait(stack("CREATE_IN_PROGRESS", CreationTime=now))
    assert just_started is not None and just_started.kind == AGAIN
    assert just_started.delay == stacks.FIRST_POLL_SECONDS
    # The time since CloudFormation last started on it: an update's, a delete's, not the stack's creation.
    assert stacks.poll_delay(stack("UPDATE_IN_PROGRESS", CreationTime=now - timedelta(days=3),
                                   LastUpdatedTime=now - timedelta(seconds=4)), now=now) == pytest.approx(1.0)
    assert stacks.poll_delay(stack("DELETE_IN_PROGRESS", CreationTime=now - timedelta(days=3),
                                   DeletionTime=now - timedelta(seconds=8)), now=now) == pytest.approx(2.0)
    assert stacks.poll_delay(stack("CREATE_IN_PROGRESS", CreationTime=now - timedelta(minutes=10)),
                             now=now) == stacks.POLL_SECONDS
    assert stacks.poll_delay(stack("CREATE_IN_PROGRESS", CreationTime=now - timedelta(minutes=10)), 15.0,
                             now=now) == 15.0
    # Without a time to go by (or AWS's clock ahead of ours): within the bounds all the same.
    assert stacks.poll_delay(stack("CREATE_IN_PROGRESS")) == stacks.POLL_SECONDS
    assert stacks.poll_delay(stack("CREATE_IN_PROGRESS", CreationTime=now + timedelta(minutes=1)),
                             now=now) == stacks.FIRST_POLL_SECONDS
