"""HTTP routes for service accounts and their API keys (all need CanManageServiceAccounts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from sailplane.iam.auth.deps import Db, require
from sailplane.iam.auth.principal import Principal
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message
from sailplane.tenancy.service_accounts import service
from sailplane.tenancy.service_accounts.models import ApiKey, ServiceAccount
from sailplane.tenancy.service_accounts.schemas import (
    ApiKeyList,
    ApiKeyView,
    CreateApiKeyRequest,
    CreatedApiKey,
    CreateServiceAccountRequest,
    ServiceAccountList,
    ServiceAccountView,
    UpdateServiceAccountRequest,
)

router = APIRouter(route_class=JsonRoute, prefix="/org/service-accounts", tags=["service-accounts"])
Ctx = Annotated[RequestContext, Depends(request_context)]
Manage = Annotated[Principal, Depends(require("CanManageServiceAccounts"))]
Page = Annotated[MarkerPage, Depends(marker_params)]
AccountId = Annotated[str, Path(alias="serviceAccount", pattern=ID_PATTERN, description="A service account ID.")]
KeyId = Annotated[str, Path(alias="apiKey", pattern=ID_PATTERN, description="An API key ID.")]


def account_view(account: ServiceAccount) -> ServiceAccountView:
    return ServiceAccountView.model_validate(account)


def key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(
        id=key.id, organization_id=key.organization_id, service_account_id=key.service_account_id, name=key.name,
        prefix=key.prefix, expires_at=key.expires_at, revoked_at=key.revoked_at, last_used_at=key.last_used_at,
        status=service.key_status(key), created_at=key.created_at, created_by=key.created_by,
        updated_at=key.updated_at, updated_by=key.updated_by,
    )


@router.get("", operation_id="listServiceAccounts", response_model=ServiceAccountList)
def list_service_accounts(db: Db, principal: Manage, page: Page) -> ServiceAccountList:
    """The organization's service accounts, oldest first, paged with limit and marker."""
    rows, marker = service.list_accounts(db, principal, page)
    return ServiceAccountList(items=[account_view(a) for a in rows], marker=marker)


@router.post("", operation_id="createServiceAccount", status_code=201, response_model=ServiceAccountView)
def create_service_account(body: CreateServiceAccountRequest, db: Db, principal: Manage,
                           ctx: Ctx) -> ServiceAccountView:
    """A non-human principal for automation; it acts through API keys and holds permissions via policies."""
    return account_view(service.create_account(db, principal, body, ctx))


@router.get("/{serviceAccount}", operation_id="describeServiceAccount", response_model=ServiceAccountView)
def describe_service_account(account_id: AccountId, db: Db, principal: Manage) -> ServiceAccountView:
    """One service account of this organization (404 for any other organization's)."""
    return account_view(service.get_account(db, principal.organization_id, account_id))


@router.patch("/{serviceAccount}", operation_id="updateServiceAccount", response_model=ServiceAccountView)
def update_service_account(account_id: AccountId, body: UpdateServiceAccountRequest, db: Db, principal: Manage,
                           ctx: Ctx) -> ServiceAccountView:
    """Rename or re-describe a service account; names stay unique within the organization."""
    return account_view(service.update_account(db, principal, account_id, body, ctx))


@router.delete("/{serviceAccount}", operation_id="deleteServiceAccount", response_model=Message)
def delete_service_account(account_id: AccountId, db: Db, principal: Manage, ctx: Ctx) -> dict[str, str]:
    """Delete the account with its keys (which stop working at once) and its organization policy."""
    service.delete_account(db, principal, account_id, ctx)
    return DONE


@router.get("/{serviceAccount}/api-keys", operation_id="listApiKeys", response_model=ApiKeyList)
def list_api_keys(account_id: AccountId, db: Db, principal: Manage, page: Page) -> ApiKeyList:
    """The account's keys with status and last use; the secret is never shown again."""
    rows, marker = service.list_keys(db, principal, account_id, page)
    return ApiKeyList(items=[key_view(k) for k in rows], marker=marker)


@router.post("/{serviceAccount}/api-keys", operation_id="createApiKey", status_code=201,
             response_model=CreatedApiKey)
def create_api_key(account_id: AccountId, body: CreateApiKeyRequest, db: Db, principal: Manage,
                   ctx: Ctx) -> CreatedApiKey:
    """Issue a bearer API key for the account, optionally expiring; the secret is in this response only."""
    key, secret = service.create_key(db, principal, account_id, body, ctx)
    return CreatedApiKey(**key_view(key).model_dump(), secret=secret)


@router.delete("/{serviceAccount}/api-keys/{apiKey}", operation_id="revokeApiKey", response_model=Message)
def revoke_api_key(account_id: AccountId, key_id: KeyId, db: Db, principal: Manage, ctx: Ctx) -> dict[str, str]:
    """Revoke a key; requests with it fail with 401 from now on. The record stays, marked revoked."""
    service.revoke_key(db, principal, account_id, key_id, ctx)
    return DONE
