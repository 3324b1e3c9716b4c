"""HTTP routes of networks: /infra/networks (all of the organization's) and /infra/connections/{connection}/networks
(organization admins only: CanManageInfrastructure; another organization's network is 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from sailplane.iam.auth.deps import AppSettings, Db, require
from sailplane.iam.auth.principal import Principal
from sailplane.infra.clusters import provisioned
from sailplane.infra.connections.router import AwsClient, ConnectionId
from sailplane.infra.networks import service
from sailplane.infra.networks.schemas import (
    CreateNetworkRequest,
    NetworkDetail,
    NetworkIncluded,
    NetworkList,
    NetworkView,
    UpdateNetworkRequest,
)
from sailplane.infra.operations import service as operations
from sailplane.infra.operations.models import Operation
from sailplane.infra.operations.schemas import OperationView
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.db import after_commit
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message

router = APIRouter(route_class=JsonRoute, prefix="/infra", tags=["networks"])
Admin = Annotated[Principal, Depends(require("CanManageInfrastructure"))]
Ctx = Annotated[RequestContext, Depends(request_context)]
Page = Annotated[MarkerPage, Depends(marker_params)]
NetworkId = Annotated[str, Path(alias="network", pattern=ID_PATTERN, description="A network ID.")]
# What refuses destroyNetwork while it uses the network: (db, organization, network) → names (an explicit call,
# like the other deletes' checks).
IN_USE: tuple[service.UsersOf, ...] = (provisioned.on_network,)


def _included(db: Db, principal: Principal, ids: list[str]) -> NetworkIncluded:
    return NetworkIncluded(operations=[operations.view(op) for op in
                                       operations.latest(db, principal.organization_id, service.RESOURCE, ids)])


def _listed(db: Db, principal: Principal, page: MarkerPage, connection_id: str | None = None) -> NetworkList:
    total, rows, marker = service.list_networks(db, principal, page, connection_id)
    return NetworkList(total=total, items=[service.view(r) for r in rows],
                       included=_included(db, principal, [r.id for r in rows]), marker=marker)


def _started(request: Request, db: Db, op: Operation) -> OperationView:
    runtime = getattr(request.app.state, "operations", None)
    if runtime is not None:
        after_commit(db, runtime.notify)
    return operations.view(op)


@router.get("/networks", operation_id="listNetworks", response_model=NetworkList)
def list_networks(principal: Admin, db: Db, page: Page) -> NetworkList:
    """The organization's networks across its connections, oldest first (limit + marker); `included.operations`:
    each one's latest operation."""
    return _listed(db, principal, page)


@router.delete("/networks/{network}", operation_id="deleteNetworkRecord", response_model=Message)
def delete_network_record(network_id: NetworkId, principal: Admin, db: Db, ctx: Ctx) -> dict[str, str]:
    """Forget a network once nothing of it is left in the account: destroyed (destroyNetwork), or never provisioned.
    409 otherwise."""
    service.delete_record(db, principal, network_id, ctx)
    return DONE


@router.get("/connections/{connection}/networks", operation_id="listConnectionNetworks", response_model=NetworkList)
def list_connection_networks(connection_id: ConnectionId, principal: Admin, db: Db, page: Page) -> NetworkList:
    """The connection's networks, oldest first (limit + marker)."""
    return _listed(db, principal, page, connection_id)


@router.post("/connections/{connection}/networks", operation_id="createNetwork", response_model=NetworkView,
             status_code=201)
def create_network(connection_id: ConnectionId, body: CreateNetworkRequest, principal: Admin, db: Db, ctx: Ctx,
                   settings: AppSettings, aws: AwsClient) -> NetworkView:
    """Record a network of the connection: a private range (`config.cidr`, /16 to /24, overlapping none of the
    connection's other networks) that provisionNetwork builds as a VPC; or adopt an existing VPC
    (`providerNetworkId`, read through the connection's role), which is active at once."""
    return service.view(service.create(db, principal, connection_id, body, ctx, settings, aws))


@router.get("/connections/{connection}/networks/{network}", operation_id="describeNetwork",
            response_model=NetworkDetail)
def describe_network(connection_id: ConnectionId, network_id: NetworkId, principal: Admin, db: Db) -> NetworkDetail:
    row = service.get_in(db, principal, connection_id, network_id)
    return NetworkDetail(item=service.view(row), included=_included(db, principal, [row.id]))


@router.patch("/connections/{connection}/networks/{network}", operation_id="updateNetwork",
              response_model=NetworkView)
def update_network(connection_id: ConnectionId, network_id: NetworkId, body: UpdateNetworkRequest, principal: Admin,
                   db: Db, ctx: Ctx) -> NetworkView:
    """Rename the network; change its range while it is pending."""
    return service.view(service.update(db, principal, connection_id, network_id, body, ctx))


@router.delete("/connections/{connection}/networks/{network}", operation_id="destroyNetwork",
               response_model=OperationView, status_code=202)
def destroy_network(connection_id: ConnectionId, network_id: NetworkId, principal: Admin, db: Db, ctx: Ctx,
                    request: Request) -> OperationView:
    """Tear the network's VPC down (DeleteStack through the connection's role), as an operation; the record stays
    until deleteNetworkRecord. Refused (409) while something uses the network or another operation on it runs. An
    adopted VPC is left in the account."""
    op = service.start_destroy(db, principal, connection_id, network_id, ctx, users=IN_USE)
    return _started(request, db, op)


@router.post("/connections/{connection}/networks/{network}/provision", operation_id="provisionNetwork",
             response_model=OperationView, status_code=202)
def provision_network(connection_id: ConnectionId, network_id: NetworkId, principal: Admin, db: Db, ctx: Ctx,
                      request: Request) -> OperationView:
    """Build the network's VPC (subnets across availability zones, routing, a security group) as a CloudFormation
    stack named by `iacState`, as an operation: follow it with getOperation. While one runs, this answers that
    one."""
    op = service.start_provision(db, principal, connection_id, network_id, ctx)
    return _started(request, db, op)
