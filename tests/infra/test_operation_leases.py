"""The operation runner's leases under load: steps that block (an AWS call waiting out its timeout) fill the threads
steps run in, yet the leases of every operation the runner drives are renewed on time, so no other server takes them
over; a lease found taken over is counted for the operator.

The runner is the real one (`OperationRunner`) on a real database; the operations are of a kind this test defines
(a step that sleeps), because no real AWS call can be made to block for a chosen time on the moto server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from sailplane.infra.operations.models import Operation
from sailplane.infra.operations.runner import OperationRunner
from sailplane.infra.operations.steps import OperationKind, Outcome, Step, StepContext, initial_progress, next_step
from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from sailplane.tenancy.org.models import Organization

LEASE = 1.5


def blocking_kind(seconds: float) -> OperationKind:
    def block(ctx: StepContext) -> Outcome:
        time.sleep(seconds)
        return next_step("Slept.")

    return OperationKind("test_block", (Step("block", "Sleep like a slow AWS call", block),
                                        Step("again", "Sleep once more", block)))


def pending_operations(db: Database, count: int) -> list[str]:
    ids = [new_id() for _ in range(count)]
    with db.session() as session:
        org = Organization(id=new_id(), name="Leases")
        session.add(org)
        session.flush()
        steps = tuple((step.name, step.description) for step in blocking_kind(0).steps)
        session.add_all(Operation(id=i, organization_id=org.id, operation="test_block", status="pending",
                                  resource_type="test", resource_id=i, progress=initial_progress(i, steps))
                        for i in ids)
        session.commit()
    return ids


def statuses(db: Database, ids: list[str]) -> dict[str, str]:
    with db.session() as session:
        return dict(session.execute(select(Operation.id, Operation.status).where(Operation.id.in_(ids))).all())


def run_loop(runner: OperationRunner, until: float) -> None:
    async def main() -> None:
        await runner.start()
        try:
            await asyncio.sleep(until)
        finally:
            await runner.stop(timeout=30)

    asyncio.run(main())


def test_blocked_steps_do_not_delay_lease_renewals(db: Database) -> None:
    """More operations than step threads, each step blocking longer than a lease: without a lease thread of its own
    the renewals wait behind the steps and come after the leases lapsed (which another server would take)."""
    ids = pending_operations(db, 16)
    missed: list[str] = []
    runner = OperationRunner(db, {"test_block": blocking_kind(LEASE * 1.4)}, node="leases-test", lease_seconds=LEASE,
                             interval=0.2, max_parallel=16, on_lease_missed=missed.append)
    run_loop(runner, until=LEASE * 8)
    assert missed == []
    assert set(statuses(db, ids).values()) == {"succeeded"}


def test_a_lease_taken_over_is_counted(db: Database) -> None:
    """Another server's claim of an operation this runner drives (its lease had lapsed there) is found at the step's
    end: nothing is recorded by this runner, and the loss is reported."""
    [op_id] = pending_operations(db, 1)
    missed: list[str] = []
    runner = OperationRunner(db, {"test_block": blocking_kind(1.0)}, node="leases-test", lease_seconds=30.0,
                             interval=0.2, on_lease_missed=missed.append)

    def take_over() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with db.session() as session:
                taken = session.execute(update(Operation).where(Operation.id == op_id,
                                                                Operation.lease_owner.is_not(None))
                                        .values(lease_owner="other-server:x",
                                                lease_expires_at=utcnow() + timedelta(seconds=60)))
                session.commit()
                if taken.rowcount:  # type: ignore[attr-defined]
                    return
            time.sleep(0.05)

    thief = threading.Thread(target=take_over)
    thief.start()
    run_loop(runner, until=3.0)
    thief.join()
    assert missed == ["taken_over"]
    with db.session() as session:
        row = session.scalar(select(Operation).where(Operation.id == op_id))
        assert row is not None and row.lease_owner == "other-server:x" and row.step_index == 0
