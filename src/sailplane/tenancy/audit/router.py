"""HTTP routes for the audit log (needs CanViewAuditLog)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from sailplane.iam.auth.deps import Db, require
from sailplane.iam.auth.principal import Principal
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.tenancy.audit import service
from sailplane.tenancy.audit.schemas import AuditEventList, AuditEventView

router = APIRouter(route_class=JsonRoute, prefix="/org/audit-events", tags=["audit"])
ViewAuditLog = Annotated[Principal, Depends(require("CanViewAuditLog"))]
ACTION_PATTERN = r"^[A-Za-z0-9_.:-]{1,80}$"
RESOURCE_TYPE_PATTERN = r"^[A-Za-z0-9_.-]{1,40}$"


@router.get("", operation_id="listAuditEvents", response_model=AuditEventList)
def list_audit_events(
    db: Db,
    principal: ViewAuditLog,
    page: Annotated[MarkerPage, Depends(marker_params)],
    action: Annotated[str | None, Query(pattern=ACTION_PATTERN, description="e.g. policy.set")] = None,
    resource_type: Annotated[str | None, Query(alias="resourceType", pattern=RESOURCE_TYPE_PATTERN)] = None,
    resource_id: Annotated[str | None, Query(alias="resourceId", pattern=ID_PATTERN)] = None,
    actor_id: Annotated[str | None, Query(alias="actorId", pattern=ID_PATTERN)] = None,
) -> AuditEventList:
    """Who did what to which resource, when and from where: this organization's events, newest first."""
    rows, marker = service.list_events(db, principal.organization_id, page, action=action,
                                       resource_type=resource_type, resource_id=resource_id, actor_id=actor_id)
    return AuditEventList(items=[AuditEventView.model_validate(e) for e in rows], marker=marker)
