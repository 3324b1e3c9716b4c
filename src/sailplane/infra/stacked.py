"""Stack-backed resources: what networks and provisioned clusters share, each being a record of ours built by one
CloudFormation stack in a connection's account.

- The lifecycle, one table for both kinds (`TRANSITIONS`; each kind's `states` module binds it to its table
  through `Lifecycle`, the one compare-and-set of its status; never a blind write: `UPDATE … WHERE status IN`):

      pending → provisioning → active → destroying → destroyed       (provision; destroy)
      active → updating → active | failed                            (a kind that updates in place: clusters)
      provisioning, destroying → failed → provisioning | destroying  (a failed operation; its retry)
      destroyed → provisioning                                       (provisioned again)

- The records (`Records`): lookups scoped by organization (another organization's are 404) and connection, a name
  free within its connection, starting the provision and destroy operations (the API's two transitions) and
  forgetting a record once nothing of it is in the account.
- The operation steps (`StackSteps`): create the stack with a client request token of the operation, wait for it,
  delete it, wait for it to go, and the operation's end moving the record on (active / destroyed / failed). Each
  step looks before it acts (a killed runner runs it again); credentials are never stored, each step assumes the
  connection's role again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, Protocol, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sailplane.iam.auth.principal import Principal
from sailplane.infra import stacks
from sailplane.infra.connections import service as connections
from sailplane.infra.operations import service as operations
from sailplane.infra.operations.models import Operation
from sailplane.infra.operations.steps import (
    DONE,
    NEXT,
    OperationKind,
    Outcome,
    Step,
    StepContext,
    again,
    fail,
    next_step,
)
from sailplane.infra.providers.aws import AssumedRole, CloudError
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.errors import conflict, not_found
from sailplane.kit.pagination import MarkerPage, apply_marker, count, split_marker
from sailplane.kit.state_table import StateTable
from sailplane.tenancy.audit import service as audit

PENDING: Final = "pending"
PROVISIONING: Final = "provisioning"
ACTIVE: Final = "active"
DESTROYING: Final = "destroying"
DESTROYED: Final = "destroyed"
FAILED: Final = "failed"
UPDATING: Final = "updating"
STATES: Final = (PENDING, PROVISIONING, ACTIVE, UPDATING, DESTROYING, DESTROYED, FAILED)
# Without infrastructure of ours in the account: the record may be deleted.
DELETABLE: Final = (PENDING, DESTROYED)
TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    PROVISIONING: frozenset((PENDING, FAILED, DESTROYED)),
    ACTIVE: frozenset((PROVISIONING, UPDATING)),
    UPDATING: frozenset((ACTIVE,)),
    DESTROYING: frozenset((ACTIVE, FAILED)),
    DESTROYED: frozenset((DESTROYING,)),
    FAILED: frozenset((PROVISIONING, UPDATING, DESTROYING)),
}
CREATE_FAILED: Final = ("ROLLBACK_COMPLETE", "CREATE_FAILED", "ROLLBACK_FAILED")
CREATED: Final = ("CREATE_COMPLETE", "UPDATE_COMPLETE")

R = TypeVar("R")
# (db, organization ID, record ID) → the names of what uses the record (empty: nothing).
UsersOf = Callable[[Session, str, str], list[str]]


class Lifecycle:
    """The lifecycle table bound to one kind's table: its `TABLE` and its one compare-and-set."""

    def __init__(self, model: type[Any], table: str) -> None:
        self.model = model
        self.table = StateTable(table, STATES, TRANSITIONS)

    def transition(self, db: Session, resource_id: str, target: str, *, source: Sequence[str] | None = None,
                   values: Mapping[str, Any] | None = None, now: datetime | None = None) -> bool:
        """Move the record to `target` from `source` (default: all the table allows); whether it happened. Does not
        commit; the record's object in `db` is updated too."""
        source = self.table.sources(target, source)
        model = self.model
        result = db.execute(update(model).where(model.id == resource_id, model.status.in_(source))
                            .values({"status": target, "updated_at": now or utcnow(), **(values or {})}))
        return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Kind:
    """What differs between the kinds in what the API says: `noun` is also the operations' resource type, the
    audit actions' prefix and the error codes' (`network_busy`, `cluster_not_destroyed`)."""

    noun: str
    provision: str
    provision_steps: tuple[tuple[str, str], ...]
    destroy: str
    destroy_steps: tuple[tuple[str, str], ...]
    destroy_op: str  # the operationId that destroys one
    delete_op: str  # the operationId that forgets one


