"""The operation runner: the one owner of an operation's status and lease, and the loop that drives its steps.

    pending → running → succeeded | failed      (a step waiting on AWS stays `running`, its lease released)

Every server runs one (`OperationsRuntime`, on a loop thread of its own). Its claim tick takes due operations
(`pending`/`running`, `not_before` passed) whose lease is free or expired, each by a compare-and-set on the lease it
saw (`lease_owner`, `lease_expires_at`): of two servers claiming one row, one UPDATE matches and the other finds
nothing, so an operation is never driven by two runners at once. A renewal tick extends the leases of the operations
this runner drives every third of a lease, on a thread of its own (never queued behind steps, which may block on AWS
for their whole timeout); a renewal that comes after the lease lapsed, or an operation found taken over, is reported
(`on_lease_missed`: the operator's metric). A step's end is recorded by an UPDATE guarded by `lease_owner = us`
(with the next step index, the state it hands on and the next step shown running: one transaction from a step to the
next, all of an operation's steps in one worker thread while it goes on here), so a runner that lost its lease
records nothing. A server killed mid-step leaves its lease to expire (a restart on the same data directory takes its
own previous life's leases at once); the next claimer resumes at the recorded step, which is why steps are
idempotent (`steps`). A step waiting on AWS (`again`) records `not_before` and releases the lease: any server
continues it (this one looks again once `not_before` has passed, not at its next interval).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
# A step's `not_before` wake-up comes this much after it, so the claim it causes finds the operation due.
_WAKE_MARGIN: Final = 0.05
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
        self._timers: set[asyncio.TimerHandle] = set()  # wake-ups at the `not_before` of steps waiting on AWS
        self._stopping = False  # read by the step threads between steps

    # --- life ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._first_claim = True
        self._stopping = False
        self._leases = ThreadPoolExecutor(1, thread_name_prefix="operation-leases")
        self.renewals.start()
        self.claims.start()

    def wake(self) -> None:
        self.claims.wake()

    async def stop(self, timeout: float = 30.0) -> None:
        """Claim no more; let the steps in progress end (up to `timeout`), then give the leases back so the next
        server resumes without waiting for them to expire."""
        self._stopping = True
        await self.claims.stop()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
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
        for operation_id, held in await asyncio.to_thread(self._claim, free, on_start):
            task = asyncio.get_running_loop().create_task(self._drive(operation_id, held),
                                                          name=f"operation-{operation_id}")
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

    def _claim(self, capacity: int, on_start: bool) -> list[tuple[str, _Held | None]]:
        """Claim due operations whose lease is free; each with its step to run now, shown running by the claim's own
        UPDATE (None: `_begin_step` finds out what to do with it)."""
        now = utcnow()
        free = or_(Operation.lease_owner.is_(None), Operation.lease_expires_at.is_(None),
                   Operation.lease_expires_at < now)
        if on_start:  # our own node's previous life (killed): its leases are ours to take at once
            free = or_(free, and_(Operation.lease_owner.like(f"{self.tag}:%"), Operation.lease_owner != self.owner))
        due = or_(Operation.not_before.is_(None), Operation.not_before <= now)
        claimed: list[tuple[str, _Held | None]] = []
        with self.db.session() as db:
            rows = db.scalars(select(Operation)
                              .where(Operation.status.in_(ACTIVE), due, free, Operation.id.notin_(self.driving))
                              .order_by(Operation.id).limit(capacity)).all()
            for row in rows:
                # The lease as seen, and the row as seen (every write of its state and progress sets updated_at):
                # a runner whose lease lapsed but that recorded a step after this read leaves the row unclaimed.
                same_owner = Operation.lease_owner.is_(None) if row.lease_owner is None \
                    else Operation.lease_owner == row.lease_owner
                same_expiry = Operation.lease_expires_at.is_(None) if row.lease_expires_at is None \
                    else Operation.lease_expires_at == row.lease_expires_at
                same_row = Operation.updated_at == row.updated_at
                kind = self.kinds.get(row.operation)
                values: dict[str, Any] = {}
                held: _Held | None = None
                if kind is not None and 0 <= row.step_index < len(kind.steps):
                    held = _Held.starting(row, kind)
                    values["progress"] = held.progress
                result = db.execute(
                    update(Operation)
                    .where(Operation.id == row.id, Operation.status.in_(STATES.sources(RUNNING)), same_owner,
                           same_expiry, same_row)
                    .values(status=RUNNING, lease_owner=self.owner,
                            lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                            attempts=Operation.attempts + 1,
                            started_at=func.coalesce(Operation.started_at, now), updated_at=now, **values),
                    execution_options={"synchronize_session": False})
                db.commit()
                if result.rowcount:  # type: ignore[attr-defined]
                    claimed.append((row.id, held))
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

    async def _drive(self, operation_id: str, held: _Held | None) -> None:
        """The operation's steps one after the other in one worker thread (`_steps`), each step's end recorded
        together with the next step's start: from one step to the next is one transaction, no thread hop."""
        try:
            outcome = await asyncio.to_thread(self._steps, operation_id, held)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("operation %s: the runner failed; its lease lapses and it is resumed", operation_id)
            return
        if outcome is not None and outcome.kind == AGAIN:
            self._wake_at(outcome.delay)

    def _steps(self, operation_id: str, claimed: _Held | None) -> Outcome | None:
        """Run the operation's steps while we hold it and it goes on, from the one its claim started (else the one
        `_begin_step` finds), until the runner stops (the step in progress ends first; the next is left to whoever
        claims the operation next); the last step's outcome."""
        loaded = claimed if claimed is not None else self._begin_step(operation_id)
        if isinstance(loaded, str):
            self._lease_missed(operation_id, "taken_over")
            return None
        held, outcome = loaded, None
        while held is not None and not self._stopping:
            held, outcome = self._step(held)
        return outcome

    def _wake_at(self, delay: float) -> None:
        """A step waits on AWS (`again`): claim again once its `not_before` has passed, not up to an interval
        later (the claim is still a compare-and-set: another server may have continued it first)."""
        def fire() -> None:
            self._timers.discard(handle)
            self.wake()

        handle = asyncio.get_running_loop().call_later(delay + _WAKE_MARGIN, fire)
        self._timers.add(handle)

    def _held(self, db: Session, operation_id: str) -> Operation | None:
        row: Operation | None = db.scalar(select(Operation).where(
            Operation.id == operation_id, Operation.lease_owner == self.owner, Operation.status.in_(ACTIVE)))
        return row

    def _begin_step(self, operation_id: str) -> _Held | str | None:
        """The step to run now (marked running); "lost" when another runner holds the operation now; None when
        there is none."""
        with self.db.session() as db:
            row = self._held(db, operation_id)
            if row is None:
                ended = db.scalar(select(Operation.status).where(Operation.id == operation_id))
                return "lost" if ended in ACTIVE else None
            kind = self.kinds.get(row.operation)
            if kind is None or row.step_index >= len(kind.steps):
                log.error("operation %s: no step %s of a %s operation here", row.id, row.step_index, row.operation)
                self._end(db, row.id, FAILED, error=_error("unknown_operation",
                                                           "This server does not know how to run this operation."))
                db.commit()
                return None
            held = _Held.starting(row, kind)
            db.execute(update(Operation).where(Operation.id == row.id, Operation.lease_owner == self.owner)
                       .values(progress=held.progress, updated_at=utcnow()),
                       execution_options={"synchronize_session": False})
            db.commit()
            return held

    def _step(self, held: _Held) -> tuple[_Held | None, Outcome]:
        """Run the held step and record its end; the next step when the operation goes on here (recorded as
        running in the same UPDATE), with the step's outcome."""
        kind, index = held.kind, held.index
        ctx = StepContext(held.operation_id, held.organization_id, held.resource_type, held.resource_id,
                          dict(held.state))
        started = time.monotonic()
        try:
            outcome = kind.steps[index].run(ctx)
        except Exception:
            log.exception("operation %s: step %s raised", held.operation_id, kind.steps[index].name)
            outcome = fail("internal_error", f"The step {kind.steps[index].name} failed unexpectedly; start the "
                                             "operation again.", retryable=True)
        duration = time.monotonic() - started
        ended = outcome.kind in (DONE, FAIL) or (outcome.kind == NEXT and index + 1 >= len(kind.steps))
        if ended and kind.finished is not None:
            try:
                kind.finished(ctx, outcome)
            except Exception:
                log.exception("operation %s: recording its end on %s %s failed", held.operation_id,
                              ctx.resource_type, ctx.resource_id)
        return self._record(held, outcome, duration), outcome

    def _record(self, held: _Held, outcome: Outcome, duration: float) -> _Held | None:
        """The step's end, if we still hold the operation; the next step to run when the operation goes on.

        What the operation's row holds (its state, its progress) is what `held` says: only the runner holding the
        lease writes them, and every write is guarded by `lease_owner = us`, so no read is needed first."""
        operation_id, kind, index = held.operation_id, held.kind, held.index
        now = utcnow()
        state = {**held.state, **outcome.state}
        progress = held.progress or {"resources": []}
        message = outcome.message or kind.steps[index].description
        values: dict[str, Any] = {"state": state, "updated_at": now}
        last = index + 1 >= len(kind.steps)
        following: _Held | None = None
        with self.db.session() as db:
            if outcome.kind == NEXT and not last:
                step = kind.steps[index + 1]
                done_progress = step_progress(progress, index, SUCCEEDED_STEP, message, duration)
                # The next step starts now: marked running in the same UPDATE (its message is what it does).
                next_progress = step_progress(done_progress, index + 1, RUNNING_STEP, step.description) \
                    if held.progress else done_progress
                values.update(step_index=index + 1, progress=next_progress)
                following = _Held(operation_id, held.organization_id, held.resource_type, held.resource_id, kind,
                                  index + 1, state, next_progress if held.progress else None)
            elif outcome.kind == AGAIN:
                values.update(progress=step_progress(progress, index, RUNNING_STEP, message, duration),
                              not_before=now + timedelta(seconds=outcome.delay), lease_owner=None,
                              lease_expires_at=None)
            elif outcome.kind == FAIL:
                values.update(progress=step_progress(progress, index, FAILED_STEP, message, duration,
                                                     rest=UNCHANGED_STEP))
                self._ended(operation_id, kind, index,
                            self._end(db, operation_id, FAILED, error=_error(**(outcome.error or {})), **values))
                return None
            else:  # done, or the last step's next
                values.update(progress=step_progress(progress, index, SUCCEEDED_STEP, message, duration,
                                                     rest=UNCHANGED_STEP))
                self._ended(operation_id, kind, index,
                            self._end(db, operation_id, SUCCEEDED, result=outcome.result or {}, **values))
                return None
            result = db.execute(update(Operation)
                                .where(Operation.id == operation_id, Operation.lease_owner == self.owner,
                                       Operation.status.in_(ACTIVE)).values(**values),
                                execution_options={"synchronize_session": False})
            db.commit()
        return following if self._ended(operation_id, kind, index, bool(result.rowcount)) else None  # type: ignore[attr-defined]

    def _ended(self, operation_id: str, kind: OperationKind, index: int, recorded: bool) -> bool:
        if not recorded:
            log.warning("operation %s: lost its lease during step %s; its end is not recorded", operation_id,
                        kind.steps[index].name)
            if self.on_lease_missed is not None:
                self.on_lease_missed("taken_over")
        return recorded

    def _end(self, db: Session, operation_id: str, status: str, **values: Any) -> bool:
        """The operation's end, if we hold it, with the notification it causes (`events`, `notifications.outbox`)
        in the same transaction; commits."""
        now = utcnow()
        values = {"updated_at": now, **values, "status": status, "completed_at": now, "lease_owner": None,
                  "lease_expires_at": None, "not_before": None}
        ended = db.execute(update(Operation)
                           .where(Operation.id == operation_id, Operation.lease_owner == self.owner,
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


@dataclass(frozen=True)
class _Held:
    """An operation this runner holds, at the step it runs next: what its row says (the runner holding the lease
    is the only writer of its state and progress)."""

    operation_id: str
    organization_id: str
    resource_type: str
    resource_id: str
    kind: OperationKind
    index: int
    state: dict[str, Any]
    progress: dict[str, Any] | None

    @classmethod
    def starting(cls, row: Operation, kind: OperationKind) -> _Held:
        """The row at its recorded step, that step shown running (an operation without progress keeps none)."""
        progress = step_progress(row.progress, row.step_index, RUNNING_STEP,
                                 kind.steps[row.step_index].description) if row.progress else None
        return cls(row.id, row.organization_id, row.resource_type, row.resource_id, kind, row.step_index,
                   dict(row.state or {}), progress)


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
