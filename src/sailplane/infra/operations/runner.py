"""The operation runner: the one owner of an operation's status and lease, and the loop that drives its steps.

    pending → running → succeeded | failed      (a step waiting on AWS stays `running`, its lease released)

Every server runs one (`OperationsRuntime`, on a loop thread of its own). Its claim tick takes due operations
(`pending`/`running`, `not_before` passed) whose lease is free or expired, each by a compare-and-set on the lease
it saw (`lease_owner`, `lease_expires_at`): of two servers claiming one row, one UPDATE matches and the other
finds nothing, so an operation is never driven by two runners at once. A renewal tick extends the leases of the
operations this runner drives every third of a lease, on a thread of its own (never queued behind steps, which may
block on AWS for their whole timeout); a renewal that comes after the lease lapsed, or an operation found taken
over, is reported (`on_lease_missed`: the operator's metric). A step's end is recorded by an UPDATE guarded by
`lease_owner = us` (with the next step index and the state it hands on), so a runner that lost its lease records
nothing. A server killed mid-step leaves its lease to expire (a restart on the same data directory takes its own
previous life's leases at once); the next claimer resumes at the recorded step, which is why steps are idempotent
(`steps`). A step waiting on AWS (`again`) records `not_before` and releases the lease: any server continues it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from sailplane.infra.operations import events
from sailplane.infra.operations.models import Operation
from sailplane.infra.operations.steps import (
    AGAIN,
    DONE,
    FAIL,
    FAILED_STEP,
    NEXT,
    RUNNING_STEP,
    SUCCEEDED_STEP,
    UNCHANGED_STEP,
    OperationKind,
    Outcome,
    StepContext,
    fail,
    step_progress,
)
from sailplane.kit.background import PeriodicService
from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from sailplane.kit.loop_thread import LoopThread
from sailplane.kit.state_table import StateTable
from sailplane.notifications import outbox

log = logging.getLogger(__name__)

PENDING: Final = "pending"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
ACTIVE: Final = (PENDING, RUNNING)
STATES = StateTable("operations", (PENDING, RUNNING, SUCCEEDED, FAILED), {
    RUNNING: frozenset({PENDING, RUNNING}),
    SUCCEEDED: frozenset({RUNNING}),
    FAILED: frozenset({PENDING, RUNNING}),
})


def node_tag(node: str) -> str:
    """The lease owner's prefix for a node (its data directory): a restart recognises its own earlier leases."""
    return hashlib.sha256(node.encode()).hexdigest()[:16]