class Records(Generic[R]):
    """A kind's records: `model` has id, organization_id, connection_id, name, status, stack_name, stack_arn."""

    def __init__(self, model: type[R], kind: Kind, lifecycle: Lifecycle) -> None:
        self.model: Any = model
        self.resource = kind
        self.lifecycle = lifecycle

    def scoped(self, principal: Principal) -> Any:
        return select(self.model).where(self.model.organization_id == principal.organization_id)

    def get(self, db: Session, principal: Principal, resource_id: str) -> R:
        found: R | None = db.scalar(self.scoped(principal).where(self.model.id == resource_id))
        if found is None:
            raise not_found(self.resource.noun)
        return found

    def get_in(self, db: Session, principal: Principal, connection_id: str, resource_id: str) -> R:
        """The record of this connection (404 when either is unknown or they do not belong together)."""
        connections.get(db, principal, connection_id)
        row = self.get(db, principal, resource_id)
        if row.connection_id != connection_id:  # type: ignore[attr-defined]
            raise not_found(self.resource.noun)
        return row

    def listing(self, db: Session, principal: Principal, page: MarkerPage,
                connection_id: str | None = None) -> tuple[int, list[R], str | None]:
        stmt = self.scoped(principal)
        if connection_id is not None:
            connections.get(db, principal, connection_id)
            stmt = stmt.where(self.model.connection_id == connection_id)
        rows = list(db.scalars(apply_marker(stmt, self.model.id, page)))
        items, marker = split_marker(rows, page)
        return count(db, stmt), items, marker

    def name_free(self, db: Session, connection_id: str, name: str, other_than: str | None = None) -> None:
        stmt = select(self.model.id).where(self.model.connection_id == connection_id, self.model.name == name)
        if other_than is not None:
            stmt = stmt.where(self.model.id != other_than)
        if db.scalar(stmt.limit(1)) is not None:
            noun = self.resource.noun
            raise conflict(f"{noun}_name_taken", f"A {noun} with this name already exists in the connection.")

    def busy(self, db: Session, principal: Principal, row: Any) -> None:
        if operations.any_active(db, principal.organization_id, self.resource.noun, row.id):
            raise conflict(f"{self.resource.noun}_busy", f"An operation on this {self.resource.noun} is still running; "
                                                     "wait for it to end.")

    def start_provision(self, db: Session, principal: Principal, connection_id: str, resource_id: str,
                        ctx: RequestContext, message: str, *, before: Callable[[Any], None] | None = None,
                        after: Callable[[Any], object] | None = None) -> Operation:
        """The provisioning operation: the one already pending or running, else a new one. `before` checks the
        record ahead of the common rules, `after` once the connection is known to be verified."""
        noun, kind = self.resource.noun, self.resource
        row: Any = self.get_in(db, principal, connection_id, resource_id)
        running = operations.active(db, principal.organization_id, kind.provision, noun, row.id)
        if running is not None:
            return running
        if before is not None:
            before(row)
        self.busy(db, principal, row)
        if not self.lifecycle.table.allowed(row.status, PROVISIONING):
            raise conflict(f"{noun}_not_provisionable", f"The {noun} is {row.status}; only a pending, failed or "
                                                        f"destroyed {noun} is provisioned.")
        if connections.get(db, principal, connection_id).status != connections.ACTIVE:
            raise conflict("connection_not_verified", "Verify the connection (verifyConnection) before provisioning.")
        if after is not None:
            after(row)
        self.lifecycle.transition(db, row.id, PROVISIONING, values={
            "status_message": message, "updated_by": principal.actor_id})
        op = operations.start(db, principal, kind.provision, kind.provision_steps, noun, row.id,
                              state={"stackName": row.stack_name})
        audit.record(db, ctx, principal, f"{noun}.provision", noun, row.id, details={"operationId": op.id})
        return op

    def start_destroy(self, db: Session, principal: Principal, connection_id: str, resource_id: str,
                      ctx: RequestContext, message: str, users: Sequence[UsersOf] = ()) -> Operation:
        """The destroy operation: the one already pending or running, else a new one (409 while anything in
        `users` says the record is used)."""
        noun, kind = self.resource.noun, self.resource
        row: Any = self.get_in(db, principal, connection_id, resource_id)
        running = operations.active(db, principal.organization_id, kind.destroy, noun, row.id)
        if running is not None:
            return running
        self.busy(db, principal, row)
        using = [name for check in users for name in check(db, principal.organization_id, row.id)]
        if using:
            raise conflict(f"{noun}_in_use", f"The {noun} is used by {', '.join(using)}; remove them first.")
        if not self.lifecycle.table.allowed(row.status, DESTROYING):
            raise conflict(f"{noun}_not_destroyable", f"The {noun} is {row.status}: there is nothing to destroy"
                           + (f"; delete its record ({kind.delete_op})." if row.status in DELETABLE else "."))
        self.lifecycle.transition(db, row.id, DESTROYING, values={
            "status_message": message, "updated_by": principal.actor_id})
        op = operations.start(db, principal, kind.destroy, kind.destroy_steps, noun, row.id,
                              state={"stackName": row.stack_name, "stackArn": row.stack_arn})
        audit.record(db, ctx, principal, f"{noun}.destroy", noun, row.id, details={"operationId": op.id})
        return op

    def delete_record(self, db: Session, principal: Principal, resource_id: str, ctx: RequestContext) -> None:
        """Forget the record: only once nothing of ours is left in the account (destroyed, or never provisioned)."""
        noun = self.resource.noun
        row: Any = self.get(db, principal, resource_id)
        self.busy(db, principal, row)
        if row.status not in DELETABLE:
            raise conflict(f"{noun}_not_destroyed", f"The {noun} is {row.status}: destroy it "
                                                    f"({self.resource.destroy_op}) before deleting its record.")
        audit.record(db, ctx, principal, f"{noun}.delete", noun, row.id, details={"name": row.name})
        db.delete(row)
        db.flush()


