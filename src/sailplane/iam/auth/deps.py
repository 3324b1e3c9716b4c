"""FastAPI dependencies: the database session, the caller, and the permission checks routes declare.

Only the dependency that queries the database is synchronous (it runs in the threadpool); the
rest are `async def` so a request makes one thread hop for authentication, not one per check.
Hot read routes go further with read_team: the read joins that hop and the endpoint is `async`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Identity, Principal, authenticate, authenticate_principal, bearer_token
from sailplane.kit.db import commit_request, release
from sailplane.kit.errors import ApiError, forbidden, not_found, unauthorized
from sailplane.kit.ids import is_valid_id
from sailplane.tenancy.org.models import Member


async def get_db(request: Request) -> AsyncIterator[Session]:
    """Sessions connect lazily, so opening one here does no I/O; closing returns the connection.

    The dependencies below that authenticate with this session end its transaction (kit.db.release) before
    the endpoint's own worker-thread hop: a request holds a pooled connection only while a thread of its own
    is using it, never while it waits for a thread (when every thread waited for a connection held by a
    request waiting for a thread, a busy server deadlocked).

    The request is the unit of work: services flush, and the session commits here once the endpoint has
    returned, or rolls back (closing) if it raised. Scope "function" runs this before the response is sent,
    so a client never sees a success for a write that then failed to commit."""
    session: Session = request.app.state.db.session()
    try:
        yield session
        commit_request(session)
    finally:
        session.close()


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def read_session(request: Request) -> Session:
    """A session for a synchronous dependency that reads and returns plain data, closed by its caller
    (`with read_session(request) as db:`): cheaper than unwinding a Db dependency after the response."""
    return request.app.state.db.session()  # type: ignore[no-any-return]


Db = Annotated[Session, Depends(get_db, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]

AuthorizationHeader = Annotated[str | None, Header(alias="Authorization", include_in_schema=False)]
OrganizationHeader = Annotated[
    str | None,
    Header(alias="LakeSail-Organization-Id", description="The organization this request acts on."),
]


def optional_identity(db: Db, authorization: AuthorizationHeader = None) -> Identity | None:
    identity = authenticate(db, authorization)
    release(db)
    return identity


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
    principal = _authenticated(db, authorization, organization_id)
    release(db)  # the endpoint runs in another thread hop; an error above closes the session anyway
    return principal


def _authenticated(db: Session, authorization: str | None, organization_id: str | None) -> Principal:
    principal = authenticate_principal(db, authorization, organization_id)
    if principal is None:
        raise unauthorized()
    return principal


async def current_principal(
    principal: Annotated[Principal, Depends(principal_even_if_password_expired)],
) -> Principal:
    return usable(principal)


def usable(principal: Principal) -> Principal:
    """A login limited to MFA enrollment, or with a reset password, may do nothing else yet."""
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
AnyScopePrincipal = Annotated[Principal, Depends(principal_even_if_password_expired)]


def check_account_wide(db: Session, principal: Principal) -> Principal:
    """403 when a login bound to one organization (SSO) reaches for the whole account while the account
    also belongs to other organizations.

    The account's email addresses, password, MFA factor, trusted devices and profile serve every
    organization; an identity provider vouches for the person in its own organization only. So a login
    through it has over the account what that organization's admins already have (they may reset the
    password and MFA of accounts that belong to their organization alone, see accounts.service), and no
    more."""
    bound = principal.bound_organization_id
    if bound is None or principal.user is None:
        return principal
    elsewhere = db.scalar(select(Member.id).where(Member.user_id == principal.user.id,
                                                  Member.organization_id != bound).limit(1))
    if elsewhere is not None:
        raise ApiError(403, "organization_bound_login",
                       "This login came through your organization's identity provider and acts only in that "
                       "organization, while your account also belongs to others: sign in with your password or "
                       "a one-time code to change or view account-wide settings.")
    return principal


def account_wide(db: Db, principal: CurrentPrincipal) -> Principal:
    checked = check_account_wide(db, principal)
    release(db)
    return checked


def account_wide_any_scope(db: Db, principal: AnyScopePrincipal) -> Principal:
    """account_wide for the routes that also serve enrollment-only logins and reset passwords."""
    checked = check_account_wide(db, principal)
    release(db)
    return checked


AccountPrincipal = Annotated[Principal, Depends(account_wide)]
AccountAnyScopePrincipal = Annotated[Principal, Depends(account_wide_any_scope)]


def caller(db: Session, authorization: str | None, organization_id: str | None) -> Principal:
    """What CurrentPrincipal resolves to, as a plain call: for a synchronous dependency that also reads
    in the same worker-thread hop (see read_team), so its transaction goes on into that read."""
    return usable(_authenticated(db, authorization, organization_id))


async def signed_in(authorization: AuthorizationHeader = None) -> None:
    """401 for a request without credentials, declared before a read dependency that validates query
    parameters (see teams.router.list_teams): FastAPI validates a dependency's parameters before calling
    it, so without this an anonymous request with a bad `limit` would get 400 instead of 401."""
    if bearer_token(authorization) is None:
        raise unauthorized()


def require(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    """An organization-wide permission check, declared on the route."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not authz.has(principal, permission):
            raise forbidden(f"This operation needs the {permission} permission.")
        return principal

    check.__name__ = f"require_{permission}"
    return check


def require_team(permission: str, param: str = "team") -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A team-scoped check: 404 when the caller cannot see the team, 403 when they may not act in it."""

    async def check(request: Request, principal: CurrentPrincipal) -> Principal:
        return check_team(principal, permission, request.path_params.get(param, ""), param)

    check.__name__ = f"require_team_{permission}"
    return check


def check_team(principal: Principal, permission: str, team_id: str, param: str = "team") -> Principal:
    """require_team's checks, callable from a dependency that must also read in the same thread hop."""
    if not is_valid_id(team_id):
        raise ApiError(400, "validation_failed", f"{param} must match ^[A-Z0-9]{{1,20}}$.",
                       field_errors={param: "invalid ID"})
    if not authz.can_see_team(principal, team_id):
        raise not_found("team")
    if not authz.has(principal, permission, team_id):
        raise forbidden(f"This operation needs the {permission} permission in this team.")
    return principal


T = TypeVar("T")


def read_team(permission: str, read: Callable[[Session, Principal, str], T],
              param: str = "team") -> Callable[..., T]:
    """require_team(permission), then `read(db, principal, team_id)`, all in one worker-thread hop.

    For hot read routes, whose endpoint can then be `async` and only shape the result: a hop to the
    threadpool costs more than a small query, and a synchronous principal dependency followed by a
    synchronous endpoint makes two. The checks, and their order, are exactly require_team's."""

    def checked_read(request: Request, authorization: AuthorizationHeader = None,
                     organization_id: OrganizationHeader = None) -> T:
        with read_session(request) as db:
            principal = caller(db, authorization, organization_id)
            team_id = request.path_params.get(param, "")
            return read(db, check_team(principal, permission, team_id, param), team_id)

    checked_read.__name__ = f"read_team_{permission}"
    return checked_read
