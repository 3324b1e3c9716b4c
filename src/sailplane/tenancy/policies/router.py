"""HTTP routes for organization policies (all need CanManagePolicies)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from sailplane.iam.auth.deps import Db, require
from sailplane.iam.auth.principal import Principal
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message
from sailplane.tenancy.policies import service
from sailplane.tenancy.policies.models import Policy
from sailplane.tenancy.policies.schemas import PolicyList, PolicyView, PrincipalRef, SetPolicyRequest

router = APIRouter(route_class=JsonRoute, prefix="/org/policies", tags=["authorization-policies"])
Ctx = Annotated[RequestContext, Depends(request_context)]
ManagePolicies = Annotated[Principal, Depends(require("CanManagePolicies"))]
PrincipalPath = Annotated[str, Path(
    alias="principal", pattern=service.PRINCIPAL_PATTERN,
    description="A user, member, team or service account ID of this organization, optionally as type:ID.",
)]


def policy_view(policy: Policy) -> PolicyView:
    return PolicyView(
        principal=PrincipalRef(type=policy.principal_type, id=policy.principal_id),  # type: ignore[arg-type]
        permissions=sorted(policy.permissions or []), created_at=policy.created_at, created_by=policy.created_by,
        updated_at=policy.updated_at, updated_by=policy.updated_by,
    )


@router.get("", operation_id="listOrganizationPolicies", response_model=PolicyList)
def list_organization_policies(db: Db, principal: ManagePolicies,
                               page: Annotated[MarkerPage, Depends(marker_params)]) -> PolicyList:
    """Every principal with organization-wide permission grants, paged with limit and marker."""
    rows, marker = service.list_policies(db, principal, page)
    return PolicyList(items=[policy_view(p) for p in rows], marker=marker)


@router.get("/{principal}", operation_id="describeOrganizationPolicy", response_model=PolicyView)
def describe_organization_policy(principal_id: PrincipalPath, db: Db, principal: ManagePolicies) -> PolicyView:
    """The permissions explicitly granted to one principal (404 when it has no policy)."""
    return policy_view(service.describe_policy(db, principal, principal_id))


@router.put("/{principal}", operation_id="setOrganizationPolicy", response_model=PolicyView)
def set_organization_policy(principal_id: PrincipalPath, body: SetPolicyRequest, db: Db, principal: ManagePolicies,
                            ctx: Ctx) -> PolicyView:
    """Replace the principal's granted permissions; only grantable catalog permissions are accepted."""
    return policy_view(service.set_policy(db, principal, principal_id, body.permissions, ctx))


@router.delete("/{principal}", operation_id="deleteOrganizationPolicy", response_model=Message)
def delete_organization_policy(principal_id: PrincipalPath, db: Db, principal: ManagePolicies,
                               ctx: Ctx) -> dict[str, str]:
    """Revoke every organization-wide grant the principal's policy held."""
    service.delete_policy(db, principal, principal_id, ctx)
    return DONE
