"""Wire shapes for the audit log."""

from __future__ import annotations

from typing import Any

from sailplane.kit.schemas import ApiModel, Timestamp


class AuditEventView(ApiModel):
    id: str
    organization_id: str | None
    actor_type: str
    actor_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    outcome: str
    details: dict[str, Any]
    ip_address: str | None
    request_id: str | None
    created_at: Timestamp


class AuditEventList(ApiModel):
    items: list[AuditEventView]
    marker: str | None = None
