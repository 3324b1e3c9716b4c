"""Notebook states: the values, the transitions allowed between them, and the one compare-and-set
that changes a notebook's status.

The API (start, stop, update) and, later, the notebook controller (readiness, activity, timeouts,
failures) change a notebook's status concurrently, so a status is never written blindly but by
`UPDATE ... WHERE id = ? AND status IN (<states it may come from>)`.

    stopped → starting → running ⇄ idle, detached      (start; activity, no browser)
    running, idle, detached → stopping → stopped       (stop, timeouts)
    starting, running, idle, detached, stopping → failed; failed → starting (start again)

A new notebook is `stopped` (the only state records reach until start/stop exist).

A notebook is driven by the controller of its `node`. `hand_over()` moves it to another node, with the
same kind of compare-and-set: how a node that is up takes over the stop of a notebook whose node is down
(`controller.NotebookController`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.orm import Session

from sailplane.kit.clock import utcnow
from sailplane.kit.state_table import StateTable
from sailplane.notifications import outbox
from sailplane.workloads.notebooks import events
from sailplane.workloads.notebooks.models import Notebook

STOPPED: Final = "stopped"
STARTING: Final = "starting"
RUNNING: Final = "running"
IDLE: Final = "idle"
DETACHED: Final = "detached"
STOPPING: Final = "stopping"
FAILED: Final = "failed"

# A marimo server and a Sail session exist (or are being made) for the notebook.
LIVE_STATES: Final = (STARTING, RUNNING, IDLE, DETACHED, STOPPING)
# The notebook can be opened in a browser (the seed's open and ping).
OPENABLE_STATES: Final = (RUNNING, IDLE, DETACHED)
# Nothing runs: the workload config may change, start may begin.
AT_REST_STATES: Final = (STOPPED, FAILED)
NOTEBOOK_STATES: Final = (*AT_REST_STATES, *LIVE_STATES)

# target state → the states a notebook may reach it from.
TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    STARTING: frozenset(AT_REST_STATES),
    RUNNING: frozenset((STARTING, *OPENABLE_STATES)),  # ready; activity (running → running records it)
    IDLE: frozenset((RUNNING, DETACHED)),
    DETACHED: frozenset((RUNNING, IDLE)),
    STOPPING: frozenset((STARTING, *OPENABLE_STATES)),
    STOPPED: frozenset((STOPPING,)),
    FAILED: frozenset(LIVE_STATES),
}

TABLE: Final = StateTable("notebooks", NOTEBOOK_STATES, TRANSITIONS)
allowed = TABLE.allowed


def transition(db: Session, notebook_id: str, target: str, *, source: Sequence[str] | None = None,
               values: Mapping[str, Any] | None = None, now: datetime | None = None) -> bool:
    """Move the notebook to `target`, only from `source` (default: every state the table allows); whether
    it happened. Sets `updated_at`, then `values`. A failed start (starting → failed), a failure from another
    live state and a stop (→ stopped) also record the notifications they cause (`events`, `notifications.outbox`)
    in the same transaction. Does not commit. A `source` outside the table is a programming error (ValueError)."""
    source = TABLE.sources(target, source)
    now = now or utcnow()
    if target == FAILED and STARTING in source and len(source) > 1:
        # Which state a failure left decides its event: the start's failure is one compare-and-set of its own.
        rest = tuple(s for s in source if s != STARTING)
        return (transition(db, notebook_id, FAILED, source=(STARTING,), values=values, now=now)
                or transition(db, notebook_id, FAILED, source=rest, values=values, now=now))
    stmt = (update(Notebook).where(Notebook.id == notebook_id, Notebook.status.in_(source))
            .values({"status": target, "updated_at": now, **(values or {})}))
    event_type = (events.STOPPED if target == STOPPED else None if target != FAILED
                  else events.START_FAILED if tuple(source) == (STARTING,) else events.FAILED)
    if event_type is not None:
        ended = db.execute(stmt.returning(Notebook.id, Notebook.organization_id, Notebook.member_id, Notebook.name,
                                          Notebook.status, Notebook.status_message)).all()
        if ended:
            outbox.record(db, events.notebook_ended(db, ended, event_type, now), now)
        return bool(ended)
    result = db.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def hand_over(db: Session, notebook_id: str, node: str, *, from_node: str) -> bool:
    """Make `node` the node of a notebook that is stopping on `from_node` (its controller finishes the stop):
    of two nodes taking it over, one does, and its old node, when back, no longer sees it as its own. Only a
    stop is handed over: a live notebook waits for its node to adopt it. Whether it happened. Does not commit."""
    stmt = (update(Notebook).where(Notebook.id == notebook_id, Notebook.node == from_node,
                                   Notebook.status == STOPPING)
            .values({"node": node, "updated_at": utcnow()}))
    return bool(db.execute(stmt).rowcount)  # type: ignore[attr-defined]
