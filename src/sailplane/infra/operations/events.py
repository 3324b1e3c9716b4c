"""An operation's end as a notification event: what the runner's `_end` hands to `notifications.outbox` in the
transaction of the change (an explicit call, no registered hook)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sailplane.notifications import event_types
from sailplane.notifications.outbox import Event


def operation_ended(row: Any, now: datetime) -> Event:
    """`row`: (id, organization_id, member_id, operation, resource_type, resource_id, status, error) of an
    operation that just succeeded or failed."""
    error = row.error or {}
    return Event(
        organization_id=row.organization_id, event_type=f"{event_types.OPERATION}.{row.status}",
        event_id=f"operation:{row.id}:{row.status}", resource_type=event_types.OPERATION, resource_id=row.id,
        owner_member_id=row.member_id, scope_resource_id=row.resource_id,
        data={"operation": {"id": row.id, "operation": row.operation, "status": row.status,
                            "resource": {"type": row.resource_type, "id": row.resource_id},
                            "error": {"code": error["code"], "message": error["message"]} if error else None,
                            "completedAt": now.isoformat().replace("+00:00", "Z")}})
