"""Compute instance (the API's "workload") states: the values, the named sets, the transitions
allowed between them, and the one compare-and-set that changes an instance's status.

An instance's status is changed by the controller of its node (started, failed, released, lost at
a restart) and by the controllers of other nodes of the machine (sweeping the servers of a node that
is down), possibly at the same moment; so a status is never written blindly but by `UPDATE ...
WHERE id IN (...) AND status IN (<states it may come from>)`, and terminal states never change again.

    provisioning → running → stopping → stopped
    provisioning, running, stopping → failed | stopped   (a start or a health check failed; lost)
    provisioning, running, stopping → stopping            (released, or swept while its node is down)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from sailplane.kit.clock import utcnow
from sailplane.kit.state_table import StateTable
from sailplane.workloads.models import ComputeInstance

PROVISIONING: Final = "provisioning"  # seeded (the model's default): its Sail server is starting
RUNNING: Final = "running"
STOPPING: Final = "stopping"
STOPPED: Final = "stopped"
INSTANCE_FAILED: Final = "failed"

# Live instances can take sessions; held ones still have (or may have) a server; terminal ones never change.
LIVE_INSTANCE_STATES: Final = (PROVISIONING, RUNNING)
HELD_STATES: Final = (PROVISIONING, RUNNING, STOPPING)
TERMINAL_STATES: Final = (STOPPED, INSTANCE_FAILED)
INSTANCE_STATES: Final = (*HELD_STATES, *TERMINAL_STATES)

# target state → the states an instance may reach it from.
TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    RUNNING: frozenset((PROVISIONING,)),
    STOPPING: frozenset(HELD_STATES),  # stopping → stopping: a down node's sweep claims it again
    STOPPED: frozenset(HELD_STATES),
    INSTANCE_FAILED: frozenset(HELD_STATES),
}

TABLE: Final = StateTable("compute instances", INSTANCE_STATES, TRANSITIONS)
allowed = TABLE.allowed


def _stamps(target: str, now: datetime) -> dict[str, Any]:
    """The fields that go with reaching `target`."""
    stamps: dict[str, Any] = {"status": target, "updated_at": now}
    if target in TERMINAL_STATES:
        stamps["cleaned_at"] = now
    return stamps


def transition(db: Session, instance_ids: str | Sequence[str], target: str, *, source: Sequence[str] | None = None,
               values: Mapping[str, Any] | None = None, where: Sequence[ColumnElement[bool]] = (),
               now: datetime | None = None) -> int:
    """Move the instance(s) to `target`, only from `source` (default: every state the table allows)
    and while `where` holds; how many moved. Sets `updated_at` (and `cleaned_at` for a terminal
    state), then `values`. Does not commit; loaded objects in `db` are updated. A `source` outside the
    table is a programming error (ValueError)."""
    source = TABLE.sources(target, source)
    ids = [instance_ids] if isinstance(instance_ids, str) else list(instance_ids)
    if not ids:
        return 0
    stmt = update(ComputeInstance).where(ComputeInstance.id.in_(ids), ComputeInstance.status.in_(source), *where)
    result = db.execute(stmt.values({**_stamps(target, now or utcnow()), **(values or {})}))
    return int(result.rowcount)  # type: ignore[attr-defined]
