"""Connections: an organization's AWS account, reached only through the role its admin deploys.

Create records the account and makes a per-connection external ID (a secret: stored encrypted, shown only in the
create answer and the template an admin deploys, never logged or audited). The admin deploys our template
(`template`), which creates the role trusting our principal with that external ID; verify assumes it
(`providers.aws`) and records `status`/`statusMessage`/`lastUsedAt`. Every read of the account (regions, instance
types, VPCs) assumes the role again: no credentials of the customer's are kept. The request's connection to the
database is released before each AWS call (kit.db.release), which may take seconds.

Infrastructure is organization-admin territory: routes require CanManageInfrastructure; another organization's
connections are 404 (every query is scoped by the caller's organization).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth.principal import Principal
from sailplane.infra.connections import instance_types as sizing
from sailplane.infra.connections.models import Connection
from sailplane.infra.connections.schemas import (
    ConnectionProviderConfig,
    ConnectionView,
    CreateConnectionRequest,
    InstanceTypeList,
    ProviderNetworkList,
    ProviderNetworkView,
    RegionList,
    RegionView,
    SubnetView,
    TemplateInfo,
    UpdateConnectionRequest,
)
from sailplane.infra.connections.template import (
    PARAM_EXTERNAL_ID,
    PARAM_PRINCIPAL,
    PARAM_ROLE_NAME,
    TEMPLATE_VERSION,
    deployed_version,
    role_name_for,
    stack_name_for,
    template,
)
from sailplane.infra.operations import service as operations
from sailplane.infra.providers.aws import AssumedRole, Aws, CloudError, known_regions
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import release
from sailplane.kit.errors import ApiError, conflict, invalid, not_found
from sailplane.kit.ids import new_id
from sailplane.kit.pagination import MarkerPage, apply_marker, count, split_marker
from sailplane.tenancy.audit import service as audit

RESOURCE = "connection"
PENDING, ACTIVE, FAILED = "pending", "active", "failed"


def _scoped(principal: Principal) -> Any:
    return select(Connection).where(Connection.organization_id == principal.organization_id)


def get(db: Session, principal: Principal, connection_id: str) -> Connection:
    found: Connection | None = db.scalar(_scoped(principal).where(Connection.id == connection_id))
    if found is None:
        raise not_found("connection")
    return found


def list_connections(db: Session, principal: Principal, page: MarkerPage) -> tuple[int, list[Connection], str | None]:
    stmt = _scoped(principal)
    rows = list(db.scalars(apply_marker(stmt, Connection.id, page)))
    items, marker = split_marker(rows, page)
    return count(db, stmt), items, marker


def role_arn(row: Connection) -> str:
    return f"arn:aws:iam::{row.account_id}:role/{row.role_name}"


def view(row: Connection) -> ConnectionView:
    return ConnectionView(
        id=row.id, name=row.name, provider=row.provider,
        provider_config=ConnectionProviderConfig(account_id=row.account_id, region=row.region,
                                                 role_arn=role_arn(row),
                                                 external_id_secret_arn=row.external_id_secret_arn,
                                                 stack_arn=row.stack_arn),
        status=row.status, status_message=row.status_message, last_used_at=row.last_used_at,
        template_synced_at=row.template_synced_at, template_sync_message=row.template_sync_message,
        created_at=row.created_at, created_by=row.created_by, updated_at=row.updated_at, updated_by=row.updated_by,
    )


def _check_region(field: str, region: str, status: int = 422) -> None:
    if region not in known_regions():
        raise invalid(field, f"unknown AWS region {region!r}", status)


def _name_free(db: Session, principal: Principal, name: str, other_than: str | None = None) -> None:
    stmt = select(Connection.id).where(Connection.organization_id == principal.organization_id,
                                       Connection.name == name)
    if other_than is not None:
        stmt = stmt.where(Connection.id != other_than)
    if db.scalar(stmt.limit(1)) is not None:
        raise conflict("connection_name_taken", "A connection with this name already exists in the organization.")


def create(db: Session, principal: Principal, body: CreateConnectionRequest, ctx: RequestContext,
           settings: Settings) -> Connection:
    config = body.provider_config
    _check_region("providerConfig.region", config.region)
    _name_free(db, principal, body.name)
    connection_id = new_id()  # it names the role and the stack
    role_name = role_name_for(connection_id)
    if config.role_arn is not None:
        parts = config.role_arn.split(":", 5)  # arn:aws:iam::<account>:role/<path/>name
        if parts[4] != config.account_id:
            raise invalid("providerConfig.roleArn", "must be a role of the connection's account (accountId)")
        role_name = parts[5].rsplit("/", 1)[-1]
    row = Connection(id=connection_id, organization_id=principal.organization_id, name=body.name,
                     provider=body.provider, account_id=config.account_id, region=config.region, role_name=role_name,
                     stack_name=stack_name_for(connection_id),
                     external_id=Encryptor(settings.secret_key).encrypt(f"sailplane-{secrets.token_hex(20)}"),
                     status=PENDING,
                     status_message="Deploy the connection's CloudFormation template, then verify the connection.",
                     created_by=principal.actor_id, updated_by=principal.actor_id)
    db.add(row)
    db.flush()
    audit.record(db, ctx, principal, "connection.create", RESOURCE, row.id,
                 details={"name": row.name, "accountId": row.account_id, "region": row.region})
    return row


def update(db: Session, principal: Principal, connection_id: str, body: UpdateConnectionRequest,
           ctx: RequestContext) -> Connection:
    row = get(db, principal, connection_id)
    changed: dict[str, Any] = {}
    if body.name is not None and body.name != row.name:
        _name_free(db, principal, body.name, other_than=row.id)
        row.name = changed["name"] = body.name
    config = body.provider_config
    if config is not None and config.region is not None and config.region != row.region:
        _check_region("providerConfig.region", config.region)
        row.region = changed["region"] = config.region
    if config is not None and config.stack_arn is not None and config.stack_arn != row.stack_arn:
        if config.stack_arn.split(":")[4] != row.account_id:
            raise invalid("providerConfig.stackArn", "must be a stack of the connection's account")
        row.stack_arn = changed["stackArn"] = config.stack_arn
    if changed:
        row.updated_by = principal.actor_id
        row.updated_at = utcnow()
        db.flush()
        audit.record(db, ctx, principal, "connection.update", RESOURCE, row.id, details=changed)
    return row


def delete(db: Session, principal: Principal, connection_id: str, ctx: RequestContext,
           networks_of: Callable[[Session, str, str], list[str]] | None = None) -> None:
    """The record only: the stack (and role) in the customer's account stay until their admin deletes them. The
    router passes `networks_of` (the connection's networks' names): refused while it has any."""
    row = get(db, principal, connection_id)
    if operations.any_active(db, principal.organization_id, RESOURCE, row.id):
        raise conflict("connection_busy", "An operation on this connection is still running; wait for it to end.")
    networks = networks_of(db, principal.organization_id, row.id) if networks_of is not None else []
    if networks:
        raise conflict("connection_in_use", f"The connection has networks ({', '.join(networks)}); destroy them and "
                                            "delete their records first.")
    audit.record(db, ctx, principal, "connection.delete", RESOURCE, row.id, details={"name": row.name})
    db.delete(row)
    db.flush()


# --- the template ------------------------------------------------------------------------------------------------


def template_info(row: Connection, settings: Settings, aws: Aws) -> TemplateInfo:
    return TemplateInfo(
        template_url=f"{settings.public_url}/api/v1/infra/connections/{row.id}/template/download",
        template_version=TEMPLATE_VERSION, stack_name=row.stack_name,
        parameters={PARAM_EXTERNAL_ID: Encryptor(settings.secret_key).decrypt(row.external_id),
                    PARAM_PRINCIPAL: _principal(aws), PARAM_ROLE_NAME: row.role_name},
    )


def template_document(row: Connection, settings: Settings, aws: Aws) -> dict[str, Any]:
    return template(row.id, external_id=Encryptor(settings.secret_key).decrypt(row.external_id),
                    principal_arn=_principal(aws), role_name=row.role_name, stack_name=row.stack_name)


def _principal(aws: Aws) -> str:
    try:
        return aws.principal_arn()
    except CloudError as exc:
        raise upstream(exc) from None


# --- through the role --------------------------------------------------------------------------------------------


def upstream(exc: CloudError) -> ApiError:
    """An AWS failure as a request's answer: 502, AWS's code as the cause, retryable unless access was denied."""
    return ApiError(502, "cloud_provider_error", str(exc), caused_by=exc.code, retryable=not exc.denied)


@dataclass(frozen=True)
class Target:
    """What an AWS call needs of a connection, read before the request's database connection is released."""

    id: str
    account_id: str
    region: str
    role_arn: str
    role_name: str
    stack: str
    external_id: str


