"""Job-run states: the values, the named sets, the transitions allowed between them, and the one
compare-and-set that changes a run's status.

Several writers change a run concurrently (the API, the scheduler, a dispatcher in each server
process), so a status is never written blindly: every change is `UPDATE ... WHERE id = ? AND
status IN (<states it may come from>)`, and the caller learns whether it happened. Keeping the
table and that statement here means no writer can move a run along an edge the table lacks
(a succeeded run never runs again, a cancelled one is never requeued by a dispatcher).

    pending → ready → dispatched → (waiting_for_sail →) running → succeeded | failed | timeout | cancelled
    pending, ready → cancelled                      (a user, the scheduler; never dispatched)
    dispatched, waiting_for_sail, running → ready   (automatic retry, graceful stop, recovery)
    failed, timeout, cancelled → pending | ready    (a user's retry)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from sailplane.kit.clock import utcnow
from sailplane.notifications import outbox
from sailplane.workloads.runs import events
from sailplane.workloads.runs.models import JobRun

PENDING: Final = "pending"  # held: waits for a user's release or for its upstream jobs
READY: Final = "ready"
DISPATCHED: Final = "dispatched"
WAITING_FOR_SAIL: Final = "waiting_for_sail"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
TIMEOUT: Final = "timeout"
CANCELLED: Final = "cancelled"

# Never claimed by a dispatcher: no process and no Sail instance exist for the run.
UNCLAIMED_STATES: Final = (PENDING, READY)
# A dispatcher holds the run's lease: a process or a Sail instance may exist for it.
LEASED_STATES: Final = (DISPATCHED, WAITING_FOR_SAIL, RUNNING)
# Runs that occupy one of their job's maxConcurrentRuns places once a dispatcher may take them.
BUSY_STATES: Final = (READY, *LEASED_STATES)
ACTIVE_STATES: Final = (*UNCLAIMED_STATES, *LEASED_STATES)
TERMINAL_STATES: Final = (SUCCEEDED, FAILED, TIMEOUT, CANCELLED)
# Ended without success: a user may retry such a run; a downstream run waiting for it is cancelled.
UNSUCCESSFUL_STATES: Final = (FAILED, TIMEOUT, CANCELLED)
RUN_STATES: Final = (*ACTIVE_STATES, *TERMINAL_STATES)  # a new run starts pending (held) or ready

RETRY_TRIGGER: Final = "retry"  # the trigger of a run once it was retried (by a user or automatically)

# target state → the states a run may reach it from.
TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    PENDING: frozenset(UNSUCCESSFUL_STATES),  # a user's retry with hold
    READY: frozenset((PENDING, *LEASED_STATES, *UNSUCCESSFUL_STATES)),  # release; requeue/retry; a user's retry
    DISPATCHED: frozenset((READY,)),  # a dispatcher's claim
    WAITING_FOR_SAIL: frozenset((DISPATCHED,)),
    RUNNING: frozenset((DISPATCHED, WAITING_FOR_SAIL)),
    SUCCEEDED: frozenset(LEASED_STATES),
    FAILED: frozenset(LEASED_STATES),
    TIMEOUT: frozenset(LEASED_STATES),
    CANCELLED: frozenset(ACTIVE_STATES),
}

# The previous attempt's timestamps, results and lease, cleared when a run goes back to the queue.
_ATTEMPT_FIELDS: Final = ("dispatched_at", "finished_at", "runner_started_at", "runner_completed_at",
                          "runner_execution_time_us", "output_path", "cleaned_at", "lease_owner", "lease_expires_at",
                          "pid", "instance_id")


def allowed(source: str, target: str) -> bool:
    """Whether the table has the edge source → target."""
    return source in TRANSITIONS.get(target, frozenset())


def attempt_reset(*, message: str | None, next_attempt: Any = None,
                  not_before: datetime | None = None) -> dict[str, Any]:
    """The values that put a run back in the queue with nothing of its previous attempt: a retry
    (`next_attempt` given: attempt and trigger `retry`) or a requeue (same attempt). `not_before`
    is the retry's backoff (a ready run holds no lease, so `lease_expires_at` carries it)."""
    values: dict[str, Any] = dict.fromkeys(_ATTEMPT_FIELDS)
    values.update(status_message=message, lease_expires_at=not_before)
    if next_attempt is not None:
        values.update(attempt=next_attempt, trigger=RETRY_TRIGGER)
    return values


def transition(db: Session, run_id: str | Sequence[str], target: str, *, source: Sequence[str] | None = None,
               values: Mapping[str, Any] | None = None, where: Sequence[ColumnElement[bool]] = (),
               now: datetime | None = None) -> int:
    """Move the run(s) to `target`, only from `source` (default: every state the table allows) and
    only while the extra conditions `where` hold; the number of runs changed (0: it did not happen).

    Sets `updated_at`, `dispatched_at` on a claim and `finished_at` on an end (all `now`), then
    `values`. An end also records the notifications it causes (`notifications.outbox`, one delivery per
    matching rule and channel) in the same transaction. Does not commit; ORM objects of the session are
    not refreshed. A `source` outside the table is a programming error (ValueError)."""
    allowed_from = TRANSITIONS[target]
    if source is None:
        source = tuple(sorted(allowed_from))
    elif not allowed_from.issuperset(source):
        raise ValueError(f"job runs cannot go from {sorted(set(source) - allowed_from)} to {target}")
    now = now or utcnow()
    stamps: dict[str, Any] = {"status": target, "updated_at": now}
    if target == DISPATCHED:
        stamps["dispatched_at"] = now
    elif target in TERMINAL_STATES:
        stamps["finished_at"] = now
    ids = JobRun.id == run_id if isinstance(run_id, str) else JobRun.id.in_(run_id)
    status = JobRun.status == source[0] if len(source) == 1 else JobRun.status.in_(source)
    stmt = update(JobRun).where(ids, status, *where).values({**stamps, **(values or {})})
    if target in TERMINAL_STATES:
        ended = db.execute(stmt.returning(JobRun.id, JobRun.organization_id, JobRun.job_id, JobRun.attempt,
                                          JobRun.status_message),
                           execution_options={"synchronize_session": False}).all()
        if ended:
            outbox.record(db, events.run_ended(db, ended, target, now), now)
        return len(ended)
    result = db.execute(stmt, execution_options={"synchronize_session": False})
    return int(result.rowcount)  # type: ignore[attr-defined]
