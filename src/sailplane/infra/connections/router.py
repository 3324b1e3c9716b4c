"""HTTP routes of /infra/connections: an organization's AWS accounts (organization admins only:
CanManageInfrastructure; another organization's connection is 404)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from sailplane.iam.auth.deps import AppSettings, Db, require
from sailplane.iam.auth.principal import Principal
from sailplane.infra.connections import service, sync
from sailplane.infra.connections.schemas import (
    REGION,
    ConnectionDetail,
    ConnectionIncluded,
    ConnectionList,
    ConnectionView,
    CreateConnectionRequest,
    CreatedConnection,
    InstanceTypeList,
    ProviderNetworkList,
    RegionList,
    TemplateInfo,
    UpdateConnectionRequest,
)
from sailplane.infra.networks import service as networks
from sailplane.infra.operations import service as operations
from sailplane.infra.operations.schemas import OperationView
from sailplane.infra.providers.aws import Aws
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.db import after_commit
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute, raw_json
from sailplane.kit.schemas import DONE, Message

router = APIRouter(route_class=JsonRoute, prefix="/infra/connections", tags=["connections"])
Admin = Annotated[Principal, Depends(require("CanManageInfrastructure"))]
Ctx = Annotated[RequestContext, Depends(request_context)]
Page = Annotated[MarkerPage, Depends(marker_params)]
ConnectionId = Annotated[str, Path(alias="connection", pattern=ID_PATTERN, description="A connection ID.")]
RegionQuery = Annotated[str | None, Query(pattern=REGION, max_length=40,
                                          description="An AWS region (default: the connection's).")]


def get_aws(request: Request) -> Aws:
    return request.app.state.aws  # type: ignore[no-any-return]


AwsClient = Annotated[Aws, Depends(get_aws)]


def _included(db: Db, principal: Principal, ids: list[str]) -> ConnectionIncluded:
    return ConnectionIncluded(operations=[operations.view(op) for op in
                                          operations.latest(db, principal.organization_id, service.RESOURCE, ids)])


@router.get("", operation_id="listConnections", response_model=ConnectionList)
def list_connections(principal: Admin, db: Db, page: Page) -> ConnectionList:
    """The organization's cloud accounts, oldest first (limit + marker); `included.operations`: each one's latest
    operation."""
    total, rows, marker = service.list_connections(db, principal, page)
    return ConnectionList(total=total, items=[service.view(r) for r in rows],
                          included=_included(db, principal, [r.id for r in rows]), marker=marker)


@router.post("", operation_id="createConnection", response_model=CreatedConnection, status_code=201)
def create_connection(body: CreateConnectionRequest, principal: Admin, db: Db, ctx: Ctx, settings: AppSettings,
                      aws: AwsClient) -> CreatedConnection:
    """Record an AWS account and answer what its admin deploys there: our CloudFormation template (its URL; or
    downloadConnectionTemplate) as a stack with these parameters, which creates the role Sailplane assumes with
    the connection's external ID. The connection is `pending` until verifyConnection succeeds."""
    row = service.create(db, principal, body, ctx, settings)
    info = service.template_info(row, settings, aws)
    return CreatedConnection(**service.view(row).model_dump(), template=info)


@router.get("/{connection}", operation_id="describeConnection", response_model=ConnectionDetail)
def describe_connection(connection_id: ConnectionId, principal: Admin, db: Db) -> ConnectionDetail:
    row = service.get(db, principal, connection_id)
    return ConnectionDetail(item=service.view(row), included=_included(db, principal, [row.id]))


@router.patch("/{connection}", operation_id="updateConnection", response_model=ConnectionView)
def update_connection(connection_id: ConnectionId, body: UpdateConnectionRequest, principal: Admin, db: Db,
                      ctx: Ctx) -> ConnectionView:
    """Rename the connection, change its home region, or name its deployed stack (`providerConfig.stackArn`)."""
    return service.view(service.update(db, principal, connection_id, body, ctx))


@router.delete("/{connection}", operation_id="deleteConnection", response_model=Message)
def delete_connection(connection_id: ConnectionId, principal: Admin, db: Db, ctx: Ctx) -> dict[str, str]:
    """Forget the connection (409 while an operation on it runs or it has networks). Its stack and role stay in the
    account until its admin deletes the stack."""
    service.delete(db, principal, connection_id, ctx, networks_of=networks.on_connection)
    return DONE


