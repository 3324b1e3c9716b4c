"""provisionNetwork and destroyNetwork: the operations that create and delete a network's CloudFormation stack.

provision: `plan` (assume the connection's role, choose the zones), `create_stack` (CreateStack of the stack named
by the network, `iacState.stackName`, with a client request token of the operation; when CloudFormation says the
stack exists already this step ran before its end was recorded and it goes on with that stack), `wait_stack` (until
CloudFormation settles; a failed create fails the operation with its reason) and `record` (the outputs). destroy:
`plan`, `delete_stack` (DeleteStack with a token; a stack already gone or going is not deleted again), `wait_stack`,
`record`. Each step may run twice (a killed runner), so each looks before it acts (or acts so that a repeat is
refused, then looks). Temporary credentials are never stored: each step assumes the role again. The operation's end
moves the network on (`finished`, through `networks.states`): active with its outputs, destroyed, or failed with the
operation's message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from sailplane.infra import stacks
from sailplane.infra.connections.models import Connection
from sailplane.infra.connections.service import Target, target
from sailplane.infra.networks import states
from sailplane.infra.networks.models import Network
from sailplane.infra.networks.service import RECORDS
from sailplane.infra.networks.template import MAX_ZONES, MIN_ZONES, template
from sailplane.infra.operations.steps import OperationKind, Outcome, StepContext, done, fail, next_step
from sailplane.infra.providers.aws import CloudError
from sailplane.infra.stacked import StackSteps


@dataclass(frozen=True)
class Subject:
    """What a step needs of the network and its connection, read in one short transaction."""

    resource_id: str
    region: str
    cidr: str
    stack_name: str
    stack_arn: str | None
    adopted: bool
    provider_network_id: str | None
    connection: Target


class _Steps(StackSteps[Subject]):
    resource = RECORDS.resource
    lifecycle = states.LIFECYCLE

    def subject(self, ctx: StepContext) -> Subject | Outcome:
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

    def body(self, subject: Subject, ctx: StepContext) -> dict[str, Any]:
        return template(subject.resource_id, subject.cidr, list(ctx.state["zones"]))


class ProvisionNetwork(_Steps):
    def kind(self) -> OperationKind:
        return self.provision_kind(self.plan, self.record)

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

    def record(self, ctx: StepContext) -> Outcome:
        outputs = dict(ctx.state.get("outputs") or {})
        return done({"stackArn": ctx.state.get("stackArn"), "providerNetworkId": outputs.get("VpcId"),
                     "iacOutputs": outputs}, f"The network's VPC {outputs.get('VpcId')} is ready.")

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        result = outcome.result or {}
        self.end(ctx, outcome, states.ACTIVE, {
            "stack_arn": result.get("stackArn"), "provider_network_id": result.get("providerNetworkId"),
            "iac_outputs": result.get("iacOutputs") or {}}, outcome.message or "Provisioned.")


class DestroyNetwork(_Steps):
    def kind(self) -> OperationKind:
        return self.destroy_kind(self.plan, self.record)

    def plan(self, ctx: StepContext) -> Outcome:
        subject = self.subject(ctx)
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

    def record(self, ctx: StepContext) -> Outcome:
        return done({"stackArn": ctx.state.get("stackArn"), "updated": True},
                    "The network's VPC and everything in its stack are deleted.")

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        self.end(ctx, outcome, states.DESTROYED, {"provider_network_id": None, "iac_outputs": {}},
                 outcome.message or "Destroyed.")
