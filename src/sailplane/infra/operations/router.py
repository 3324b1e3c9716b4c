"""HTTP route of /operations/{operationId}: how a caller follows a long infrastructure change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from sailplane.iam.auth.deps import Db, require
from sailplane.iam.auth.principal import Principal
from sailplane.infra.operations import service
from sailplane.infra.operations.schemas import OperationView
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.routing import JsonRoute

router = APIRouter(route_class=JsonRoute, prefix="/operations", tags=["operations"])
Admin = Annotated[Principal, Depends(require("CanManageInfrastructure"))]
OperationId = Annotated[str, Path(alias="operationId", pattern=ID_PATTERN, description="An operation ID.")]


@router.get("/{operationId}", operation_id="getOperation", response_model=OperationView)
def get_operation(operation_id: OperationId, principal: Admin, db: Db) -> OperationView:
    """An operation's status, its progress (the current step), and its result or error. Operations change
    infrastructure, so they are shown to those who manage it (CanManageInfrastructure); 404 for another
    organization's."""
    return service.view(service.get(db, principal, operation_id))
