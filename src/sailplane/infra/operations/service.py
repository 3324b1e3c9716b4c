"""Starting operations and reading them; the runner (`runner`) is what moves them on.

An operation belongs to one organization: another organization's caller gets 404 for it, as for everything.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.iam.auth.principal import Principal
from sailplane.infra.operations.models import Operation
from sailplane.infra.operations.runner import ACTIVE, PENDING
from sailplane.infra.operations.schemas import OperationView
from sailplane.infra.operations.steps import initial_progress
from sailplane.kit.errors import not_found
from sailplane.kit.ids import new_id


def start(db: Session, principal: Principal, operation: str, steps: tuple[tuple[str, str], ...], resource_type: str,
          resource_id: str, state: dict[str, object] | None = None) -> Operation:
    """A pending operation (flushed; the request's commit makes it visible to the runners)."""
    operation_id = new_id()
    row = Operation(id=operation_id, organization_id=principal.organization_id, member_id=principal.actor_id,
                    operation=operation, status=PENDING, resource_type=resource_type, resource_id=resource_id,
                    state=dict(state or {}), progress=initial_progress(operation_id, steps),
                    created_by=principal.actor_id, updated_by=principal.actor_id)
    db.add(row)
    db.flush()
    return row


def active(db: Session, organization_id: str, operation: str, resource_type: str, resource_id: str) -> Operation | None:
    """The pending or running operation of this kind on this resource, if any."""
    found: Operation | None = db.scalar(select(Operation).where(
        Operation.organization_id == organization_id, Operation.operation == operation,
        Operation.resource_type == resource_type, Operation.resource_id == resource_id,
        Operation.status.in_(ACTIVE)).order_by(Operation.id.desc()).limit(1))
    return found


def any_active(db: Session, organization_id: str, resource_type: str, resource_id: str) -> bool:
    return db.scalar(select(Operation.id).where(
        Operation.organization_id == organization_id, Operation.resource_type == resource_type,
        Operation.resource_id == resource_id, Operation.status.in_(ACTIVE)).limit(1)) is not None


def latest(db: Session, organization_id: str, resource_type: str, resource_ids: list[str]) -> list[Operation]:
    """The newest operation of each of these resources."""
    if not resource_ids:
        return []
    rows = db.scalars(select(Operation).where(
        Operation.organization_id == organization_id, Operation.resource_type == resource_type,
        Operation.resource_id.in_(resource_ids)).order_by(Operation.id.desc()))
    newest: dict[str, Operation] = {}
    for row in rows:
        newest.setdefault(row.resource_id, row)
    return sorted(newest.values(), key=lambda r: r.id)


def get(db: Session, principal: Principal, operation_id: str) -> Operation:
    found: Operation | None = db.scalar(select(Operation).where(
        Operation.id == operation_id, Operation.organization_id == principal.organization_id))
    if found is None:
        raise not_found("operation")
    return found


def view(row: Operation) -> OperationView:
    return OperationView.model_validate({
        "id": row.id, "organization_id": row.organization_id, "member_id": row.member_id,
        "operation": row.operation, "status": row.status, "result": row.result, "error": row.error,
        "progress": row.progress, "resource_type": row.resource_type, "resource_id": row.resource_id,
        "created_at": row.created_at, "updated_at": row.updated_at, "started_at": row.started_at,
        "completed_at": row.completed_at,
    })
