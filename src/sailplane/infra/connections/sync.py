"""syncConnectionTemplate: an operation that brings the deployed connection stack up to our TEMPLATE_VERSION.

Steps (each idempotent; the runner records each end, and a resumed operation starts at the recorded step):
`assume_role` (the role still trusts us), `check_stack` (which version the stack runs: already current → done,
nothing changed), `update_stack` (UpdateStack through the role, parameters kept as deployed except our principal,
with a client request token of this operation; skipped when the stack is already updating or updated),
`wait_stack` (until CloudFormation settles: a rollback fails the operation with its reason) and `record`.
Temporary credentials are never stored: each step assumes the role again.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.iam.auth.principal import Principal
from sailplane.infra import stacks
from sailplane.infra.connections.models import Connection
from sailplane.infra.connections.service import RESOURCE, Target, get, target
from sailplane.infra.connections.template import (
    PARAM_EXTERNAL_ID,
    PARAM_PRINCIPAL,
    PARAM_ROLE_NAME,
    TEMPLATE_VERSION,
    deployed_version,
    template,
)
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
    done,
    fail,
    next_step,
)
from sailplane.infra.providers.aws import CloudError
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.errors import conflict
from sailplane.tenancy.audit import service as audit

KIND = "sync_connection_template"
STEPS = (
    ("assume_role", "Assume the connection's role with its external ID"),
    ("check_stack", "Read the deployed stack and the template version it runs"),
    ("update_stack", f"Update the stack to template version {TEMPLATE_VERSION}"),
    ("wait_stack", "Wait for CloudFormation to finish the update"),
    ("record", "Record the synced template version"),
)


def start_sync(db: Session, principal: Principal, connection_id: str, ctx: RequestContext) -> Operation:
    """The sync operation of this connection: the one already pending or running, else a new one."""
    row = get(db, principal, connection_id)
    running = operations.active(db, principal.organization_id, KIND, RESOURCE, row.id)
    if running is not None:
        return running
    if row.status != "active":
        raise conflict("connection_not_verified", "Verify the connection (verifyConnection) before syncing its "
                                                  "template.")
    op = operations.start(db, principal, KIND, STEPS, RESOURCE, row.id)
    audit.record(db, ctx, principal, "connection.sync_template", RESOURCE, row.id, details={"operationId": op.id})
    return op


class SyncTemplate(stacks.StackLookup[Target]):
    """The steps, with what they need: the background database, AWS, the key of the external IDs."""

    def kind(self) -> OperationKind:
        run = {"assume_role": self.assume_role, "check_stack": self.check_stack, "update_stack": self.update_stack,
               "wait_stack": self.wait_stack, "record": self.record}
        return OperationKind(KIND, tuple(Step(name, description, run[name]) for name, description in STEPS),
                             finished=self.finished)

    def subject(self, ctx: StepContext) -> Target | Outcome:
        with self.db.session() as db:
            row = db.scalar(select(Connection).where(Connection.id == ctx.resource_id,
                                                     Connection.organization_id == ctx.organization_id))
            if row is None:
                return fail("connection_deleted", "The connection was deleted.")
            return target(row, self.encryptor)

    def connection_of(self, subject: Target) -> Target:
        return subject

    def stack_of(self, subject: Target, ctx: StepContext) -> str:
        return str(ctx.state.get("stackArn") or subject.stack)

    def assume_role(self, ctx: StepContext) -> Outcome:
        assumed = self._role(ctx)
        return assumed if isinstance(assumed, Outcome) else next_step("Assumed the connection's role.")

    def check_stack(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        found, _role, stack = looked
        if stack is None:
            return fail("stack_not_found", f"The stack {found.stack} was not found in {found.region}: deploy the "
                                           "template, or set the connection's providerConfig.stackArn.")
        status, version = str(stack.get("StackStatus")), deployed_version(stack)
        facts = {"stackArn": str(stack["StackId"]), "previousVersion": version}
        if stacks.busy(stack):
            return again(stacks.POLL_SECONDS, f"The stack is {status}; waiting for it to settle.", **facts)
        if version == TEMPLATE_VERSION and status in stacks.SETTLED:
            return done({**facts, "templateVersion": version, "updated": False},
                        f"The stack already runs template version {version}.", **facts)
        return next_step(f"The stack runs template version {version or 'unknown'}; updating it.", **facts)

    def update_stack(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        found, role, stack = looked
        if stack is None:
            return fail("stack_not_found", f"The stack {found.stack} disappeared.")
        status = str(stack.get("StackStatus"))
        if status.startswith("UPDATE_") and (status.endswith("_IN_PROGRESS")
                                             or deployed_version(stack) == TEMPLATE_VERSION):
            return next_step(f"The update is under way ({status}).")  # this step ran before its end was recorded
        try:
            body = template(found.id, external_id=found.external_id, principal_arn=self.aws.principal_arn(),
                            role_name=found.role_name, stack_name=str(stack.get("StackName") or found.stack))
            # The role's name as deployed (the admin may have chosen another); the external ID is the connection's
            # own (the stack's must be it, or the role could not have been assumed). Not UsePreviousValue: moto
            # keeps previous values only of parameters given explicitly at creation, not of defaults.
            deployed = {p.get("ParameterKey"): p.get("ParameterValue") for p in stack.get("Parameters") or []}
            parameters: dict[str, str | None] = {
                PARAM_EXTERNAL_ID: found.external_id, PARAM_PRINCIPAL: self.aws.principal_arn(),
                PARAM_ROLE_NAME: str(deployed.get(PARAM_ROLE_NAME) or found.role_name)}
            changed = self.aws.update_stack(role, found.region, str(stack["StackId"]), body, parameters,
                                            token=f"sailplane-sync-{ctx.operation_id}")
        except CloudError as exc:
            return stacks.cloud_failure(exc)
        return next_step("Asked CloudFormation to update the stack." if changed else "Nothing to update.")

    def wait_stack(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        found, _role, stack = looked
        if stack is None:
            return fail("stack_not_found", f"The stack {found.stack} disappeared.")
        waiting = stacks.wait(stack)
        if waiting is not None:
            return waiting
        status = stacks.status(stack)
        if status != "UPDATE_COMPLETE" and deployed_version(stack) != TEMPLATE_VERSION:
            return stacks.failed(stack, "stack_update_failed", "update the stack")
        return next_step(f"The stack is {status}.", templateVersion=deployed_version(stack))

    def record(self, ctx: StepContext) -> Outcome:
        return done({"stackArn": ctx.state.get("stackArn"), "previousVersion": ctx.state.get("previousVersion"),
                     "templateVersion": ctx.state.get("templateVersion") or TEMPLATE_VERSION, "updated": True},
                    f"The stack runs template version {TEMPLATE_VERSION}.")

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        """The connection's templateSynced* fields (idempotent: the same values again)."""
        with self.db.session() as db:
            row = db.scalar(select(Connection).where(Connection.id == ctx.resource_id,
                                                     Connection.organization_id == ctx.organization_id))
            if row is None:
                return
            now = utcnow()
            if outcome.kind in (DONE, NEXT):
                result = outcome.result or {}
                row.template_synced_at = now
                row.template_version = str(result.get("templateVersion") or TEMPLATE_VERSION)
                row.template_sync_message = outcome.message or f"Synced to template version {TEMPLATE_VERSION}."
                row.last_used_at = now
                if result.get("stackArn"):
                    row.stack_arn = str(result["stackArn"])
            else:
                row.template_sync_message = (outcome.error or {}).get("message") or "The template sync failed."
            row.updated_at = now
            db.commit()