def target(row: Connection, encryptor: Encryptor) -> Target:
    return Target(row.id, row.account_id, row.region, role_arn(row), row.role_name, row.stack_arn or row.stack_name,
                  encryptor.decrypt(row.external_id))


def serialize(db: Session, connection_id: str) -> None:
    """Hold the connection's row for the rest of the transaction, so that checks across its resources (a network's
    range against its siblings') and the insert after them are one step: concurrent creates wait here for each other.
    A write that changes nothing (no `updatedAt` either): a row lock on PostgreSQL, SQLite's write lock (whose
    deferred transactions otherwise read outside it). Call it after any AWS call: the lock is held to the commit."""
    db.execute(text("UPDATE connections SET id = id WHERE id = :id"), {"id": connection_id})


def assumed_role(aws: Aws, found: Target, *, reuse: bool = False) -> AssumedRole:
    """The connection's role (the temporary credentials every client of `providers.aws` for the customer's account
    is made from); CloudError when it cannot be assumed or is in another account. The one place a role is assumed:
    requests through `request_role`, operation steps through `stacked.step_role`."""
    role = aws.assume(found.role_arn, found.external_id, f"sailplane-{found.id}", reuse=reuse)
    if role.account_id != found.account_id:
        raise CloudError("Assuming the connection's role", "AccountMismatch",
                         f"the role's credentials are of account {role.account_id}, not {found.account_id}")
    return role


