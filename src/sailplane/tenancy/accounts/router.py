"""HTTP routes for /me (the caller's own account) and /users (organization admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from sailplane.iam.auth import catalog
from sailplane.iam.auth.deps import (
    AccountAnyScopePrincipal,
    AccountPrincipal,
    CurrentPrincipal,
    Db,
    principal_even_if_password_expired,
    require,
)
from sailplane.iam.auth.models import User
from sailplane.iam.auth.principal import Principal
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message
from sailplane.tenancy.accounts import service
from sailplane.tenancy.accounts.schemas import (
    ChangePasswordRequest,
    CreateUserRequest,
    CreateUserResponse,
    LoginList,
    LoginView,
    MeResponse,
    MyTeam,
    MyTeamList,
    OrganizationRef,
    OrgUserView,
    ResetPasswordResponse,
    TeamRoleRef,
    UpdateMeRequest,
    UpdateUserRequest,
    UserList,
    UserView,
)
from sailplane.tenancy.org import membership
from sailplane.tenancy.org.models import Member

me_router = APIRouter(route_class=JsonRoute, prefix="/me", tags=["users"])
users_router = APIRouter(route_class=JsonRoute, prefix="/users", tags=["users"])
Ctx = Annotated[RequestContext, Depends(request_context)]
AnyPrincipal = Annotated[Principal, Depends(principal_even_if_password_expired)]
ManageUsers = Annotated[Principal, Depends(require("CanManageUsers"))]
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="A user ID.")]
LoginId = Annotated[str, Path(pattern=ID_PATTERN, description="A login ID.")]


def user_view(user: User) -> UserView:
    return UserView(
        id=user.id, email=user.email, display_name=user.display_name, account_type=user.account_type,
        status=user.status, email_verified=user.email_verified_at is not None,
        must_change_password=user.must_change_password, created_at=user.created_at, updated_at=user.updated_at,
    )


def org_user_view(db: Db, user: User, member: Member) -> OrgUserView:
    base = user_view(user).model_dump()
    base["status"] = member.status if member.status != "active" else user.status
    return OrgUserView(**base, member_id=member.id, role_ids=service.role_ids_of(db, member.id))


@me_router.get("", operation_id="getMe", response_model=MeResponse)
def get_me(db: Db, principal: AnyPrincipal) -> MeResponse:
    """The caller's profile, the organization this request acts on, and every membership. A login through
    an organization's identity provider sees only that organization (`loginOrganizationId`), as if it
    were the only one: that provider vouches for the person there and nowhere else."""
    user = service.require_user(principal)
    bound = principal.bound_organization_id
    orgs = [OrganizationRef(id=o.id, name=o.name, member_id=m.id, role_ids=r) for m, o, r in
            service.memberships(db, user.id) if bound is None or o.id == bound]
    return MeResponse(
        user=user_view(user), preferences=service.preferences_of(user),
        organization_id=principal.organization_id, member_id=principal.member.id if principal.member else None,
        role_ids=sorted(principal.org_role_ids), default_organization_id=bound or user.default_organization_id,
        organizations=orgs, login_organization_id=bound,
    )


@me_router.patch("", operation_id="updateMe", response_model=MeResponse)
def update_me(body: UpdateMeRequest, db: Db, principal: AccountPrincipal, ctx: Ctx) -> MeResponse:
    """Change the caller's display name, preferences or default organization. These are the account's, so a
    login through an organization's identity provider may change them only while the account belongs to
    that organization alone (403 `organization_bound_login` otherwise)."""
    service.update_me(db, principal, body, ctx)
    return get_me(db, principal)


@me_router.get("/logins", operation_id="listMyLogins", response_model=LoginList)
def list_my_logins(db: Db, principal: CurrentPrincipal) -> LoginList:
    """Active (unexpired, unrevoked) logins with device, IP and user agent. A login bound to an organization
    (SSO) sees only the logins bound to that same organization."""
    current = principal.identity.login.id if principal.identity.login else None
    items = [
        LoginView(id=x.id, method=x.method, ip_address=x.ip_address, user_agent=x.user_agent, device=x.device,
                  created_at=x.created_at, expires_at=x.expires_at, last_used_at=x.last_used_at,
                  current=x.id == current, organization_id=x.organization_id)
        for x in service.list_logins(db, principal)
    ]
    return LoginList(items=items, total=len(items))


@me_router.delete("/logins/{loginId}", operation_id="revokeMyLogin", response_model=Message)
def revoke_my_login(login_id: Annotated[str, Path(alias="loginId", pattern=ID_PATTERN)], db: Db,
                    principal: CurrentPrincipal, ctx: Ctx) -> dict[str, str]:
    """Revoke one of the caller's logins; its token fails at once. A login bound to an organization (SSO) may
    revoke only logins bound to that same organization (404 for others)."""
    service.revoke_login(db, principal, login_id, ctx)
    return DONE


@me_router.get("/teams", operation_id="listMyTeams", response_model=MyTeamList)
def list_my_teams(db: Db, principal: CurrentPrincipal) -> MyTeamList:
    """The teams the caller belongs to in this organization, with their role in each."""
    items = [
        MyTeam(team_id=t.id, name=t.name, description=t.description, role_ids=roles,
               roles=[TeamRoleRef(id=r, name=catalog.TEAM_ROLES[r].name) for r in roles if r in catalog.TEAM_ROLES])
        for t, roles in service.my_teams(db, principal)
    ]
    return MyTeamList(items=items, total=len(items))


@users_router.get("", operation_id="listUsers", response_model=UserList)
def list_users(db: Db, principal: ManageUsers, page: Annotated[MarkerPage, Depends(marker_params)]) -> UserList:
    """The user accounts that are members of this organization."""
    rows, marker = service.list_users(db, principal, page)
    return UserList(items=[org_user_view(db, u, m) for u, m in rows], marker=marker)


@users_router.post("", operation_id="createUser", status_code=201, response_model=CreateUserResponse)
def create_user(body: CreateUserRequest, db: Db, principal: ManageUsers, ctx: Ctx) -> CreateUserResponse:
    """Create a managed account in this organization; without a password a temporary one is returned."""
    user, member, temporary = service.create_user(db, principal, body, ctx)
    return CreateUserResponse(**org_user_view(db, user, member).model_dump(), temporary_password=temporary)


@users_router.get("/{user}", operation_id="describeUser", response_model=OrgUserView)
def describe_user(user: UserId, db: Db, principal: ManageUsers) -> OrgUserView:
    found, member = membership.org_user(db, principal.organization_id, user)
    return org_user_view(db, found, member)


@users_router.patch("/{user}", operation_id="updateUser", response_model=OrgUserView)
def update_user(user: UserId, body: UpdateUserRequest, db: Db, principal: ManageUsers, ctx: Ctx) -> OrgUserView:
    """Status applies to the membership here; profile fields only while this is the user's only organization."""
    found, member = service.update_user(db, principal, user, body, ctx)
    return org_user_view(db, found, member)


