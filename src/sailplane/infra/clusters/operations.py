"""provisionCluster and destroyProvisionedCluster: the operations that create and delete a cluster's CloudFormation
stack (`clusters.template`), shaped like the network's (`networks.operations`).

provision: `plan` (assume the connection's role; the network's subnets), `create_stack` (CreateStack of the stack
named by the cluster, with a client request token of the operation; a stack that exists already is the one this
step started), `wait_stack` and `record` (endpoint, ARN, job runner role). destroy: `plan`, `delete_stack` (with a
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
from sailplane.infra.clusters.provisioned import RECORDS
from sailplane.infra.clusters.template import template
from sailplane.infra.connections.models import Connection
from sailplane.infra.connections.service import Target, target
from sailplane.infra.networks.models import Network
from sailplane.infra.operations.steps import OperationKind, Outcome, StepContext, done, fail, next_step
from sailplane.infra.stacked import StackSteps


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
        return template(subject.resource_id, subject.connection_id, kubernetes_version=subject.kubernetes_version,
                        node_group=subject.node_group, public_access_cidrs=subject.public_access_cidrs,
                        subnet_ids=list(ctx.state["subnets"]), security_group_ids=list(ctx.state["securityGroups"]))


class ProvisionCluster(_Steps):
    def kind(self) -> OperationKind:
        return self.provision_kind(self.plan, self.record)

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

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        result = outcome.result or {}
        self.end(ctx, outcome, states.ACTIVE, {
            "stack_arn": result.get("stackArn"), "cluster_name": result.get("clusterName"),
            "cluster_arn": result.get("clusterArn"), "job_runner_role_arn": result.get("jobRunnerRoleArn"),
            "iac_outputs": result.get("iacOutputs") or {}}, outcome.message or "Provisioned.")


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
