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

from collections.abc import Sequence
from typing import Any, Final

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
from sailplane.infra.operations.models import Operation
from sailplane.infra.providers.aws import Aws, CloudError, known_regions
from sailplane.infra.stacked import Kind, Records, UsersOf
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.errors import conflict, invalid
from sailplane.kit.ids import new_id
from sailplane.kit.pagination import MarkerPage
from sailplane.tenancy.audit import service as audit

RESOURCE: Final = "network"
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
RECORDS: Final[Records[Network]] = Records(Network, Kind(RESOURCE, PROVISION, PROVISION_STEPS, DESTROY, DESTROY_STEPS,
                                                        "destroyNetwork", "deleteNetworkRecord"), states.LIFECYCLE)


def get(db: Session, principal: Principal, network_id: str) -> Network:
    return RECORDS.get(db, principal, network_id)


def get_in(db: Session, principal: Principal, connection_id: str, network_id: str) -> Network:
    """The network of this connection (404 when either is unknown or they do not belong together)."""
    return RECORDS.get_in(db, principal, connection_id, network_id)


def list_networks(db: Session, principal: Principal, page: MarkerPage,
                  connection_id: str | None = None) -> tuple[int, list[Network], str | None]:
    return RECORDS.listing(db, principal, page, connection_id)


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
    _, role = connections.request_role(db, row, settings, aws)
    try:
        vpc = aws.vpc(role, region, vpc_id)
    except CloudError as exc:
        raise connections.upstream(exc) from None
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
    RECORDS.name_free(db, connection_id, body.name)
    outputs: dict[str, str] = {}
    if body.provider_network_id is not None:
        block, outputs = _adopt(db, principal, connection_id, region, body.provider_network_id, settings, aws)
        if body.config is not None and body.config.cidr != block:
            raise invalid(ranges.FIELD, f"the VPC {body.provider_network_id} is {block}, not {body.config.cidr}")
        network = ranges.parse_any(block)
        RECORDS.name_free(db, connection_id, body.name)  # again: the connection was released while AWS answered
    elif body.config is None:
        raise invalid("config", "required (config.cidr), unless providerNetworkId names a VPC to adopt")
    else:
        network = ranges.parse(body.config.cidr)
    connections.serialize(db, connection_id)  # two creates with overlapping ranges: the second sees the first
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
        RECORDS.name_free(db, connection_id, body.name, other_than=row.id)
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


def start_provision(db: Session, principal: Principal, connection_id: str, network_id: str,
                    ctx: RequestContext) -> Operation:
    """The network's provisioning operation: the one already pending or running, else a new one."""
    return RECORDS.start_provision(db, principal, connection_id, network_id, ctx, "Provisioning the VPC.",
                                   before=_not_adopted)


def _not_adopted(row: Network) -> None:
    if row.adopted:
        raise conflict("network_adopted", "The network adopted an existing VPC: there is nothing to provision.")


def start_destroy(db: Session, principal: Principal, connection_id: str, network_id: str, ctx: RequestContext,
                  users: Sequence[UsersOf] = ()) -> Operation:
    """The network's destroy operation: the one already pending or running, else a new one (409 while anything
    in `users` says the network is used)."""
    return RECORDS.start_destroy(db, principal, connection_id, network_id, ctx, "Destroying the VPC.", users)


def delete_record(db: Session, principal: Principal, network_id: str, ctx: RequestContext) -> None:
    """Forget the network: only once nothing of ours is left in the account (destroyed, or never provisioned)."""
    RECORDS.delete_record(db, principal, network_id, ctx)