def verify(db: Session, principal: Principal, connection_id: str, ctx: RequestContext, settings: Settings,
           aws: Aws) -> Connection:
    """Assume the role with the external ID and read it back; the outcome becomes the connection's status (a
    failure is an answer, not an error: the connection says why)."""
    row = get(db, principal, connection_id)
    found = target(row, Encryptor(settings.secret_key))
    release(db)  # AWS may take seconds
    stack: dict[str, Any] | None = None
    try:
        role = assumed_role(aws, found)
        aws.get_role(role, found.role_name)
        stack = aws.describe_stack(role, found.region, found.stack)
        status, message = ACTIVE, f"Verified: Sailplane assumed {found.role_arn}."
        if stack is None:
            message += (f" The stack {found.stack} was not found in {found.region}: set providerConfig.stackArn "
                        "to let Sailplane keep its template up to date.")
    except CloudError as exc:
        status, message = FAILED, f"{exc} Deploy the connection's template (getConnectionTemplate) and verify again."
    row = get(db, principal, connection_id)
    now = utcnow()
    row.status, row.status_message, row.updated_at = status, message[:2000], now
    if status == ACTIVE:
        row.last_used_at = now
    if stack is not None:
        row.stack_arn = str(stack.get("StackId") or row.stack_arn)
        row.template_version = deployed_version(stack)
    db.flush()
    audit.record(db, ctx, principal, "connection.verify", RESOURCE, row.id,
                 outcome="success" if status == ACTIVE else "failure", details={"status": status})
    return row


