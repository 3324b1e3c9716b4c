"""Session states: the values, the named sets, the transitions allowed between them, and the one
compare-and-set that changes a session's status.

A session's status is changed by the API (close), by access changes (revocation closes it) and by
the controller of its node (first call, idle, idle close, max duration, a failed Sail server),
possibly at the same moment; so a status is never written blindly but by `UPDATE ... WHERE id = ?
AND status IN (<states it may come from>)`, and terminal states never change again.

    pending → active ⇄ idle          (calls, idle timeout; a pending session may also go idle)
    pending, active, idle → closed | failed
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, Table, bindparam, or_, update
from sqlalchemy.orm import Session

from sailplane.kit.clock import utcnow
from sailplane.kit.state_table import StateTable
from sailplane.notifications import outbox
from sailplane.workloads import session_events
from sailplane.workloads.models import InteractiveSession

PENDING: Final = "pending"  # seeded; stays pending until its first call
ACTIVE: Final = "active"
IDLE: Final = "idle"
CLOSED: Final = "closed"
FAILED: Final = "failed"

# Open sessions can still be used; terminal ones never change again.
OPEN_STATES: Final = (PENDING, ACTIVE, IDLE)
TERMINAL_STATES: Final = (CLOSED, FAILED)
SESSION_STATES: Final = (*OPEN_STATES, *TERMINAL_STATES)

# target state → the states a session may reach it from.
TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    ACTIVE: frozenset(OPEN_STATES),  # a call (active → active records the call's time)
    IDLE: frozenset((PENDING, ACTIVE)),
    CLOSED: frozenset(OPEN_STATES),
    FAILED: frozenset(OPEN_STATES),
}

TABLE: Final = StateTable("sessions", SESSION_STATES, TRANSITIONS)
allowed = TABLE.allowed


def _stamps(target: str, now: datetime) -> dict[str, Any]:
    """The fields that go with reaching `target`."""
    stamps: dict[str, Any] = {"status": target, "updated_at": now}
    if target == ACTIVE:
        stamps["idle_since"] = None
    elif target == IDLE:
        stamps["idle_since"] = now
    elif target in TERMINAL_STATES:
        stamps["closed_at"] = now
    return stamps


def transition(db: Session, session_id: str, target: str, *, source: Sequence[str] | None = None,
               values: Mapping[str, Any] | None = None, where: Sequence[ColumnElement[bool]] = (),
               now: datetime | None = None, synchronize: bool = True) -> bool:
    """Move the session to `target`, only from `source` (default: every state the table allows)
    and while `where` holds; whether it happened. Sets `updated_at` and the fields of the target
    (`idle_since`, `closed_at`), then `values`. An end also records the notifications it causes (a failure, a
    timeout's close: `session_events`, `notifications.outbox`) in the same transaction. Does not commit;
    `synchronize` updates the session's object in `db` (SQLAlchemy's default), if loaded. A `source` outside
    the table is a programming error (ValueError)."""
    source = TABLE.sources(target, source)
    stmt = update(InteractiveSession).where(InteractiveSession.id == session_id,
                                            InteractiveSession.status.in_(source), *where)
    now = now or utcnow()
    stmt = stmt.values({**_stamps(target, now), **(values or {})})
    options = {} if synchronize else {"synchronize_session": False}
    if target in TERMINAL_STATES:
        ended = db.execute(stmt.returning(
            InteractiveSession.id, InteractiveSession.organization_id, InteractiveSession.team_id,
            InteractiveSession.member_id, InteractiveSession.name, InteractiveSession.termination_reason,
            InteractiveSession.status_message), execution_options=options).all()
        if ended:
            outbox.record(db, session_events.session_ended(ended, target, now), now)
        return bool(ended)
    result = db.execute(stmt, execution_options=options)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def transition_each(db: Session, params: list[dict[str, Any]], target: str, *,
                    source: Sequence[str] | None = None, values: Mapping[str, Any] | None = None,
                    now: datetime | None = None) -> None:
    """`transition` of many sessions in one executemany: each of `params` has the session's ID as
    `b_id` and the bound parameters `values` uses (bindparam). Core, not ORM: objects are not
    synchronized. Not for ends (they record notifications: `transition`)."""
    if target in TERMINAL_STATES:
        raise ValueError(f"sessions end one by one through transition, not transition_each ({target})")
    source = TABLE.sources(target, source)
    table = cast(Table, InteractiveSession.__table__)
    # Not status.in_(...): an expanding IN cannot be used with executemany.
    stmt = update(table).where(table.c.id == bindparam("b_id"), or_(*(table.c.status == s for s in source)))
    db.execute(stmt.values({**_stamps(target, now or utcnow()), **(values or {})}), params)