@router.get("/{connection}/template", operation_id="getConnectionTemplate", response_model=TemplateInfo)
def get_connection_template(connection_id: ConnectionId, principal: Admin, db: Db, settings: AppSettings,
                            aws: AwsClient) -> TemplateInfo:
    """Where the template is and the parameters to deploy it with (the external ID among them)."""
    return service.template_info(service.get(db, principal, connection_id), settings, aws)


@router.get("/{connection}/template/download", operation_id="downloadConnectionTemplate",
            responses={200: {"description": "The CloudFormation template (JSON), its parameters' defaults filled in.",
                             "content": {"application/json": {"schema": {"type": "object"}}}}})
def download_connection_template(connection_id: ConnectionId, principal: Admin, db: Db, settings: AppSettings,
                                 aws: AwsClient) -> Response:
    """The CloudFormation template, ready to deploy as it is: the cross-account role trusting Sailplane's
    principal on the condition of the connection's external ID."""
    row = service.get(db, principal, connection_id)
    response = raw_json(service.template_document(row, settings, aws))
    response.headers["Content-Disposition"] = f'attachment; filename="{row.stack_name}.json"'
    return response


@router.post("/{connection}/verify", operation_id="verifyConnection", response_model=ConnectionView)
def verify_connection(connection_id: ConnectionId, principal: Admin, db: Db, ctx: Ctx, settings: AppSettings,
                      aws: AwsClient) -> ConnectionView:
    """Assume the connection's role with its external ID (STS) and read it back. The connection's `status`
    (`active` or `failed`) and `statusMessage` say how it went; `lastUsedAt` is set on success."""
    return service.view(service.verify(db, principal, connection_id, ctx, settings, aws))


@router.get("/{connection}/regions", operation_id="listRegions", response_model=RegionList)
def list_regions(connection_id: ConnectionId, principal: Admin, db: Db, settings: AppSettings,
                 aws: AwsClient) -> RegionList:
    """The regions enabled in the account (ec2:DescribeRegions through the connection's role)."""
    return service.regions(db, principal, connection_id, settings, aws)


@router.get("/{connection}/instance-types", operation_id="listInstanceTypes", response_model=InstanceTypeList)
def list_instance_types(
    connection_id: ConnectionId, principal: Admin, db: Db, settings: AppSettings, aws: AwsClient,
    region: RegionQuery = None,
    limit: Annotated[int, Query(ge=0, le=100, description="The maximum number of items to list.")] = 100,
    architecture: Annotated[Literal["x86_64", "arm64"] | None, Query(description="Only this architecture.")] = None,
    min_vcpus: Annotated[int | None, Query(alias="minVcpus", ge=0, le=4096,
                                           description="At least this many vCPUs.")] = None,
    min_memory_mib: Annotated[int | None, Query(alias="minMemoryMib", ge=0, le=2**31 - 1,
                                                description="At least this much memory (MiB).")] = None,
) -> InstanceTypeList:
    """The region's instance types as Kubernetes nodes (pods, allocatable CPU), smallest first."""
    return service.instance_types(db, principal, connection_id, settings, aws, region=region, limit=limit,
                                  architecture=architecture, min_vcpus=min_vcpus, min_memory_mib=min_memory_mib)


@router.get("/{connection}/provider-networks", operation_id="listProviderNetworks",
            response_model=ProviderNetworkList)
def list_provider_networks(connection_id: ConnectionId, principal: Admin, db: Db, settings: AppSettings,
                           aws: AwsClient, region: RegionQuery = None) -> ProviderNetworkList:
    """The account's VPCs in the region, each with its subnets."""
    return service.provider_networks(db, principal, connection_id, settings, aws, region=region)


@router.post("/{connection}/sync-template", operation_id="syncConnectionTemplate", response_model=OperationView,
             status_code=202)
def sync_connection_template(connection_id: ConnectionId, principal: Admin, db: Db, ctx: Ctx,
                             request: Request) -> OperationView:
    """Bring the deployed stack up to our current template version (UpdateStack through the connection's role),
    as an operation: follow it with getOperation. While one runs, this answers that one."""
    op = sync.start_sync(db, principal, connection_id, ctx)
    runtime = getattr(request.app.state, "operations", None)
    if runtime is not None:
        after_commit(db, runtime.notify)
    return operations.view(op)