@users_router.delete("/{user}", operation_id="deleteUser", response_model=Message)
def delete_user(user: UserId, db: Db, principal: ManageUsers, ctx: Ctx) -> dict[str, str]:
    """Remove the user from this organization (and delete the account if it belongs nowhere else)."""
    service.delete_user(db, principal, user, ctx)
    return DONE


@users_router.post("/{user}/change-password", operation_id="changeUserPassword", response_model=Message)
def change_user_password(user: UserId, body: ChangePasswordRequest, db: Db, principal: AccountAnyScopePrincipal,
                         ctx: Ctx) -> dict[str, str]:
    """The caller's own password change; needs the current password and ends every other login. Not through
    a login bound to an organization (SSO) while the account also belongs to others (403
    `organization_bound_login`)."""
    service.change_password(db, principal, user, body.current_password, body.new_password, ctx)
    return DONE


@users_router.post("/{user}/reset-password", operation_id="resetUserPassword", response_model=ResetPasswordResponse)
def reset_user_password(user: UserId, db: Db, principal: ManageUsers, ctx: Ctx) -> ResetPasswordResponse:
    """Admin: a temporary password, shown once, that must be changed at next sign-in; ends every login."""
    return ResetPasswordResponse(temporary_password=service.reset_password(db, principal, user, ctx))