class OperationRunner:
    """Drives up to `max_parallel` operations at once, each on a task of its own whose steps run in threads."""

    def __init__(self, db: Database, kinds: Mapping[str, OperationKind], *, node: str, lease_seconds: float = 30.0,
                 interval: float = 1.0, max_parallel: int = 8,
                 on_lease_missed: Callable[[str], None] | None = None) -> None:
        self.db = db
        self.kinds = dict(kinds)
        self.tag = node_tag(node)
        self.owner = f"{self.tag}:{new_id()}"
        self.lease_seconds = lease_seconds
        self.max_parallel = max_parallel
        self.claims = PeriodicService("operation-claims", self._claim_tick, interval, logger=log,
                                      tick_at_start=True, backoff_limit=30.0)
        self.renewals = PeriodicService("operation-leases", self._renew_tick, max(lease_seconds / 3, 0.2),
                                        logger=log)
        self.driving: dict[str, asyncio.Task[None]] = {}
        self.renewed_at: dict[str, float] = {}  # when each driven operation's lease was last set (monotonic)
        self.on_lease_missed = on_lease_missed
        # Steps run in the loop's default executor (a few threads); leases have one of their own.
        self._leases: ThreadPoolExecutor | None = None
        self._first_claim = True

    # --- life ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._first_claim = True
        self._leases = ThreadPoolExecutor(1, thread_name_prefix="operation-leases")
        self.renewals.start()
        self.claims.start()

    def wake(self) -> None:
        self.claims.wake()

    async def stop(self, timeout: float = 30.0) -> None:
        """Claim no more; let the steps in progress end (up to `timeout`), then give the leases back so the next
        server resumes without waiting for them to expire."""
        await self.claims.stop()
        tasks = list(self.driving.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
        await self.renewals.stop()
        await asyncio.to_thread(self._release_all)
        if self._leases is not None:
            self._leases.shutdown(wait=False)

    # --- claiming and leases ------------------------------------------------------------------------------

    async def _claim_tick(self) -> None:
        free = self.max_parallel - len(self.driving)
        if free <= 0:
            return
        on_start, self._first_claim = self._first_claim, False
        claimed_at = time.monotonic()
        for operation_id in await asyncio.to_thread(self._claim, free, on_start):
            task = asyncio.get_running_loop().create_task(self._drive(operation_id), name=f"operation-{operation_id}")
            self.driving[operation_id] = task
            self.renewed_at[operation_id] = claimed_at
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for operation_id, held in list(self.driving.items()):
            if held is task:
                del self.driving[operation_id]
                self.renewed_at.pop(operation_id, None)

    def _lease_missed(self, operation_id: str, reason: str) -> None:
        log.warning("operation %s: lease %s", operation_id, "renewed after it had lapsed" if reason == "late"
                    else "taken over by another runner")
        if self.on_lease_missed is not None:
            self.on_lease_missed(reason)

    def _claim(self, capacity: int, on_start: bool) -> list[str]:
        now = utcnow()
        free = or_(Operation.lease_owner.is_(None), Operation.lease_expires_at.is_(None),
                   Operation.lease_expires_at < now)
        if on_start:  # our own node's previous life (killed): its leases are ours to take at once
            free = or_(free, and_(Operation.lease_owner.like(f"{self.tag}:%"), Operation.lease_owner != self.owner))
        due = or_(Operation.not_before.is_(None), Operation.not_before <= now)
        claimed: list[str] = []
        with self.db.session() as db:
            rows = db.execute(select(Operation.id, Operation.lease_owner, Operation.lease_expires_at)
                              .where(Operation.status.in_(ACTIVE), due, free, Operation.id.notin_(self.driving))
                              .order_by(Operation.id).limit(capacity)).all()
            for row in rows:
                same_owner = Operation.lease_owner.is_(None) if row.lease_owner is None \
                    else Operation.lease_owner == row.lease_owner
                same_expiry = Operation.lease_expires_at.is_(None) if row.lease_expires_at is None \
                    else Operation.lease_expires_at == row.lease_expires_at
                result = db.execute(
                    update(Operation)
                    .where(Operation.id == row.id, Operation.status.in_(STATES.sources(RUNNING)), same_owner,
                           same_expiry)
                    .values(status=RUNNING, lease_owner=self.owner,
                            lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                            attempts=Operation.attempts + 1,
                            started_at=func.coalesce(Operation.started_at, now), updated_at=now),
                    execution_options={"synchronize_session": False})
                db.commit()
                if result.rowcount:  # type: ignore[attr-defined]
                    claimed.append(row.id)
                    if row.lease_owner is not None:
                        log.info("operation %s: resuming after its runner %s stopped holding it", row.id,
                                 row.lease_owner)
        return claimed

    async def _renew_tick(self) -> None:
        if not self.driving:
            return
        operation_ids = list(self.driving)
        started = time.monotonic()
        renewed = await asyncio.get_running_loop().run_in_executor(self._leases, self._renew, operation_ids)
        for operation_id in renewed:
            last = self.renewed_at.get(operation_id)
            if last is not None and started - last > self.lease_seconds:
                self._lease_missed(operation_id, "late")
            if operation_id in self.renewed_at:
                self.renewed_at[operation_id] = started

    def _renew(self, operation_ids: list[str]) -> set[str]:
        """Extend the leases this runner still holds; those it renewed."""
        now = utcnow()
        with self.db.session() as db:
            renewed = db.scalars(update(Operation)
                                 .where(Operation.id.in_(operation_ids), Operation.lease_owner == self.owner,
                                        Operation.status.in_(ACTIVE))
                                 .values(lease_expires_at=now + timedelta(seconds=self.lease_seconds))
                                 .returning(Operation.id),
                                 execution_options={"synchronize_session": False}).all()
            db.commit()
        return set(renewed)

    def _release_all(self) -> None:
        with self.db.session() as db:
            db.execute(update(Operation).where(Operation.lease_owner == self.owner)
                       .values(lease_owner=None, lease_expires_at=None),
                       execution_options={"synchronize_session": False})
            db.commit()

    # --- driving one operation ----------------------------------------------------------------------------

    async def _drive(self, operation_id: str) -> None:
        try:
            while await self._one_step(operation_id):
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("operation %s: the runner failed; its lease lapses and it is resumed", operation_id)

    def _held(self, db: Session, operation_id: str) -> Operation | None:
        row: Operation | None = db.scalar(select(Operation).where(
            Operation.id == operation_id, Operation.lease_owner == self.owner, Operation.status.in_(ACTIVE)))
        return row

    async def _one_step(self, operation_id: str) -> bool:
        """Run the recorded step and record its end; whether to go on with the next one."""
        loaded = await asyncio.to_thread(self._begin_step, operation_id)
        if loaded is None:
            return False
        if isinstance(loaded, str):
            self._lease_missed(operation_id, "taken_over")
            return False
        kind, index, ctx = loaded
        started = time.monotonic()
        try:
            outcome = await asyncio.to_thread(kind.steps[index].run, ctx)
        except Exception:
            log.exception("operation %s: step %s raised", operation_id, kind.steps[index].name)
            outcome = fail("internal_error", f"The step {kind.steps[index].name} failed unexpectedly; start the "
                                             "operation again.", retryable=True)
        duration = time.monotonic() - started
        ended = outcome.kind in (DONE, FAIL) or (outcome.kind == NEXT and index + 1 >= len(kind.steps))
        if ended and kind.finished is not None:
            try:
                await asyncio.to_thread(kind.finished, ctx, outcome)
            except Exception:
                log.exception("operation %s: recording its end on %s %s failed", operation_id,
                              ctx.resource_type, ctx.resource_id)
        recorded = await asyncio.to_thread(self._record, operation_id, kind, index, outcome, duration)
        return recorded and outcome.kind == NEXT and index + 1 < len(kind.steps)

    def _begin_step(self, operation_id: str) -> tuple[OperationKind, int, StepContext] | str | None:
        """The step to run now; "lost" when another runner holds the operation now; None when there is none."""
        with self.db.session() as db:
            row = self._held(db, operation_id)
            if row is None:
                ended = db.scalar(select(Operation.status).where(Operation.id == operation_id))
                return "lost" if ended in ACTIVE else None
            kind = self.kinds.get(row.operation)
            if kind is None or row.step_index >= len(kind.steps):
                log.error("operation %s: no step %s of a %s operation here", row.id, row.step_index, row.operation)
                self._end(db, row, FAILED, error=_error("unknown_operation",
                                                        "This server does not know how to run this operation."))
                db.commit()
                return None
            step = kind.steps[row.step_index]
            progress = step_progress(row.progress or {"resources": []}, row.step_index, RUNNING_STEP,
                                     step.description) if row.progress else None
            db.execute(update(Operation).where(Operation.id == row.id, Operation.lease_owner == self.owner)
                       .values(progress=progress, updated_at=utcnow()),
                       execution_options={"synchronize_session": False})
            db.commit()
            ctx = StepContext(row.id, row.organization_id, row.resource_type, row.resource_id, dict(row.state or {}))
            return kind, row.step_index, ctx

    def _record(self, operation_id: str, kind: OperationKind, index: int, outcome: Outcome, duration: float) -> bool:
        """The step's end, if we still hold the operation: whether it was recorded."""
        now = utcnow()
        with self.db.session() as db:
            row = self._held(db, operation_id)
            if row is None:
                log.warning("operation %s: lost its lease during step %s; its end is not recorded", operation_id,
                            kind.steps[index].name)
                if self.on_lease_missed is not None:
                    self.on_lease_missed("taken_over")
                return False
            state = {**(row.state or {}), **outcome.state}
            progress = row.progress or {"resources": []}
            message = outcome.message or kind.steps[index].description
            values: dict[str, Any] = {"state": state, "updated_at": now}
            last = index + 1 >= len(kind.steps)
            if outcome.kind == NEXT and not last:
                values.update(step_index=index + 1,
                              progress=step_progress(progress, index, SUCCEEDED_STEP, message, duration))
            elif outcome.kind == AGAIN:
                values.update(progress=step_progress(progress, index, RUNNING_STEP, message, duration),
                              not_before=now + timedelta(seconds=outcome.delay), lease_owner=None,
                              lease_expires_at=None)
            elif outcome.kind == FAIL:
                values.update(progress=step_progress(progress, index, FAILED_STEP, message, duration,
                                                     rest=UNCHANGED_STEP))
                return self._end(db, row, FAILED, error=_error(**(outcome.error or {})), **values)
            else:  # done, or the last step's next
                values.update(progress=step_progress(progress, index, SUCCEEDED_STEP, message, duration,
                                                     rest=UNCHANGED_STEP))
                return self._end(db, row, SUCCEEDED, result=outcome.result or {}, **values)
            result = db.execute(update(Operation)
                                .where(Operation.id == operation_id, Operation.lease_owner == self.owner,
                                       Operation.status.in_(ACTIVE)).values(**values),
                                execution_options={"synchronize_session": False})
            db.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def _end(self, db: Session, row: Operation, status: str, **values: Any) -> bool:
        """The operation's end, if we hold it, with the notification it causes (`events`, `notifications.outbox`)
        in the same transaction; commits."""
        now = utcnow()
        values = {"updated_at": now, **values, "status": status, "completed_at": now, "lease_owner": None,
                  "lease_expires_at": None, "not_before": None}
        ended = db.execute(update(Operation)
                           .where(Operation.id == row.id, Operation.lease_owner == self.owner,
                                  Operation.status.in_(STATES.sources(status)))
                           .values(**values)
                           .returning(Operation.id, Operation.organization_id, Operation.member_id,
                                      Operation.operation, Operation.resource_type, Operation.resource_id,
                                      Operation.status, Operation.error),
                           execution_options={"synchronize_session": False}).all()
        if ended:
            outbox.record(db, [events.operation_ended(e, now) for e in ended], now)
        db.commit()
        return bool(ended)


def _error(code: str = "operation_failed", message: str = "The operation failed.", causedBy: str | None = None,  # noqa: N803
           retryable: bool = False) -> dict[str, Any]:
    """The one error shape (kit.errors), as getOperation shows a failed operation's `error`."""
    return {"code": code, "message": message, "errorType": "internal" if code == "internal_error" else "operation",
            "details": {"retryable": retryable, "retryAfter": None, "fieldErrors": {}, "requestId": None,
                        "causedBy": causedBy}}


class OperationsRuntime:
    """The runner on an event loop of its own, started and stopped by the app factory."""

    def __init__(self, db: Database, kinds: Mapping[str, OperationKind], *, node: str, lease_seconds: float,
                 interval: float, max_parallel: int = 8,
                 on_lease_missed: Callable[[str], None] | None = None) -> None:
        self.runner = OperationRunner(db, kinds, node=node, lease_seconds=lease_seconds, interval=interval,
                                      max_parallel=max_parallel, on_lease_missed=on_lease_missed)
        self._thread = LoopThread("operations")
        self._started = False

    def start(self) -> None:
        self._thread.start()
        self._thread.run(self.runner.start(), timeout=30)
        self._started = True

    def notify(self) -> None:
        """An operation was created: look now (thread-safe)."""
        if self._started:
            self._thread.call_soon(self.runner.wake)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self._thread.run(self.runner.stop(), timeout=60)
        except Exception:
            log.exception("stopping the operation runner failed")
        finally:
            self._thread.stop()
