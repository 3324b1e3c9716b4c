"""provisionCluster, updateProvisionedCluster (of an active cluster) and destroyProvisionedCluster: the operations that
create, update and delete a cluster's CloudFormation stack (`clusters.template`), shaped like the network's
(`networks.operations`).

provision: `plan` (assume the connection's role; the network's subnets), `create_stack` (CreateStack of the stack
named by the cluster, with a client request token of the operation; a stack that exists already is the one this step
started), `wait_stack` and `record` (endpoint, ARN, job runner role). update: `plan`, `update_stack` (UpdateStack
with the config the API recorded, with a token; "no updates" when a killed runner had asked already), `wait_stack`,
`record`; a failed update (the stack rolled back, or never changed) leaves the cluster active with the config it
runs, only a stack CloudFormation could not roll back leaves it failed. destroy: `plan`, `delete_stack` (with a
token; a stack gone or going is not deleted again), `wait_stack`, `record`. Each step looks before it acts (a killed
runner runs it again); credentials are never stored. The operation's end moves the cluster on through
`clusters.states`: active with its outputs, destroyed, or failed with the operation's message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from sailplane.infra import stacks
from sailplane.infra.clusters import states
from sailplane.infra.clusters.models import ProvisionedCluster
from sailplane.infra.clusters.provisioned import RECORDS, UPDATE, UPDATE_STEPS
from sailplane.infra.clusters.template import template
from sailplane.infra.connections.models import Connection
from sailplane.infra.connections.service import Target, target
from sailplane.infra.networks.models import Network
from sailplane.infra.operations.steps import (
    OperationKind,
    Outcome,
    Step,
    StepContext,
    done,
    fail,
    next_step,
)
from sailplane.infra.providers.aws import CloudError
from sailplane.infra.stacked import CREATED, StackSteps

ROLLBACK_FAILED = "UPDATE_ROLLBACK_FAILED"


@dataclass(frozen=True)
class Subject:
    """What a step needs of the cluster, its network and its connection, read in one short transaction."""

    resource_id: str
    connection_id: str
    region: str
    stack_name: str
    stack_arn: str | None
    kubernetes_version: str
    node_group: dict[str, Any]
    public_access_cidrs: list[str]
    network_outputs: dict[str, Any]
    connection: Target


def _subnets(outputs: dict[str, Any]) -> list[str]:
    """The nodes' subnets: a provisioned network's private ones, or an adopted VPC's."""
    raw = str(outputs.get("PrivateSubnetIds") or outputs.get("SubnetIds") or "")
    return [s for s in raw.split(",") if s]


class _Steps(StackSteps[Subject]):
    resource = RECORDS.resource
    lifecycle = states.LIFECYCLE
    poll_seconds = 15.0  # an EKS cluster takes ten minutes or more

    def subject(self, ctx: StepContext) -> Subject | Outcome:
        with self.db.session() as db:
            row = db.scalar(select(ProvisionedCluster).where(ProvisionedCluster.id == ctx.resource_id,
                                                             ProvisionedCluster.organization_id
                                                             == ctx.organization_id))
            if row is None:
                return fail("cluster_deleted", "The cluster was deleted.")
            conn = db.scalar(select(Connection).where(Connection.id == row.connection_id))
            network = db.scalar(select(Network).where(Network.id == row.network_id))
            if conn is None or network is None:
                return fail("connection_deleted", "The cluster's connection or network was deleted.")
            return Subject(row.id, row.connection_id, row.region, str(ctx.state.get("stackName") or row.stack_name),
                           ctx.state.get("stackArn") or row.stack_arn, row.kubernetes_version,
                           dict(row.node_group or {}), list(row.public_access_cidrs or []),
                           dict(network.iac_outputs or {}), target(conn, self.encryptor))

    def body(self, subject: Subject, ctx: StepContext) -> dict[str, Any]:
        return template(subject.resource_id, subject.connection_id, connection_role_arn=subject.connection.role_arn,
                        kubernetes_version=subject.kubernetes_version,
                        node_group=subject.node_group, public_access_cidrs=subject.public_access_cidrs,
                        subnet_ids=list(ctx.state["subnets"]), security_group_ids=list(ctx.state["securityGroups"]))


