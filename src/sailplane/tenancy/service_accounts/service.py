"""Service accounts (non-human principals of one organization) and their API keys.

A key's secret exists in clear only in the createApiKey response; the database keeps its SHA-256
(for lookup) and a short display prefix. Deleting an account deletes its keys and its policy in
the same transaction, so its keys stop working at once and no grant is left to a dangling ID.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sailplane.iam.auth.principal import API_KEY_PREFIX, Principal
from sailplane.kit.clock import as_utc, iso, utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import random_token, token_hash
from sailplane.kit.errors import ApiError, conflict, invalid, not_found
from sailplane.kit.pagination import MarkerPage, apply_marker, split_marker
from sailplane.notifications.security import API_KEY_CREATED, API_KEY_REVOKED, record_security_event
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.policies.models import Policy
from sailplane.tenancy.service_accounts.models import ApiKey, ServiceAccount
from sailplane.tenancy.service_accounts.schemas import (
    MAX_KEY_LIFETIME_SECONDS,
    ApiKeyStatus,
    CreateApiKeyRequest,
    CreateServiceAccountRequest,
    UpdateServiceAccountRequest,
)
from sailplane.workloads import access

PRINCIPAL_TYPE = "service_account"
DISPLAY_PREFIX_LENGTH = 12


def key_status(key: ApiKey, now: datetime | None = None) -> ApiKeyStatus:
    now = now or utcnow()
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def get_account(db: Session, org_id: str, account_id: str) -> ServiceAccount:
    account = db.scalar(
        select(ServiceAccount).where(ServiceAccount.id == account_id, ServiceAccount.organization_id == org_id)
    )
    if account is None:
        raise not_found("service account")
    return account


def _name_taken(db: Session, org_id: str, name: str, except_id: str | None = None) -> bool:
    stmt = select(ServiceAccount.id).where(ServiceAccount.organization_id == org_id, ServiceAccount.name == name)
    if except_id is not None:
        stmt = stmt.where(ServiceAccount.id != except_id)
    return db.scalar(stmt) is not None


def _duplicate(name: str) -> ApiError:
    return conflict("service_account_exists", f"A service account named {name!r} already exists.")


def list_accounts(db: Session, principal: Principal, page: MarkerPage) -> tuple[list[ServiceAccount], str | None]:
    stmt = select(ServiceAccount).where(ServiceAccount.organization_id == principal.organization_id)
    rows = list(db.scalars(apply_marker(stmt, ServiceAccount.id, page)))
    return split_marker(rows, page)


def create_account(
    db: Session, principal: Principal, body: CreateServiceAccountRequest, ctx: RequestContext
) -> ServiceAccount:
    if _name_taken(db, principal.organization_id, body.name):
        raise _duplicate(body.name)
    account = ServiceAccount(
        organization_id=principal.organization_id, name=body.name, description=body.description,
        created_by=principal.actor_id, updated_by=principal.actor_id,
    )
    db.add(account)
    db.flush()
    audit.record(db, ctx, principal, "service_account.create", "service_account", account.id,
                 details={"name": account.name})
    db.flush()
    return account


def update_account(
    db: Session, principal: Principal, account_id: str, body: UpdateServiceAccountRequest, ctx: RequestContext
) -> ServiceAccount:
    account = get_account(db, principal.organization_id, account_id)
    fields = body.model_fields_set
    if "name" in fields:
        if body.name is None:
            raise invalid("name", "cannot be null")
        if body.name != account.name and _name_taken(db, principal.organization_id, body.name, account.id):
            raise _duplicate(body.name)
        account.name = body.name
    if "description" in fields:
        account.description = body.description
    account.updated_by = principal.actor_id
    account.updated_at = utcnow()
    audit.record(db, ctx, principal, "service_account.update", "service_account", account.id,
                 details={"fields": sorted(body.model_dump(by_alias=True, exclude_unset=True))})
    db.flush()
    return account


def delete_account(db: Session, principal: Principal, account_id: str, ctx: RequestContext) -> None:
    account = get_account(db, principal.organization_id, account_id)
    now = utcnow()
    for key in db.scalars(select(ApiKey).where(ApiKey.service_account_id == account.id).order_by(ApiKey.id)):
        if key_status(key, now) == "active":  # a key that still worked stops working
            _key_event(db, principal, API_KEY_REVOKED, key, account, reason="service_account_deleted")
    keys = db.execute(delete(ApiKey).where(ApiKey.service_account_id == account.id))
    db.execute(delete(Policy).where(Policy.organization_id == principal.organization_id,
                                    Policy.principal_type == PRINCIPAL_TYPE, Policy.principal_id == account.id))
    db.delete(account)
    audit.record(db, ctx, principal, "service_account.delete", "service_account", account.id,
                 details={"name": account.name, "apiKeysDeleted": keys.rowcount})  # type: ignore[attr-defined]
    db.flush()
    access.end_lost_sessions(db, ctx, principal, principal.organization_id, service_accounts=[account.id],
                             why="Closed because its service account was deleted.")
    db.flush()


# --- API keys -------------------------------------------------------------------------------


def list_keys(
    db: Session, principal: Principal, account_id: str, page: MarkerPage
) -> tuple[list[ApiKey], str | None]:
    account = get_account(db, principal.organization_id, account_id)
    stmt = select(ApiKey).where(ApiKey.service_account_id == account.id)
    rows = list(db.scalars(apply_marker(stmt, ApiKey.id, page)))
    return split_marker(rows, page)


def _expiry(body: CreateApiKeyRequest, now: datetime) -> datetime | None:
    if body.expires_in_seconds is not None:
        return now + timedelta(seconds=body.expires_in_seconds)
    if body.expires_at is None:
        return None
    expires_at = as_utc(body.expires_at)
    if expires_at <= now:
        raise invalid("expiresAt", "must be in the future")
    if expires_at > now + timedelta(seconds=MAX_KEY_LIFETIME_SECONDS):
        raise invalid("expiresAt", "must be within 10 years")
    return expires_at


def create_key(
    db: Session, principal: Principal, account_id: str, body: CreateApiKeyRequest, ctx: RequestContext
) -> tuple[ApiKey, str]:
    """Returns the key and its secret; the secret is never stored or logged."""
    account = get_account(db, principal.organization_id, account_id)
    now = utcnow()
    expires_at = _expiry(body, now)
    secret = random_token(API_KEY_PREFIX)
    key = ApiKey(
        organization_id=account.organization_id, service_account_id=account.id, name=body.name,
        prefix=secret[:DISPLAY_PREFIX_LENGTH], token_hash=token_hash(secret), expires_at=expires_at,
        created_at=now, updated_at=now, created_by=principal.actor_id, updated_by=principal.actor_id,
    )
    db.add(key)
    db.flush()
    audit.record(db, ctx, principal, "api_key.create", "api_key", key.id,
                 details={"serviceAccountId": account.id, "name": key.name, "prefix": key.prefix,
                          "expiresAt": expires_at.isoformat() if expires_at else None})
    _key_event(db, principal, API_KEY_CREATED, key, account)
    db.flush()
    return key, secret


def _key_event(db: Session, principal: Principal, event_type: str, key: ApiKey, account: ServiceAccount,
               **extra: Any) -> None:
    """The key as its list shows it (the prefix names it, never the secret), in the change's transaction."""
    record_security_event(db, account.organization_id, event_type, actor_id=principal.actor_id, data={
        "apiKey": {"id": key.id, "name": key.name, "prefix": key.prefix, "serviceAccountId": account.id,
                   "serviceAccountName": account.name, "expiresAt": iso(key.expires_at)}, **extra})


def revoke_key(db: Session, principal: Principal, account_id: str, key_id: str, ctx: RequestContext) -> ApiKey:
    account = get_account(db, principal.organization_id, account_id)
    key = db.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.service_account_id == account.id))
    if key is None:
        raise not_found("API key")
    if key.revoked_at is not None:
        raise conflict("api_key_revoked", "The API key is already revoked.")
    now = utcnow()
    key.revoked_at = now
    key.updated_at = now
    key.updated_by = principal.actor_id
    audit.record(db, ctx, principal, "api_key.revoke", "api_key", key.id,
                 details={"serviceAccountId": account.id, "prefix": key.prefix})
    _key_event(db, principal, API_KEY_REVOKED, key, account, reason="revoked")
    db.flush()
    return key
