"""Networks: records of VPCs in a connection's account, their rules, and starting their operations.

A network is created `pending` with its range (`config.cidr`, `cidr`); provisionNetwork starts the operation that
builds it (`networks.operations`), destroyNetwork the one that tears it down, and deleteNetworkRecord forgets it once
nothing of ours is left in the account. A network may instead adopt an existing VPC (`providerNetworkId`): it is
read through the connection's role and the network is `active` at once, never provisioned nor deleted by us.

What uses a network (provisioned clusters, later catalogs) refuses its destruction: the router passes those checks
to `start_destroy` (`users`), an explicit call, as deletes do elsewhere. Organization admins only
(CanManageInfrastructure); another organization's networks and connections are 404.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth.principal import Principal
from sailplane.infra.connections import service as connections
from sailplane.infra.networks import cidr as ranges
from sailplane.infra.networks import states
from sailplane.infra.networks.models import Network
from sailplane.infra.networks.schemas import (
    CreateNetworkRequest,
    IacState,
    NetworkConfig,
    NetworkView,
    UpdateNetworkRequest,
)
from sailplane.infra.networks.template import PROJECT, stack_name_for
from sailplane.infra.operations import service as operations
from sailplane.infra.operations.models import Operation
from sailplane.infra.providers.aws import Aws, CloudError, known_regions
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import release
from sailplane.kit.errors import ApiError, conflict, invalid, not_found
from sailplane.kit.ids import new_id
from sailplane.kit.pagination import MarkerPage, apply_marker, count, split_marker
from sailplane.tenancy.audit import service as audit

RESOURCE = "network"
PROVISION, DESTROY = "provision_network", "destroy_network"
PROVISION_STEPS = (
    ("plan", "Assume the connection's role and choose the availability zones"),
    ("create_stack", "Create the network's CloudFormation stack"),
    ("wait_stack", "Wait for CloudFormation to create the VPC, subnets, routing and security group"),
    ("record", "Record the stack's outputs"),
)
DESTROY_STEPS = (
    ("plan", "Assume the connection's role and find the network's stack"),
    ("delete_stack", "Delete the network's CloudFormation stack"),
    ("wait_stack", "Wait for CloudFormation to delete the VPC and everything in it"),
    ("record", "Record the network as destroyed"),
)
# (db, organization ID, network ID) → the names of what uses the network (empty: nothing).
UsersOf = Callable[[Session, str, str], list[str]]


def _scoped(principal: Principal) -> Any:
    return select(Network).where(Network.organization_id == principal.organization_id)


def get(db: Session, principal: Principal, network_id: str) -> Network:
    found: Network | None = db.scalar(_scoped(principal).where(Network.id == network_id))
    if found is None:
        raise not_found("network")
    return found


def get_in(db: Session, principal: Principal, connection_id: str, network_id: str) -> Network:
    """The network of this connection (404 when either is unknown or they do not belong together)."""
    connections.get(db, principal, connection_id)
    row = get(db, principal, network_id)
    if row.connection_id != connection_id:
        raise not_found("network")
    return row


def list_networks(db: Session, principal: Principal, page: MarkerPage,
                  connection_id: str | None = None) -> tuple[int, list[Network], str | None]:
    stmt = _scoped(principal)
    if connection_id is not None:
        connections.get(db, principal, connection_id)
        stmt = stmt.where(Network.connection_id == connection_id)
    rows = list(db.scalars(apply_marker(stmt, Network.id, page)))
    items, marker = split_marker(rows, page)
    return count(db, stmt), items, marker


def view(row: Network) -> NetworkView:
    iac = None if row.adopted else IacState(project_name=row.project_name, stack_name=row.stack_name)
    return NetworkView(
        id=row.id, connection_id=row.connection_id, name=row.name, region=row.region,
        provider_network_id=row.provider_network_id, config=NetworkConfig(cidr=row.cidr), iac_state=iac,
        iac_outputs={str(k): str(v) for k, v in (row.iac_outputs or {}).items()}, status=row.status,
        status_message=row.status_message, created_at=row.created_at, created_by=row.created_by,
        updated_at=row.updated_at, updated_by=row.updated_by,
    )


def on_connection(db: Session, organization_id: str, connection_id: str) -> list[str]:
    """The names of the connection's networks (deleteConnection is refused while there are any)."""
    return list(db.scalars(select(Network.name).where(Network.organization_id == organization_id,
                                                      Network.connection_id == connection_id)
                           .order_by(Network.id)))


