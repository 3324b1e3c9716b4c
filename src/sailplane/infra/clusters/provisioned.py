"""Provisioned clusters: records of EKS clusters in an active network of a connection's account, their rules, and
starting their operations.

A cluster is created `pending` with its `config` (Kubernetes version, the system node group, who may reach the
public API endpoint), checked here: the version is one EKS supports and Sailplane runs on, the node group's sizes
are consistent, the CIDRs are IPv4 ranges, and the instance types exist in the region (asked of EC2 through the
connection's role, so the answer is the account's). provisionCluster and destroyProvisionedCluster are operations
(`clusters.operations`); deleteProvisionedClusterRecord forgets a cluster once nothing of it is in the account.
Organization admins only (CanManageInfrastructure); another organization's clusters are 404.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth.principal import Principal
from sailplane.infra.clusters import states
from sailplane.infra.clusters.models import ProvisionedCluster, ProvisionedClusterTeam
from sailplane.infra.clusters.schemas import (
    ClusterConfigInput,
    CreateProvisionedClusterRequest,
    ExternalClusterConfig,
    ExternalClusterView,
    NodeGroupConfig,
    ProviderMetadata,
    UpdateProvisionedClusterRequest,
)
from sailplane.infra.clusters.template import PROJECT, stack_name_for
from sailplane.infra.connections import instance_types as sizing
from sailplane.infra.connections import service as connections
from sailplane.infra.networks import states as network_states
from sailplane.infra.networks.models import Network
from sailplane.infra.networks.schemas import IacState
from sailplane.infra.operations import service as operations
from sailplane.infra.operations.models import Operation
from sailplane.infra.providers.aws import Aws, CloudError
from sailplane.infra.stacked import Kind, Records
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.errors import conflict, invalid
from sailplane.kit.ids import new_id
from sailplane.kit.pagination import MarkerPage
from sailplane.tenancy.audit import service as audit

RESOURCE: Final = "cluster"
PROVISION, DESTROY, UPDATE = "provision_cluster", "destroy_cluster", "update_cluster"
PROVISION_STEPS = (
    ("plan", "Assume the connection's role and read the network's subnets"),
    ("create_stack", "Create the cluster's CloudFormation stack"),
    ("wait_stack", "Wait for CloudFormation to create the EKS cluster, its system node group and roles"),
    ("record", "Record the cluster's endpoint, ARN and job runner role"),
)
DESTROY_STEPS = (
    ("plan", "Assume the connection's role and find the cluster's stack"),
    ("delete_stack", "Delete the cluster's CloudFormation stack"),
    ("wait_stack", "Wait for CloudFormation to delete the node group, the cluster and its roles"),
    ("record", "Record the cluster as destroyed"),
)
UPDATE_STEPS = (
    ("plan", "Assume the connection's role and read the network's subnets"),
    ("update_stack", "Update the cluster's CloudFormation stack to the new config"),
    ("wait_stack", "Wait for CloudFormation to update the EKS cluster and its system node group"),
    ("record", "Record the cluster's outputs"),
)
# EKS versions in standard support that Sailplane's Sail images are built and tested against.
KUBERNETES_VERSIONS: Final = ("1.32", "1.33", "1.34", "1.35")
DEFAULT_PUBLIC_ACCESS: Final = ("0.0.0.0/0",)
NODE_GROUP: Final = "config.systemNodeGroup"
RECORDS: Final[Records[ProvisionedCluster]] = Records(
    ProvisionedCluster, Kind(RESOURCE, PROVISION, PROVISION_STEPS, DESTROY, DESTROY_STEPS, "destroyProvisionedCluster",
                             "deleteProvisionedClusterRecord"), states.LIFECYCLE)


def get(db: Session, principal: Principal, cluster_id: str) -> ProvisionedCluster:
    return RECORDS.get(db, principal, cluster_id)


def get_in(db: Session, principal: Principal, connection_id: str, cluster_id: str) -> ProvisionedCluster:
    """The cluster of this connection (404 when either is unknown or they do not belong together)."""
    return RECORDS.get_in(db, principal, connection_id, cluster_id)


def list_clusters(db: Session, principal: Principal, page: MarkerPage,
                  connection_id: str | None = None) -> tuple[int, list[ProvisionedCluster], str | None]:
    return RECORDS.listing(db, principal, page, connection_id)


def view(row: ProvisionedCluster) -> ExternalClusterView:
    group = row.node_group or {}
    return ExternalClusterView(
        id=row.id, connection_id=row.connection_id, network_id=row.network_id, cluster_id=row.id, name=row.name,
        region=row.region, status=row.status, status_message=row.status_message,
        config=ExternalClusterConfig(
            kubernetes_version=row.kubernetes_version,
            system_node_group=NodeGroupConfig.model_validate(group) if group else None,
            public_access_cidrs=list(row.public_access_cidrs or [])),
        provider_metadata=ProviderMetadata(cluster_name=row.cluster_name, cluster_arn=row.cluster_arn),
        iac_state=IacState(project_name=row.project_name, stack_name=row.stack_name),
        iac_outputs={str(k): str(v) for k, v in (row.iac_outputs or {}).items()},
        job_runner_role_arn=row.job_runner_role_arn, created_at=row.created_at, created_by=row.created_by,
        updated_at=row.updated_at, updated_by=row.updated_by, last_health_status=row.last_health_status,
        last_health_message=row.last_health_message, last_health_check_at=row.last_health_check_at,
    )


def on_network(db: Session, organization_id: str, network_id: str) -> list[str]:
    """The names of the network's clusters, destroyed ones too (destroyNetwork is refused while any record is left:
    a destroyed network's record could otherwise be deleted, and its clusters' records with it)."""
    return [f"cluster {name}" for name in db.scalars(
        select(ProvisionedCluster.name).where(ProvisionedCluster.organization_id == organization_id,
                                              ProvisionedCluster.network_id == network_id)
        .order_by(ProvisionedCluster.id))]


def on_connection(db: Session, organization_id: str, connection_id: str) -> list[str]:
    return [f"cluster {name}" for name in db.scalars(
        select(ProvisionedCluster.name).where(ProvisionedCluster.organization_id == organization_id,
                                              ProvisionedCluster.connection_id == connection_id)
        .order_by(ProvisionedCluster.id))]


def _config(config: ClusterConfigInput) -> tuple[dict[str, Any], list[str]]:
    """The node group and public access ranges to store, or 422 naming the field that is wrong."""
    if config.kubernetes_version not in KUBERNETES_VERSIONS:
        raise invalid("config.kubernetesVersion", f"{config.kubernetes_version!r} is not supported; one of "
                                                  f"{', '.join(KUBERNETES_VERSIONS)}")
    group = config.system_node_group
    if group.min_size > group.max_size:
        raise invalid(f"{NODE_GROUP}.minSize", f"{group.min_size} is more than maxSize ({group.max_size})")
    if not group.min_size <= group.desired_size <= group.max_size:
        raise invalid(f"{NODE_GROUP}.desiredSize", f"must be between minSize ({group.min_size}) and maxSize "
                                                    f"({group.max_size}), got {group.desired_size}")
    types = [[t.strip() for t in alternatives] for alternatives in group.instance_types]
    if any(not t for alternatives in types for t in alternatives):
        raise invalid(f"{NODE_GROUP}.instanceTypes", "an instance type is empty")
    cidrs: list[str] = []
    for given in (config.public_access_cidrs if config.public_access_cidrs is not None else DEFAULT_PUBLIC_ACCESS):
        try:
            block = ipaddress.ip_network(given.strip(), strict=True)
        except ValueError as exc:
            raise invalid("config.publicAccessCidrs", f"{given!r} is not a valid range in CIDR notation "
                                                      f"({exc})") from None
        if not isinstance(block, ipaddress.IPv4Network):
            raise invalid("config.publicAccessCidrs", f"{given!r} is not an IPv4 range (EKS takes IPv4 only)")
        cidrs.append(str(block))
    node_group = {"name": group.name, "instanceTypes": types, "minSize": group.min_size,
                  "maxSize": group.max_size, "desiredSize": group.desired_size, "diskSizeGb": group.disk_size_gb}
    return node_group, cidrs


def _check_instance_types(db: Session, principal: Principal, connection_id: str, region: str,
                          node_group: dict[str, Any], settings: Settings, aws: Aws) -> None:
    """422 naming `config.systemNodeGroup.instanceTypes` for a type the region does not offer as a node."""
    _, role = connections.request_role(db, connections.get(db, principal, connection_id), settings, aws)
    try:
        offered = {v.instance_type for v in (sizing.view(r) for r in aws.instance_types(role, region)) if v}
    except CloudError as exc:
        raise connections.upstream(exc) from None
    unknown = sorted({t for alternatives in node_group["instanceTypes"] for t in alternatives} - offered)
    if unknown:
        raise invalid(f"{NODE_GROUP}.instanceTypes", f"not an instance type of {region} that can be a Kubernetes "
                                                      f"node: {', '.join(unknown)} (see listInstanceTypes)")


def _network(db: Session, principal: Principal, connection_id: str, network_id: str) -> Network:
    network: Network | None = db.scalar(select(Network).where(Network.organization_id == principal.organization_id,
                                                             Network.id == network_id))
    if network is None or network.connection_id != connection_id:
        raise invalid("networkId", "no such network in the connection")
    if network.status != network_states.ACTIVE:
        raise conflict("network_not_active", f"The network is {network.status}; a cluster needs an active network "
                                             "(provisionNetwork).")
    return network


def create(db: Session, principal: Principal, connection_id: str, body: CreateProvisionedClusterRequest,
           ctx: RequestContext, settings: Settings, aws: Aws) -> ProvisionedCluster:
    conn = connections.get(db, principal, connection_id)
    if body.connection_id is not None and body.connection_id != connection_id:
        raise invalid("connectionId", "differs from the path's connection")
    node_group, cidrs = _config(body.config)
    network = _network(db, principal, connection_id, body.network_id)
    if body.region is not None and body.region != network.region:
        raise invalid("region", f"the network is in {network.region}; a cluster is in its network's region")
    if conn.status != connections.ACTIVE:
        raise conflict("connection_not_verified", "Verify the connection (verifyConnection) before creating a "
                                                  "cluster.")
    RECORDS.name_free(db, connection_id, body.name)
    region, network_id = network.region, network.id
    _check_instance_types(db, principal, connection_id, region, node_group, settings, aws)
    RECORDS.name_free(db, connection_id, body.name)  # again: the connection was released while AWS answered
    _network(db, principal, connection_id, network_id)
    cluster_id = new_id()
    row = ProvisionedCluster(
        id=cluster_id, organization_id=principal.organization_id, connection_id=connection_id,
        network_id=network_id, name=body.name, region=region, kubernetes_version=body.config.kubernetes_version,
        node_group=node_group, public_access_cidrs=cidrs, project_name=PROJECT, stack_name=stack_name_for(cluster_id),
        iac_outputs={}, status=states.PENDING,
        status_message="Recorded; provision the cluster (provisionCluster) to build it.",
        created_by=principal.actor_id, updated_by=principal.actor_id)
    db.add(row)
    db.flush()
    audit.record(db, ctx, principal, "cluster.create", RESOURCE, row.id,
                 details={"name": row.name, "connectionId": connection_id, "networkId": network_id,
                          "kubernetesVersion": row.kubernetes_version})
    return row


def update(db: Session, principal: Principal, connection_id: str, cluster_id: str,
           body: UpdateProvisionedClusterRequest, ctx: RequestContext, settings: Settings,
           aws: Aws) -> ProvisionedCluster:
    """Rename the cluster; change its config: as recorded while it is not provisioned (pending or destroyed), in
    place while it is active (the update operation: its stack updated, the cluster serving meanwhile)."""
    row = get_in(db, principal, connection_id, cluster_id)
    changed: dict[str, Any] = {}
    if body.config is not None:
        node_group, cidrs = _config(body.config)
        config = {"kubernetesVersion": body.config.kubernetes_version, "systemNodeGroup": node_group,
                  "publicAccessCidrs": cidrs}
        previous = _config_of(row)
        if config != previous:
            RECORDS.busy(db, principal, row)
            if row.status not in (*states.DELETABLE, states.ACTIVE):
                raise conflict("cluster_not_updatable", f"The cluster is {row.status}: its config changes while it "
                                                        "is pending, active or destroyed.")
            if row.status == states.ACTIVE:
                _check_in_place(previous, config)
            if node_group["instanceTypes"] != (row.node_group or {}).get("instanceTypes"):
                region = row.region
                _check_instance_types(db, principal, connection_id, region, node_group, settings, aws)
                row = get_in(db, principal, connection_id, cluster_id)
                RECORDS.busy(db, principal, row)
                if _config_of(row) != previous or row.status not in (*states.DELETABLE, states.ACTIVE):
                    raise conflict("cluster_busy", "The cluster changed while its instance types were checked; "
                                                   "send the update again.")
            if row.status == states.ACTIVE:
                if not states.transition(db, row.id, states.UPDATING, source=(states.ACTIVE,), values={
                        "status_message": "Updating the cluster's stack to the new config.",
                        "updated_by": principal.actor_id}):
                    raise conflict("cluster_busy", "The cluster changed meanwhile; send the update again.")
                op = operations.start(db, principal, UPDATE, UPDATE_STEPS, RESOURCE, row.id, state={
                    "stackName": row.stack_name, "stackArn": row.stack_arn, "previous": previous})
                changed["operationId"] = op.id
            row.kubernetes_version = body.config.kubernetes_version
            row.node_group = node_group
            row.public_access_cidrs = cidrs
            changed["config"] = config
    if body.name is not None and body.name != row.name:
        RECORDS.name_free(db, connection_id, body.name, other_than=row.id)
        row.name = changed["name"] = body.name
    if changed:
        row.updated_by = principal.actor_id
        row.updated_at = utcnow()
        db.flush()
        audit.record(db, ctx, principal, "cluster.update", RESOURCE, row.id, details=changed)
    return row


def _config_of(row: ProvisionedCluster) -> dict[str, Any]:
    return {"kubernetesVersion": row.kubernetes_version, "systemNodeGroup": dict(row.node_group or {}),
            "publicAccessCidrs": list(row.public_access_cidrs or [])}


def _minor(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor)


def _check_in_place(previous: dict[str, Any], config: dict[str, Any]) -> None:
    """What EKS changes in place on a running cluster: its Kubernetes version one minor version up at a time, never
    down; the node group's sizes, instance types and disk (the group is replaced for the last two), not its name."""
    before, after = _minor(previous["kubernetesVersion"]), _minor(config["kubernetesVersion"])
    if after < before:
        raise invalid("config.kubernetesVersion", f"EKS cannot downgrade a cluster: it runs "
                                                  f"{previous['kubernetesVersion']}")
    if after[0] != before[0] or after[1] > before[1] + 1:
        raise invalid("config.kubernetesVersion", f"EKS upgrades one minor version at a time: from "
                                                  f"{previous['kubernetesVersion']} to {before[0]}.{before[1] + 1}")
    if config["systemNodeGroup"]["name"] != previous["systemNodeGroup"].get("name"):
        raise invalid(f"{NODE_GROUP}.name", "the system node group of a provisioned cluster keeps its name "
                                            f"({previous['systemNodeGroup'].get('name')})")


def delete_record(db: Session, principal: Principal, cluster_id: str, ctx: RequestContext) -> None:
    """Forget the cluster: only once nothing of it is left in the account (destroyed, or never provisioned). Its
    team links go with it (as a catalog's: explicitly, not left to the foreign key)."""
    RECORDS.delete_record(db, principal, cluster_id, ctx)
    db.execute(delete(ProvisionedClusterTeam).where(ProvisionedClusterTeam.cluster_id == cluster_id))
    db.flush()


def start_provision(db: Session, principal: Principal, connection_id: str, cluster_id: str,
                    ctx: RequestContext) -> Operation:
    """The cluster's provisioning operation: the one already pending or running, else a new one (its network must
    still be active)."""
    return RECORDS.start_provision(
        db, principal, connection_id, cluster_id, ctx, "Provisioning the EKS cluster.",
        after=lambda row: _network(db, principal, connection_id, row.network_id))


def start_destroy(db: Session, principal: Principal, connection_id: str, cluster_id: str,
                  ctx: RequestContext) -> Operation:
    """The cluster's destroy operation: the one already pending or running, else a new one."""
    return RECORDS.start_destroy(db, principal, connection_id, cluster_id, ctx, "Destroying the EKS cluster.")