# --- the operations' steps ---------------------------------------------------------------------------------------


class Subject(Protocol):
    """What every step needs of the record and its connection (each kind's subject adds its own)."""

    @property
    def resource_id(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def stack_name(self) -> str: ...
    @property
    def stack_arn(self) -> str | None: ...
    @property
    def connection(self) -> connections.Target: ...


S = TypeVar("S", bound=Subject)
StepFn = Callable[[StepContext], Outcome]
# (the failed outcome, its message) → the state a failed operation leaves the record in, with the values to write.
FailureEnd = Callable[[Outcome, str], tuple[str, dict[str, Any]]]


class StackSteps(stacks.StackLookup[S]):
    """The steps both kinds' provision and destroy operations share; a kind says how to read its subject
    (`subject`), which stack to create (`body`), and what its end records."""

    resource: Kind
    lifecycle: Lifecycle
    poll_seconds: float = stacks.POLL_SECONDS

    def connection_of(self, subject: S) -> connections.Target:
        return subject.connection

    def stack_of(self, subject: S, ctx: StepContext) -> str:
        return subject.stack_arn or subject.stack_name

    def body(self, subject: S, ctx: StepContext) -> dict[str, Any]:
        """The stack's template."""
        raise NotImplementedError

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        """The operation's end: the record moves on (`end`)."""
        raise NotImplementedError

    def provision_kind(self, plan: StepFn, record: StepFn) -> OperationKind:
        """plan (the kind's), create_stack, wait_stack, record (the kind's)."""
        run = {"plan": plan, "create_stack": self.create_stack, "wait_stack": self.wait_created, "record": record}
        return OperationKind(self.resource.provision, tuple(Step(n, d, run[n]) for n, d in
                                                            self.resource.provision_steps), finished=self.finished)

    def destroy_kind(self, plan: StepFn, record: StepFn) -> OperationKind:
        """plan (the kind's), delete_stack, wait_stack, record (the kind's)."""
        run = {"plan": plan, "delete_stack": self.delete_stack, "wait_stack": self.wait_deleted, "record": record}
        return OperationKind(self.resource.destroy, tuple(Step(n, d, run[n]) for n, d in self.resource.destroy_steps),
                             finished=self.finished)

    def _create_failed(self, stack: dict[str, Any]) -> Outcome:
        noun = self.resource.noun
        return stacks.failed(stack, "stack_create_failed", f"create the {noun}'s stack; destroy the {noun} "
                             f"({self.resource.destroy_op}), then provision it again")

    def create_stack(self, ctx: StepContext) -> Outcome:
        """CreateStack of the record's stack name with a client request token of the operation: a second run of this
        step (its server killed before its end was recorded) cannot make a second stack, since the name is taken;
        CloudFormation says so (AlreadyExistsException) and the step goes on with the stack it finds. Asking first
        would be a DescribeStacks more for every operation, to save one refused call in the rare repeat."""
        found = self._role(ctx)
        if isinstance(found, Outcome):
            return found
        subject, role = found
        body = self.body(subject, ctx)
        try:
            arn = self.aws.create_stack(role, subject.region, subject.stack_name, body,
                                        token=f"sailplane-provision-{ctx.operation_id}",
                                        tags={f"sailplane:{self.resource.noun}": subject.resource_id})
        except CloudError as exc:
            if exc.code == "AlreadyExistsException":
                return self._existing(subject, role)
            return stacks.cloud_failure(exc)
        return next_step(f"Asked CloudFormation to create the stack {subject.stack_name}.", stackArn=arn)

    def _existing(self, subject: S, role: AssumedRole) -> Outcome:
        """The stack of this name exists: this step ran before its end was recorded, or a failed stack is left over."""
        try:
            stack = self.aws.describe_stack(role, subject.region, subject.stack_name)
        except CloudError as exc:
            return stacks.cloud_failure(exc)
        if stack is None:  # deleted in between
            return again(1.0, "The stack existed a moment ago; creating it again.")
        if stacks.status(stack) in CREATE_FAILED:
            return self._create_failed(stack)
        return next_step(f"The stack {subject.stack_name} exists ({stacks.status(stack)}).",
                         stackArn=str(stack["StackId"]))

    def wait_created(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        subject, _role, stack = looked
        if stack is None:
            return fail("stack_not_found", f"The stack {subject.stack_name} disappeared; provision the "
                                           f"{self.resource.noun} again.", retryable=True)
        waiting = stacks.wait(stack, delay=self.poll_seconds)
        if waiting is not None:
            return waiting
        if stacks.status(stack) not in CREATED:
            return self._create_failed(stack)
        return next_step(f"The stack is {stacks.status(stack)}.", stackArn=str(stack["StackId"]),
                         outputs=stacks.outputs(stack))

    def delete_stack(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        subject, role, stack = looked
        if stack is None:
            return next_step(f"The stack {subject.stack_name} is gone already.")
        if stacks.status(stack) == "DELETE_IN_PROGRESS":
            return next_step("CloudFormation is deleting the stack.", stackArn=str(stack["StackId"]))
        waiting = stacks.wait(stack)
        if waiting is not None:
            return waiting
        try:
            self.aws.delete_stack(role, subject.region, str(stack["StackId"]),
                                  token=f"sailplane-destroy-{ctx.operation_id}")
        except CloudError as exc:
            return stacks.cloud_failure(exc)
        return next_step(f"Asked CloudFormation to delete the stack {subject.stack_name}.",
                         stackArn=str(stack["StackId"]))

    def wait_deleted(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        _subject, _role, stack = looked
        if stack is None:
            return next_step("The stack is deleted.")
        waiting = stacks.wait(stack, delay=self.poll_seconds)
        if waiting is not None:
            return waiting
        return stacks.failed(stack, "stack_delete_failed", f"delete the {self.resource.noun}'s stack; destroy it again")

    def end(self, ctx: StepContext, outcome: Outcome, success: str, values: dict[str, Any], message: str, *,
            working: str | None = None, failure: FailureEnd | None = None) -> None:
        """Move the record from the operation's state (`working`; provisioning or destroying by the `success` state)
        to `success`, or after a failure to failed, or where `failure` says given the failure's message (idempotent:
        from the working state only)."""
        working = working or (PROVISIONING if success == ACTIVE else DESTROYING)
        with self.db.session() as db:
            if outcome.kind in (DONE, NEXT):
                self.lifecycle.transition(db, ctx.resource_id, success, source=(working,),
                                          values={**values, "status_message": message[:2000]})
            else:
                error = (outcome.error or {}).get("message") or "The operation failed."
                text = f"{error} (operation {ctx.operation_id})"
                target, extra = failure(outcome, text) if failure is not None else (FAILED, {"status_message": text})
                extra["status_message"] = str(extra.get("status_message") or text)[:2000]
                self.lifecycle.transition(db, ctx.resource_id, target, source=(working,), values=extra)
            db.commit()