class _Planned(_Steps):
    def plan(self, ctx: StepContext) -> Outcome:
        subject = self.subject(ctx)
        if isinstance(subject, Outcome):
            return subject
        subnets = _subnets(subject.network_outputs)
        if len(subnets) < 1:
            return fail("network_without_subnets", "The cluster's network has no subnets for its nodes.")
        role = stacks.step_role(self.aws, subject.connection)
        if isinstance(role, Outcome):
            return role
        group = subject.network_outputs.get("SecurityGroupId")
        return next_step(f"The cluster's nodes go in {', '.join(subnets)}.", subnets=subnets,
                         securityGroups=[str(group)] if group else [], stackName=subject.stack_name)

    def record(self, ctx: StepContext) -> Outcome:
        outputs = dict(ctx.state.get("outputs") or {})
        return done({"stackArn": ctx.state.get("stackArn"), "clusterName": outputs.get("ClusterName"),
                     "clusterArn": outputs.get("ClusterArn"), "jobRunnerRoleArn": outputs.get("JobRunnerRoleArn"),
                     "iacOutputs": outputs}, f"The EKS cluster {outputs.get('ClusterName')} is ready.")

    @staticmethod
    def outputs(outcome: Outcome) -> dict[str, Any]:
        result = outcome.result or {}
        return {"stack_arn": result.get("stackArn"), "cluster_name": result.get("clusterName"),
                "cluster_arn": result.get("clusterArn"), "job_runner_role_arn": result.get("jobRunnerRoleArn"),
                "iac_outputs": result.get("iacOutputs") or {}}


class ProvisionCluster(_Planned):
    def kind(self) -> OperationKind:
        return self.provision_kind(self.plan, self.record)

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        self.end(ctx, outcome, states.ACTIVE, self.outputs(outcome), outcome.message or "Provisioned.")


class UpdateCluster(_Planned):
    """An active cluster's stack updated to the config the API recorded (the previous one is in the operation's
    state, for a failed update to put back)."""

    def kind(self) -> OperationKind:
        run = {"plan": self.plan, "update_stack": self.update_stack, "wait_stack": self.wait_updated,
               "record": self.record}
        return OperationKind(UPDATE, tuple(Step(n, d, run[n]) for n, d in UPDATE_STEPS), finished=self.finished)

    def update_stack(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        subject, role, stack = looked
        if stack is None:
            return fail("stack_not_found", f"The cluster's stack {subject.stack_name} is not in the account; "
                                           "destroy the cluster (destroyProvisionedCluster) and provision it again.")
        waiting = stacks.wait(stack, delay=self.poll_seconds)  # busy: this update, asked before a restart
        if waiting is not None:
            return waiting
        try:
            changed = self.aws.update_stack(role, subject.region, str(stack["StackId"]), self.body(subject, ctx), {},
                                            token=f"sailplane-update-{ctx.operation_id}")
        except CloudError as exc:
            return stacks.cloud_failure(exc)
        if not changed:
            return next_step("The stack already has this config.", stackArn=str(stack["StackId"]), updated=False,
                             outputs=stacks.outputs(stack))
        return next_step(f"Asked CloudFormation to update the stack {subject.stack_name}.",
                         stackArn=str(stack["StackId"]), updated=True)

    def wait_updated(self, ctx: StepContext) -> Outcome:
        if not ctx.state.get("updated"):
            return next_step("Nothing to wait for: the stack had this config.")
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        subject, _role, stack = looked
        if stack is None:
            return fail("stack_not_found", f"The stack {subject.stack_name} disappeared while it was updated.")
        waiting = stacks.wait(stack, delay=self.poll_seconds)
        if waiting is not None:
            return waiting
        if stacks.status(stack) not in CREATED:
            return stacks.failed(stack, "stack_update_failed", "update the cluster's stack (it was rolled back: "
                                                               "the cluster runs its previous config)")
        return next_step(f"The stack is {stacks.status(stack)}.", outputs=stacks.outputs(stack))

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        """Active with the new outputs; after a failure, active as it runs (the previous config put back) unless
        CloudFormation could not roll the stack back (failed: destroy it, or update it again)."""
        def failure(failed: Outcome, text: str) -> tuple[str, dict[str, Any]]:
            message = f"The update failed: {text}"
            if (failed.error or {}).get("causedBy") == ROLLBACK_FAILED:
                return states.FAILED, {"status_message": message}
            previous = ctx.state.get("previous") or {}
            return states.ACTIVE, {"kubernetes_version": previous.get("kubernetesVersion"),
                                   "node_group": previous.get("systemNodeGroup"),
                                   "public_access_cidrs": previous.get("publicAccessCidrs"),
                                   "status_message": f"{message}; the cluster runs its previous config."}

        self.end(ctx, outcome, states.ACTIVE, self.outputs(outcome), outcome.message or "Updated.",
                 working=states.UPDATING, failure=failure)


class DestroyCluster(_Steps):
    def kind(self) -> OperationKind:
        return self.destroy_kind(self.plan, self.record)

    def plan(self, ctx: StepContext) -> Outcome:
        found = self._role(ctx)
        if isinstance(found, Outcome):
            return found
        return next_step("Assumed the connection's role.")

    def record(self, ctx: StepContext) -> Outcome:
        return done({"stackArn": ctx.state.get("stackArn")}, "The EKS cluster and everything in its stack are "
                                                              "deleted.")

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        self.end(ctx, outcome, states.DESTROYED, {"cluster_arn": None, "iac_outputs": {}},
                 outcome.message or "Destroyed.")