def request_role(db: Session, row: Connection, settings: Settings, aws: Aws) -> tuple[Target, AssumedRole]:
    """The connection's role for a request: the request's database connection is released first (AWS may take
    seconds); 502 `cloud_provider_error` when the role cannot be assumed."""
    found = target(row, Encryptor(settings.secret_key))
    release(db)
    try:
        return found, assumed_role(aws, found)
    except CloudError as exc:
        raise upstream(exc) from None


def _with_role(db: Session, principal: Principal, connection_id: str, settings: Settings,
               aws: Aws) -> tuple[Target, AssumedRole]:
    return request_role(db, get(db, principal, connection_id), settings, aws)


def _used(db: Session, principal: Principal, connection_id: str) -> None:
    row = db.scalar(_scoped(principal).where(Connection.id == connection_id))
    if row is not None:
        row.last_used_at = utcnow()
        db.flush()


def regions(db: Session, principal: Principal, connection_id: str, settings: Settings, aws: Aws) -> RegionList:
    _, role = _with_role(db, principal, connection_id, settings, aws)
    try:
        found = aws.regions(role)
    except CloudError as exc:
        raise upstream(exc) from None
    _used(db, principal, connection_id)
    return RegionList(items=[RegionView(region=r["RegionName"], opt_in_status=r.get("OptInStatus"))
                             for r in sorted(found, key=lambda r: str(r["RegionName"]))])


def instance_types(db: Session, principal: Principal, connection_id: str, settings: Settings, aws: Aws, *,
                   region: str | None, limit: int, architecture: str | None, min_vcpus: int | None,
                   min_memory_mib: int | None) -> InstanceTypeList:
    if region is not None:
        _check_region("region", region, 400)
    found, role = _with_role(db, principal, connection_id, settings, aws)
    try:
        raw = list(aws.instance_types(role, region or found.region))
    except CloudError as exc:
        raise upstream(exc) from None
    items = [t for t in (sizing.view(r) for r in raw) if t is not None
             and (architecture is None or t.architecture == architecture)
             and (min_vcpus is None or t.v_cpus >= min_vcpus)
             and (min_memory_mib is None or t.memory_mi_b >= min_memory_mib)]
    items.sort(key=lambda t: (t.v_cpus, t.memory_mi_b, t.instance_type))
    _used(db, principal, connection_id)
    return InstanceTypeList(items=items[:limit], metadata=sizing.METADATA)


def provider_networks(db: Session, principal: Principal, connection_id: str, settings: Settings, aws: Aws, *,
                      region: str | None) -> ProviderNetworkList:
    if region is not None:
        _check_region("region", region, 400)
    found, role = _with_role(db, principal, connection_id, settings, aws)
    try:
        vpcs, subnets = aws.networks(role, region or found.region)
    except CloudError as exc:
        raise upstream(exc) from None
    _used(db, principal, connection_id)
    items = []
    for vpc in sorted(vpcs, key=lambda v: str(v["VpcId"])):
        own = [s for s in subnets if s.get("VpcId") == vpc["VpcId"]]
        items.append(ProviderNetworkView(
            provider="aws", vpc_id=vpc["VpcId"], cidr=vpc.get("CidrBlock", ""), name=_tag(vpc, "Name"),
            az_count=len({s.get("AvailabilityZone") for s in own}), state=vpc.get("State"),
            is_default=bool(vpc.get("IsDefault")), tags={t["Key"]: t["Value"] for t in vpc.get("Tags") or []},
            subnets=[SubnetView(subnet_id=s["SubnetId"], cidr=s.get("CidrBlock", ""),
                                availability_zone=s.get("AvailabilityZone"),
                                available_ip_address_count=s.get("AvailableIpAddressCount"),
                                map_public_ip_on_launch=bool(s.get("MapPublicIpOnLaunch")), name=_tag(s, "Name"))
                     for s in sorted(own, key=lambda s: str(s["SubnetId"]))]))
    return ProviderNetworkList(items=items)


def _tag(resource: dict[str, Any], key: str) -> str | None:
    for tag in resource.get("Tags") or []:
        if tag.get("Key") == key:
            return str(tag.get("Value"))
    return None
