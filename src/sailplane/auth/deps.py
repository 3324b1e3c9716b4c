"""FastAPI dependencies: the database session, the caller, and the permission checks routes declare.

Only the dependency that queries the database is synchronous (it runs in the threadpool); the
rest are `async def` so a request makes one thread hop for authentication, not one per check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from sailplane.auth.principal import Identity, Principal, authenticate, resolve_principal
from sailplane.config import Settings
from sailplane.kit.errors import ApiError, forbidden, not_found, unauthorized
from sailplane.kit.ids import is_valid_id


async def get_db(request: Request) -> AsyncIterator[Session]:
    """Sessions connect lazily, so opening one here does no I/O; closing returns the connection."""
    session: Session = request.app.state.db.session()
    try:
        yield session
    finally:
        session.close()


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


Db = Annotated[Session, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]

AuthorizationHeader = Annotated[str | None, Header(alias="Authorization", include_in_schema=False)]
OrganizationHeader = Annotated[
    str | None,
    Header(alias="LakeSail-Organization-Id", description="The organization this request acts on."),
]


def optional_identity(db: Db, authorization: AuthorizationHeader = None) -> Identity | None:
    return authenticate(db, authorization)


async def current_identity(identity: Annotated[Identity | None, Depends(optional_identity)]) -> Identity:
    if identity is None:
        raise unauthorized()
    return identity


def principal_even_if_password_expired(
    db: Db,
    authorization: AuthorizationHeader = None,
    organization_id: OrganizationHeader = None,
) -> Principal:
    """Used directly only by the routes a user needs to get out of 'must change password'."""
    identity = authenticate(db, authorization)
    if identity is None:
        raise unauthorized()
    return resolve_principal(db, identity, organization_id)


async def current_principal(
    principal: Annotated[Principal, Depends(principal_even_if_password_expired)],
) -> Principal:
    login = principal.identity.login
    if login is not None and login.scope == "mfa_enrollment":
        raise ApiError(403, "mfa_enrollment_required",
                       "Your organization requires MFA: enroll an authenticator (startTotpEnrollment, then "
                       "confirmTotpEnrollment) before continuing.")
    user = principal.user
    if user is not None and user.must_change_password:
        raise ApiError(403, "password_change_required",
                       "Your password was reset; change it with changeUserPassword before continuing.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    """An organization-wide permission check, declared on the route."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has(permission):
            raise forbidden(f"This operation needs the {permission} permission.")
        return principal

    check.__name__ = f"require_{permission}"
    return check


def require_team(permission: str, param: str = "team") -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A team-scoped check: 404 when the caller cannot see the team, 403 when they may not act in it."""

    async def check(request: Request, principal: CurrentPrincipal) -> Principal:
        team_id = request.path_params.get(param, "")
        if not is_valid_id(team_id):
            raise ApiError(400, "validation_failed", f"{param} must match ^[A-Z0-9]{{1,20}}$.",
                           field_errors={param: "invalid ID"})
        if not principal.can_see_team(team_id):
            raise not_found("team")
        if not principal.has(permission, team_id):
            raise forbidden(f"This operation needs the {permission} permission in this team.")
        return principal

    check.__name__ = f"require_team_{permission}"
    return check
