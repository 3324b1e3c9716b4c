"""A session's end as notification events: what `session_states.transition` hands to `notifications.outbox` in
the transaction of the change (an explicit call, no registered hook). A failure is always an event; a close only
when a timeout closed it (a user's or a notebook's close is no news)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sailplane.notifications import event_types
from sailplane.notifications.outbox import Event

IDLE_TIMEOUT: Final = "idle_timeout"
MAX_DURATION: Final = "max_duration"
TIMEOUT_REASONS: Final = (IDLE_TIMEOUT, MAX_DURATION)


def session_ended(rows: Sequence[Any], status: str, now: datetime) -> list[Event]:
    """`rows`: (id, organization_id, team_id, member_id, name, termination_reason, status_message) of sessions
    that just reached `status` (closed or failed)."""
    events = []
    for s in rows:
        if status == "failed":
            kind = "session.failed"
        elif s.termination_reason in TIMEOUT_REASONS:
            kind = "session.timed_out"
        else:
            continue
        events.append(Event(
            organization_id=s.organization_id, event_type=kind, event_id=f"session:{s.id}:{status}",
            resource_type=event_types.SESSION, resource_id=s.id, team_ids=(s.team_id,), owner_member_id=s.member_id,
            scope_resource_id=s.id,
            data={"session": {"id": s.id, "name": s.name, "teamId": s.team_id, "status": status,
                              "terminationReason": s.termination_reason, "statusMessage": s.status_message,
                              "closedAt": now.isoformat().replace("+00:00", "Z")}}))
    return events
