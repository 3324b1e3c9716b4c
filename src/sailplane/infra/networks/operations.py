"""provisionNetwork and destroyNetwork: the operations that create and delete a network's CloudFormation stack.

provision: `plan` (assume the connection's role, choose the zones), `create_stack` (CreateStack of the stack named
by the network, `iacState.stackName`, with a client request token of the operation; when the stack exists already
this step ran before its end was recorded and it goes on with that stack), `wait_stack` (until CloudFormation
settles; a failed create fails the operation with its reason) and `record` (the outputs). destroy: `plan`,
`delete_stack` (DeleteStack with a token; a stack already gone or going is not deleted again), `wait_stack`,
`record`. Each step may run twice (a killed runner), so each looks before it acts. Temporary credentials are never
stored: each step assumes the role again. The operation's end moves the network on (`finished`, through
`networks.states`): active with its outputs, destroyed, or failed with the operation's message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from sailplane.infra import stacks
from sailplane.infra.connections.models import Connection
from sailplane.infra.connections.service import Target, assume, target
from sailplane.infra.networks import states
from sailplane.infra.networks.models import Network
from sailplane.infra.networks.service import DESTROY, DESTROY_STEPS, PROVISION, PROVISION_STEPS
from sailplane.infra.networks.template import MAX_ZONES, MIN_ZONES, template
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
from sailplane.infra.providers.aws import AssumedRole, Aws, CloudError
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import Database

CREATED = ("CREATE_COMPLETE", "UPDATE_COMPLETE")


@dataclass(frozen=True)
class Subject:
    """What a step needs of the network and its connection, read in one short transaction."""

    network_id: str
    region: str
    cidr: str
    stack_name: str
    stack_arn: str | None
    adopted: bool
    provider_network_id: str | None
    connection: Target


class _Steps:
    def __init__(self, db: Database, aws: Aws, encryptor: Encryptor) -> None:
        self.db = db
        self.aws = aws
        self.encryptor = encryptor

    def _subject(self, ctx: StepContext) -> Subject | Outcome:
        with self.db.session() as db:
            net = db.scalar(select(Network).where(Network.id == ctx.resource_id,
                                                  Network.organization_id == ctx.organization_id))
            if net is None:
                return fail("network_deleted", "The network was deleted.")
            conn = db.scalar(select(Connection).where(Connection.id == net.connection_id))
            if conn is None:
                return fail("connection_deleted", "The network's connection was deleted.")
            return Subject(net.id, net.region, net.cidr, str(ctx.state.get("stackName") or net.stack_name),
                           ctx.state.get("stackArn") or net.stack_arn, net.adopted, net.provider_network_id,
                           target(conn, self.encryptor))

    def _role(self, ctx: StepContext) -> tuple[Subject, AssumedRole] | Outcome:
        subject = self._subject(ctx)
        if isinstance(subject, Outcome):
            return subject
        try:
            return subject, assume(self.aws, subject.connection)
        except CloudError as exc:
            return stacks.cloud_failure(exc)

    def _stack(self, ctx: StepContext) -> tuple[Subject, AssumedRole, dict[str, Any] | None] | Outcome:
        found = self._role(ctx)
        if isinstance(found, Outcome):
            return found
        subject, role = found
        try:
            return subject, role, self.aws.describe_stack(role, subject.region, subject.stack_arn or subject.stack_name)
        except CloudError as exc:
            return stacks.cloud_failure(exc)

    def _end(self, ctx: StepContext, outcome: Outcome, success: str, values: dict[str, Any], message: str) -> None:
        """Move the network from the operation's state to `success` or failed (idempotent: from that state only)."""
        working = states.PROVISIONING if success == states.ACTIVE else states.DESTROYING
        with self.db.session() as db:
            if outcome.kind in (DONE, NEXT):
                states.transition(db, ctx.resource_id, success, source=(working,),
                                  values={**values, "status_message": message[:2000]})
            else:
                error = (outcome.error or {}).get("message") or "The operation failed."
                states.transition(db, ctx.resource_id, states.FAILED, source=(working,),
                                  values={"status_message": f"{error} (operation {ctx.operation_id})"[:2000]})
            db.commit()