def _name_free(db: Session, connection_id: str, name: str, other_than: str | None = None) -> None:
    stmt = select(Network.id).where(Network.connection_id == connection_id, Network.name == name)
    if other_than is not None:
        stmt = stmt.where(Network.id != other_than)
    if db.scalar(stmt.limit(1)) is not None:
        raise conflict("network_name_taken", "A network with this name already exists in the connection.")


def _others(db: Session, connection_id: str, other_than: str | None = None) -> list[tuple[str, str]]:
    """(name, cidr) of the connection's networks that hold (or will hold) a VPC: all but the destroyed."""
    stmt = select(Network.name, Network.cidr).where(Network.connection_id == connection_id,
                                                    Network.status != states.DESTROYED)
    if other_than is not None:
        stmt = stmt.where(Network.id != other_than)
    return [(str(name), str(block)) for name, block in db.execute(stmt).all()]


def _adopt(db: Session, principal: Principal, connection_id: str, region: str, vpc_id: str, settings: Settings,
           aws: Aws) -> tuple[str, dict[str, str]]:
    """The adopted VPC's range and outputs, read through the connection's role (422 when there is no such VPC)."""
    row = connections.get(db, principal, connection_id)
    if row.status != connections.ACTIVE:
        raise conflict("connection_not_verified", "Verify the connection (verifyConnection) before adopting a VPC.")
    found = connections.target(row, Encryptor(settings.secret_key))
    release(db)  # AWS may take seconds
    try:
        role = connections.assume(aws, found)
        vpc = aws.vpc(role, region, vpc_id)
    except CloudError as exc:
        raise ApiError(502, "cloud_provider_error", str(exc), caused_by=exc.code, retryable=not exc.denied) from None
    if vpc is None:
        raise invalid("providerNetworkId", f"no VPC {vpc_id} in {region} of the connection's account")
    found_vpc, subnets = vpc
    zones = sorted({str(s.get("AvailabilityZone")) for s in subnets if s.get("AvailabilityZone")})
    outputs = {"VpcId": vpc_id, "VpcCidr": str(found_vpc.get("CidrBlock", "")),
               "SubnetIds": ",".join(sorted(str(s["SubnetId"]) for s in subnets)),
               "AvailabilityZones": ",".join(zones)}
    return outputs["VpcCidr"], outputs


def create(db: Session, principal: Principal, connection_id: str, body: CreateNetworkRequest, ctx: RequestContext,
           settings: Settings, aws: Aws) -> Network:
    conn = connections.get(db, principal, connection_id)
    region = body.region or conn.region
    if region not in known_regions():
        raise invalid("region", f"unknown AWS region {region!r}")
    _name_free(db, connection_id, body.name)
    outputs: dict[str, str] = {}
    if body.provider_network_id is not None:
        block, outputs = _adopt(db, principal, connection_id, region, body.provider_network_id, settings, aws)
        if body.config is not None and body.config.cidr != block:
            raise invalid(ranges.FIELD, f"the VPC {body.provider_network_id} is {block}, not {body.config.cidr}")
        network = ranges.parse_any(block)
        _name_free(db, connection_id, body.name)  # again: the connection was released while AWS answered
    elif body.config is None:
        raise invalid("config", "required (config.cidr), unless providerNetworkId names a VPC to adopt")
    else:
        network = ranges.parse(body.config.cidr)
    ranges.check_free(network, _others(db, connection_id))
    network_id = new_id()
    adopted = body.provider_network_id is not None
    row = Network(id=network_id, organization_id=principal.organization_id, connection_id=connection_id,
                  name=body.name, region=region, cidr=str(network), provider_network_id=body.provider_network_id,
                  adopted=adopted, project_name=None if adopted else PROJECT,
                  stack_name=None if adopted else stack_name_for(network_id), iac_outputs=outputs,
                  status=states.ACTIVE if adopted else states.PENDING,
                  status_message=(f"Adopted the existing VPC {body.provider_network_id}." if adopted
                                  else "Recorded; provision the network (provisionNetwork) to build its VPC."),
                  created_by=principal.actor_id, updated_by=principal.actor_id)
    db.add(row)
    db.flush()
    audit.record(db, ctx, principal, "network.create", RESOURCE, row.id,
                 details={"name": row.name, "connectionId": connection_id, "cidr": row.cidr,
                          "providerNetworkId": row.provider_network_id})
    return row


