"""The outbox: an event that matches rules becomes delivery rows in the transaction of the state change.

The owner of a state machine calls `record` with the same session as its compare-and-set, so either the change
and its deliveries commit together or neither does: a server killed after the commit still has the rows, and the
next sender (any server) sends them. Events arrive as plain data (`Event`), so this module imports no domain.
A delivery is unique per (event, rule, channel): an event recorded twice is delivered once.

The sender of this server is woken once the transaction that wrote deliveries commits (`kit.db.after_commit`):
the app puts its `NotificationRuntime.notify` in the sessions' info under `WAKE_SENDER` (`app.start_notifications`),
so a delivery leaves at once rather than at the sender's next tick; without it (another process, a script) the
next tick sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.kit.clock import utcnow
from sailplane.kit.db import after_commit
from sailplane.kit.dialect import dialect_of
from sailplane.kit.ids import new_id
from sailplane.notifications.models import NotificationChannel, NotificationDelivery, NotificationRule

PENDING = "pending"
WAKE_SENDER = "sailplane.notifications.wake_sender"  # Session.info key: a callable that wakes this server's sender


@dataclass(frozen=True)
class Event:
    """Something that happened to a resource. `event_id` names it uniquely (a run's attempt and end);
    `team_ids`, `owner_member_id` and `scope_resource_id` (e.g. the run's job) are what rules' scopes match."""

    organization_id: str
    event_type: str
    event_id: str
    resource_type: str
    resource_id: str
    team_ids: tuple[str, ...] = ()
    owner_member_id: str | None = None
    scope_resource_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def _matches(rule: NotificationRule, event: Event) -> bool:
    if event.event_type not in rule.event_types:
        return False
    if rule.scope_type == "organization":
        return True
    if rule.scope_type == "team":
        return rule.team_id in event.team_ids
    if rule.scope_type == "resource":
        return rule.resource_id is not None and rule.resource_id == event.scope_resource_id
    return rule.member_id is not None and rule.member_id == event.owner_member_id  # own_resources


def payload(event: Event, occurred_at: datetime) -> dict[str, Any]:
    """What every channel's message is made of (the webhook body's `data`)."""
    return {"type": event.event_type, "occurredAt": occurred_at.isoformat().replace("+00:00", "Z"),
            "organizationId": event.organization_id,
            "resource": {"type": event.resource_type, "id": event.resource_id}, "data": event.data}


def record(db: Session, events: Sequence[Event], now: datetime | None = None) -> int:
    """Insert one pending delivery per matching enabled rule × existing channel (none twice); the number of
    matches. Never commits (the caller's transaction owns it)."""
    if not events:
        return 0
    now = now or utcnow()
    orgs = sorted({e.organization_id for e in events})
    kinds = sorted({e.resource_type for e in events})
    rules = list(db.scalars(select(NotificationRule).where(NotificationRule.organization_id.in_(orgs),
                                                           NotificationRule.resource_type.in_(kinds),
                                                           NotificationRule.enabled.is_(True))))
    if not rules:
        return 0
    wanted = sorted({c for r in rules for c in r.channel_ids})
    channels = {(org, cid) for org, cid in db.execute(select(
        NotificationChannel.organization_id, NotificationChannel.id).where(NotificationChannel.id.in_(wanted)))}
    rows: list[dict[str, Any]] = []
    for event in events:
        body = payload(event, now)
        for rule in rules:
            if rule.organization_id != event.organization_id or not _matches(rule, event):
                continue
            for channel_id in rule.channel_ids:
                if (event.organization_id, channel_id) in channels:
                    rows.append({"id": new_id(), "organization_id": event.organization_id, "channel_id": channel_id,
                                 "rule_id": rule.id, "event_id": event.event_id, "event_type": event.event_type,
                                 "resource_type": event.resource_type, "resource_id": event.resource_id,
                                 "payload": body, "status": PENDING, "attempts": 0, "next_attempt_at": now,
                                 "created_at": now, "updated_at": now})
    if rows:  # an event recorded again (same event, rule and channel) adds nothing and fails nothing
        db.execute(dialect_of(db).insert_ignoring_duplicates(NotificationDelivery.__table__), rows)
        wake = db.info.get(WAKE_SENDER)
        if wake is not None:  # a wake is cheap: several in one transaction are fine
            after_commit(db, wake)
    return len(rows)