class ProvisionNetwork(_Steps):
    def kind(self) -> OperationKind:
        run = {"plan": self.plan, "create_stack": self.create_stack, "wait_stack": self.wait_stack,
               "record": self.record}
        return OperationKind(PROVISION, tuple(Step(n, d, run[n]) for n, d in PROVISION_STEPS), finished=self.finished)

    def plan(self, ctx: StepContext) -> Outcome:
        found = self._role(ctx)
        if isinstance(found, Outcome):
            return found
        subject, role = found
        try:
            zones = self.aws.availability_zones(role, subject.region)
        except CloudError as exc:
            return stacks.cloud_failure(exc)
        if len(zones) < MIN_ZONES:
            return fail("not_enough_zones", f"{subject.region} has {len(zones)} availability zones available to "
                                            f"the account; a network needs {MIN_ZONES}.")
        chosen = zones[:MAX_ZONES]
        return next_step(f"The VPC spans {', '.join(chosen)}.", zones=chosen, stackName=subject.stack_name)

    def create_stack(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        subject, role, stack = looked
        if stack is not None:  # this step ran before its end was recorded (or a failed stack is left over)
            if stacks.status(stack) in ("ROLLBACK_COMPLETE", "CREATE_FAILED", "ROLLBACK_FAILED"):
                return stacks.failed(stack, "stack_create_failed", "create the network's stack; destroy the "
                                     "network (destroyNetwork), then provision it again")
            return next_step(f"The stack {subject.stack_name} exists ({stacks.status(stack)}).",
                             stackArn=str(stack["StackId"]))
        try:
            arn = self.aws.create_stack(role, subject.region, subject.stack_name,
                                        template(subject.network_id, subject.cidr, list(ctx.state["zones"])),
                                        token=f"sailplane-provision-{ctx.operation_id}",
                                        tags={"sailplane:network": subject.network_id})
        except CloudError as exc:
            if exc.code == "AlreadyExistsException":
                return again(1.0, "The stack exists already; reading it again.")
            return stacks.cloud_failure(exc)
        return next_step(f"Asked CloudFormation to create the stack {subject.stack_name}.", stackArn=arn)

    def wait_stack(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        subject, _role, stack = looked
        if stack is None:
            return fail("stack_not_found", f"The stack {subject.stack_name} disappeared; provision the network "
                                           "again.", retryable=True)
        waiting = stacks.wait(stack)
        if waiting is not None:
            return waiting
        if stacks.status(stack) not in CREATED:
            return stacks.failed(stack, "stack_create_failed", "create the network's stack; destroy the network "
                                 "(destroyNetwork), then provision it again")
        outputs = stacks.outputs(stack)
        return next_step(f"The stack is {stacks.status(stack)}.", stackArn=str(stack["StackId"]), outputs=outputs)

    def record(self, ctx: StepContext) -> Outcome:
        outputs = dict(ctx.state.get("outputs") or {})
        return done({"stackArn": ctx.state.get("stackArn"), "providerNetworkId": outputs.get("VpcId"),
                     "iacOutputs": outputs}, f"The network's VPC {outputs.get('VpcId')} is ready.")

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        result = outcome.result or {}
        self._end(ctx, outcome, states.ACTIVE, {
            "stack_arn": result.get("stackArn"), "provider_network_id": result.get("providerNetworkId"),
            "iac_outputs": result.get("iacOutputs") or {}}, outcome.message or "Provisioned.")


class DestroyNetwork(_Steps):
    def kind(self) -> OperationKind:
        run = {"plan": self.plan, "delete_stack": self.delete_stack, "wait_stack": self.wait_stack,
               "record": self.record}
        return OperationKind(DESTROY, tuple(Step(n, d, run[n]) for n, d in DESTROY_STEPS), finished=self.finished)

    def plan(self, ctx: StepContext) -> Outcome:
        subject = self._subject(ctx)
        if isinstance(subject, Outcome):
            return subject
        if subject.adopted:
            return done({"providerNetworkId": subject.provider_network_id, "updated": False},
                        f"The adopted VPC {subject.provider_network_id} stays in the account; Sailplane no longer "
                        "uses it.")
        found = self._role(ctx)
        if isinstance(found, Outcome):
            return found
        return next_step("Assumed the connection's role.")

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

    def wait_stack(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        _subject, _role, stack = looked
        if stack is None:
            return next_step("The stack is deleted.")
        waiting = stacks.wait(stack)
        if waiting is not None:
            return waiting
        return stacks.failed(stack, "stack_delete_failed", "delete the network's stack; destroy it again")

    def record(self, ctx: StepContext) -> Outcome:
        return done({"stackArn": ctx.state.get("stackArn"), "updated": True},
                    "The network's VPC and everything in its stack are deleted.")

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        self._end(ctx, outcome, states.DESTROYED, {"provider_network_id": None, "iac_outputs": {}},
                  outcome.message or "Destroyed.")
