"""Recording and listing audit events. Recording joins the caller's transaction, so an event
exists exactly when the change it describes was committed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.iam.auth.principal import Principal
from sailplane.kit.context import RequestContext
from sailplane.kit.pagination import MarkerPage, apply_marker, split_marker
from sailplane.tenancy.audit.models import AuditEvent


def record(
    db: Session,
    ctx: RequestContext | None,
    principal: Principal | None,
    action: str,
    resource_type: str,
    resource_id: str | None,
    *,
    organization_id: str | None = None,
    actor_type: str | None = None,
    actor_id: str | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    if principal is not None:
        organization_id = organization_id or principal.organization_id
        actor_type = actor_type or ("member" if principal.member is not None else "service_account")
        actor_id = actor_id or principal.actor_id
    event = AuditEvent(
        organization_id=organization_id,
        actor_type=actor_type or "anonymous",
        actor_id=actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
        details=details or {},
        ip_address=ctx.ip_address if ctx else None,
        request_id=ctx.request_id if ctx else None,
    )
    db.add(event)
    return event


def list_events(
    db: Session,
    organization_id: str,
    page: MarkerPage,
    *,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    actor_id: str | None = None,
) -> tuple[list[AuditEvent], str | None]:
    stmt = select(AuditEvent).where(AuditEvent.organization_id == organization_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if resource_type:
        stmt = stmt.where(AuditEvent.resource_type == resource_type)
    if resource_id:
        stmt = stmt.where(AuditEvent.resource_id == resource_id)
    if actor_id:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    rows = list(db.scalars(apply_marker(stmt, AuditEvent.id, page, newest_first=True)))
    return split_marker(rows, page)