def update(db: Session, principal: Principal, connection_id: str, network_id: str, body: UpdateNetworkRequest,
           ctx: RequestContext) -> Network:
    row = get_in(db, principal, connection_id, network_id)
    changed: dict[str, Any] = {}
    if body.name is not None and body.name != row.name:
        _name_free(db, connection_id, body.name, other_than=row.id)
        row.name = changed["name"] = body.name
    if body.config is not None:
        network = ranges.parse(body.config.cidr)
        if str(network) != row.cidr:
            if row.status != states.PENDING:
                raise conflict("network_provisioned", "The range of a provisioned or adopted network cannot "
                                                      "change; create another network.")
            ranges.check_free(network, _others(db, connection_id, other_than=row.id))
            row.cidr = changed["cidr"] = str(network)
    if changed:
        row.updated_by = principal.actor_id
        row.updated_at = utcnow()
        db.flush()
        audit.record(db, ctx, principal, "network.update", RESOURCE, row.id, details=changed)
    return row


def _busy(db: Session, principal: Principal, row: Network) -> None:
    if operations.any_active(db, principal.organization_id, RESOURCE, row.id):
        raise conflict("network_busy", "An operation on this network is still running; wait for it to end.")


def start_provision(db: Session, principal: Principal, connection_id: str, network_id: str,
                    ctx: RequestContext) -> Operation:
    """The network's provisioning operation: the one already pending or running, else a new one."""
    row = get_in(db, principal, connection_id, network_id)
    running = operations.active(db, principal.organization_id, PROVISION, RESOURCE, row.id)
    if running is not None:
        return running
    if row.adopted:
        raise conflict("network_adopted", "The network adopted an existing VPC: there is nothing to provision.")
    _busy(db, principal, row)
    if not states.TABLE.allowed(row.status, states.PROVISIONING):
        raise conflict("network_not_provisionable", f"The network is {row.status}; only a pending, failed or "
                                                    "destroyed network is provisioned.")
    if connections.get(db, principal, connection_id).status != connections.ACTIVE:
        raise conflict("connection_not_verified", "Verify the connection (verifyConnection) before provisioning.")
    states.transition(db, row.id, states.PROVISIONING, values={
        "status_message": "Provisioning the VPC.", "updated_by": principal.actor_id})
    op = operations.start(db, principal, PROVISION, PROVISION_STEPS, RESOURCE, row.id,
                          state={"stackName": row.stack_name})
    audit.record(db, ctx, principal, "network.provision", RESOURCE, row.id, details={"operationId": op.id})
    return op


def start_destroy(db: Session, principal: Principal, connection_id: str, network_id: str, ctx: RequestContext,
                  users: Sequence[UsersOf] = ()) -> Operation:
    """The network's destroy operation: the one already pending or running, else a new one (409 while anything
    in `users` says the network is used)."""
    row = get_in(db, principal, connection_id, network_id)
    running = operations.active(db, principal.organization_id, DESTROY, RESOURCE, row.id)
    if running is not None:
        return running
    _busy(db, principal, row)
    using = [name for check in users for name in check(db, principal.organization_id, row.id)]
    if using:
        raise conflict("network_in_use", f"The network is used by {', '.join(using)}; remove them first.")
    if not states.TABLE.allowed(row.status, states.DESTROYING):
        raise conflict("network_not_destroyable", f"The network is {row.status}: there is nothing to destroy"
                       + ("; delete its record (deleteNetworkRecord)." if row.status in states.DELETABLE else "."))
    states.transition(db, row.id, states.DESTROYING, values={
        "status_message": "Destroying the VPC.", "updated_by": principal.actor_id})
    op = operations.start(db, principal, DESTROY, DESTROY_STEPS, RESOURCE, row.id,
                          state={"stackName": row.stack_name, "stackArn": row.stack_arn})
    audit.record(db, ctx, principal, "network.destroy", RESOURCE, row.id, details={"operationId": op.id})
    return op


def delete_record(db: Session, principal: Principal, network_id: str, ctx: RequestContext) -> None:
    """Forget the network: only once nothing of ours is left in the account (destroyed, or never provisioned)."""
    row = get(db, principal, network_id)
    _busy(db, principal, row)
    if row.status not in states.DELETABLE:
        raise conflict("network_not_destroyed", f"The network is {row.status}: destroy it (destroyNetwork) before "
                                                "deleting its record.")
    audit.record(db, ctx, principal, "network.delete", RESOURCE, row.id, details={"name": row.name})
    db.delete(row)
    db.flush()
