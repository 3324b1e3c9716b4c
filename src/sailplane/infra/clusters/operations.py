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
from sailplane.infra.clusters.provisioned import DESTROY, DESTROY_STEPS, PROVISION, PROVISION_STEPS
from sailplane.infra.clusters.template import template
from sailplane.infra.connections.models import Connection
from sailplane.infra.connections.service import Target, assume, target
from sailplane.infra.networks.models import Network
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
    """What a step needs of the cluster, its network and its connection, read in one short transaction."""

    cluster_id: str
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


class _Steps:
    def __init__(self, db: Database, aws: Aws, encryptor: Encryptor) -> None:
        self.db = db
        self.aws = aws
        self.encryptor = encryptor

    def _subject(self, ctx: StepContext) -> Subject | Outcome:
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

    def _stack(self, ctx: StepContext) -> tuple[Subject, AssumedRole, dict[str, Any] | None] | Outcome:
        subject = self._subject(ctx)
        if isinstance(subject, Outcome):
            return subject
        try:
            role = assume(self.aws, subject.connection)
            return subject, role, self.aws.describe_stack(role, subject.region,
                                                          subject.stack_arn or subject.stack_name)
        except CloudError as exc:
            return stacks.cloud_failure(exc)

    def _end(self, ctx: StepContext, outcome: Outcome, success: str, values: dict[str, Any], message: str) -> None:
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


class ProvisionCluster(_Steps):
    def kind(self) -> OperationKind:
        run = {"plan": self.plan, "create_stack": self.create_stack, "wait_stack": self.wait_stack,
               "record": self.record}
        return OperationKind(PROVISION, tuple(Step(n, d, run[n]) for n, d in PROVISION_STEPS), finished=self.finished)

    def plan(self, ctx: StepContext) -> Outcome:
        subject = self._subject(ctx)
        if isinstance(subject, Outcome):
            return subject
        subnets = _subnets(subject.network_outputs)
        if len(subnets) < 1:
            return fail("network_without_subnets", "The cluster's network has no subnets for its nodes.")
        try:
            assume(self.aws, subject.connection)
        except CloudError as exc:
            return stacks.cloud_failure(exc)
        group = subject.network_outputs.get("SecurityGroupId")
        return next_step(f"The cluster's nodes go in {', '.join(subnets)}.", subnets=subnets,
                         securityGroups=[str(group)] if group else [], stackName=subject.stack_name)

    def create_stack(self, ctx: StepContext) -> Outcome:
        looked = self._stack(ctx)
        if isinstance(looked, Outcome):
            return looked
        subject, role, stack = looked
        if stack is not None:
            if stacks.status(stack) in ("ROLLBACK_COMPLETE", "CREATE_FAILED", "ROLLBACK_FAILED"):
                return stacks.failed(stack, "stack_create_failed", "create the cluster's stack; destroy the "
                                     "cluster (destroyProvisionedCluster), then provision it again")
            return next_step(f"The stack {subject.stack_name} exists ({stacks.status(stack)}).",
                             stackArn=str(stack["StackId"]))
        body = template(subject.cluster_id, subject.connection_id, kubernetes_version=subject.kubernetes_version,
                        node_group=subject.node_group, public_access_cidrs=subject.public_access_cidrs,
                        subnet_ids=list(ctx.state["subnets"]), security_group_ids=list(ctx.state["securityGroups"]))
        try:
            arn = self.aws.create_stack(role, subject.region, subject.stack_name, body,
                                        token=f"sailplane-provision-{ctx.operation_id}",
                                        tags={"sailplane:cluster": subject.cluster_id})
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
            return fail("stack_not_found", f"The stack {subject.stack_name} disappeared; provision the cluster "
                                           "again.", retryable=True)
        waiting = stacks.wait(stack, delay=15.0)  # an EKS cluster takes ten minutes or more
        if waiting is not None:
            return waiting
        if stacks.status(stack) not in CREATED:
            return stacks.failed(stack, "stack_create_failed", "create the cluster's stack; destroy the cluster "
                                 "(destroyProvisionedCluster), then provision it again")
        return next_step(f"The stack is {stacks.status(stack)}.", stackArn=str(stack["StackId"]),
                         outputs=stacks.outputs(stack))

    def record(self, ctx: StepContext) -> Outcome:
        outputs = dict(ctx.state.get("outputs") or {})
        return done({"stackArn": ctx.state.get("stackArn"), "clusterName": outputs.get("ClusterName"),
                     "clusterArn": outputs.get("ClusterArn"), "jobRunnerRoleArn": outputs.get("JobRunnerRoleArn"),
                     "iacOutputs": outputs}, f"The EKS cluster {outputs.get('ClusterName')} is ready.")

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        result = outcome.result or {}
        self._end(ctx, outcome, states.ACTIVE, {
            "stack_arn": result.get("stackArn"), "cluster_name": result.get("clusterName"),
            "cluster_arn": result.get("clusterArn"), "job_runner_role_arn": result.get("jobRunnerRoleArn"),
            "iac_outputs": result.get("iacOutputs") or {}}, outcome.message or "Provisioned.")


class DestroyCluster(_Steps):
    def kind(self) -> OperationKind:
        run = {"plan": self.plan, "delete_stack": self.delete_stack, "wait_stack": self.wait_stack,
               "record": self.record}
        return OperationKind(DESTROY, tuple(Step(n, d, run[n]) for n, d in DESTROY_STEPS), finished=self.finished)

    def plan(self, ctx: StepContext) -> Outcome:
        subject = self._subject(ctx)
        if isinstance(subject, Outcome):
            return subject
        try:
            assume(self.aws, subject.connection)
        except CloudError as exc:
            return stacks.cloud_failure(exc)
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
        waiting = stacks.wait(stack, delay=15.0)
        if waiting is not None:
            return waiting
        return stacks.failed(stack, "stack_delete_failed", "delete the cluster's stack; destroy it again")

    def record(self, ctx: StepContext) -> Outcome:
        return done({"stackArn": ctx.state.get("stackArn")}, "The EKS cluster and everything in its stack are "
                                                              "deleted.")

    def finished(self, ctx: StepContext, outcome: Outcome) -> None:
        self._end(ctx, outcome, states.DESTROYED, {"cluster_arn": None, "iac_outputs": {}},
                  outcome.message or "Destroyed.")
