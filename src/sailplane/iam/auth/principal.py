"""Turning a bearer token into a principal; "may this principal do X (in team T)?" is `auth.authz`.

Effective permissions = organization roles + team roles (within that team) + policies of the
principal itself and of every team it belongs to (organization-wide).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import String, bindparam, event, func, or_, select
from sqlalchemy.orm import Session

from sailplane.iam.auth import authz, catalog
from sailplane.iam.auth.models import Login, User
from sailplane.kit.clock import utcnow
from sailplane.kit.crypto import token_hash
from sailplane.kit.db import READ_ONLY_COMMIT, checkpoint
from sailplane.kit.errors import ApiError, unauthorized
from sailplane.kit.ids import is_valid_id
from sailplane.tenancy.org.models import Member, MemberRole, Organization
from sailplane.tenancy.policies.models import Policy
from sailplane.tenancy.service_accounts.models import ApiKey, ServiceAccount
from sailplane.tenancy.teams.models import TeamMemberRole

# Statements built once: constructing a select() costs more than running it on a warm connection.
_LOGIN_BY_HASH = select(Login, User).join(User, User.id == Login.user_id).where(Login.token_hash == bindparam("h"))
# The same, plus (in the same round trip) the active membership a request most likely acts in: the
# organization of the header, else the login's bound one, else the user's default one. Anything else
# takes the separate queries.
_LOGIN_AND_MEMBERSHIP = (
    select(Login, User, Member, Organization)
    .join(User, User.id == Login.user_id)
    .outerjoin(Member, (Member.user_id == User.id) & (Member.status == "active") & (
        Member.organization_id == func.coalesce(bindparam("org_id", type_=String), Login.organization_id,
                                                User.default_organization_id)))
    .outerjoin(Organization, Organization.id == Member.organization_id)
    .where(Login.token_hash == bindparam("h"))
)
_KEY_BY_HASH = (
    select(ApiKey, ServiceAccount)
    .join(ServiceAccount, ServiceAccount.id == ApiKey.service_account_id)
    .where(ApiKey.token_hash == bindparam("h"))
)
_MEMBERSHIPS = (
    select(Member, Organization)
    .join(Organization, Organization.id == Member.organization_id)
    .where(Member.user_id == bindparam("user_id"), Member.status == "active")
)
_MEMBERSHIP_IN_ORG = _MEMBERSHIPS.where(Member.organization_id == bindparam("org_id"))
_FIRST_TWO_MEMBERSHIPS = _MEMBERSHIPS.order_by(Member.created_at).limit(2)  # enough to tell "only one"
_ROLE_IDS = select(MemberRole.role_id).where(MemberRole.member_id == bindparam("member_id"))
_TEAM_ROLES = select(TeamMemberRole.team_id, TeamMemberRole.role_id).where(
    TeamMemberRole.member_id == bindparam("member_id")
)
_MEMBER_POLICIES = select(Policy.permissions).where(
    Policy.organization_id == bindparam("org_id"),
    or_(
        (Policy.principal_type == "user") & (Policy.principal_id == bindparam("user_id")),
        (Policy.principal_type == "team")
        & Policy.principal_id.in_(
            select(TeamMemberRole.team_id).where(TeamMemberRole.member_id == bindparam("member_id"))
        ),
    ),
)
_ACCOUNT_POLICIES = select(Policy.permissions).where(
    Policy.organization_id == bindparam("org_id"),
    Policy.principal_type == "service_account",
    Policy.principal_id == bindparam("account_id"),
)


class GrantsCache:
    """Per-process cache of a member's roles, team roles and policy grants.

    Tokens and memberships are still checked on every request (revocation is immediate); only
    the grants are reused. Any commit in this process clears the cache, so a change made here is
    seen at once; another replica's change is seen within `ttl` seconds.
    """

    def __init__(self, ttl: float = 3.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._generation = 0
        self._data: dict[str, tuple[float, Grants]] = {}

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, key: str) -> Grants | None:
        hit = self._data.get(key)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def put(self, key: str, value: Grants, generation: int) -> None:
        with self._lock:
            if generation == self._generation:  # nothing committed since we read: safe to keep
                if len(self._data) > 10_000:
                    self._data.clear()
                self._data[key] = (time.monotonic(), value)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._data.clear()


@dataclass(frozen=True)
class Grants:
    org_role_ids: frozenset[str]
    team_roles: dict[str, frozenset[str]]
    policy_permissions: frozenset[str]


GRANTS = GrantsCache()


@event.listens_for(Session, "after_commit")
def _grants_may_have_changed(session: Session) -> None:
    if not session.info.get(READ_ONLY_COMMIT):  # kit.db.release: a transaction that only read changed nothing
        GRANTS.clear()


LOGIN_PREFIX = "spl_"
API_KEY_PREFIX = "spk_"
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass
class Identity:
    """A validated credential, before an organization is chosen."""

    kind: Literal["user", "service_account"]
    user: User | None = None
    login: Login | None = None
    service_account: ServiceAccount | None = None
    api_key: ApiKey | None = None


@dataclass
class Principal:
    identity: Identity
    organization: Organization
    member: Member | None
    org_role_ids: frozenset[str] = frozenset()
    team_roles: dict[str, frozenset[str]] = field(default_factory=dict)
    policy_permissions: frozenset[str] = frozenset()

    @property
    def kind(self) -> str:
        return self.identity.kind

    @property
    def organization_id(self) -> str:
        return self.organization.id

    @property
    def actor_id(self) -> str:
        """The ID recorded in createdBy/updatedBy: the member, or the service account."""
        if self.member is not None:
            return self.member.id
        assert self.identity.service_account is not None
        return self.identity.service_account.id

    @property
    def user(self) -> User | None:
        return self.identity.user

    @property
    def bound_organization_id(self) -> str | None:
        """The organization a login obtained through its identity provider is bound to; None for logins that
        act in every membership (password, one-time code) and for API keys."""
        login = self.identity.login
        return login.organization_id if login is not None else None

    @property
    def all_teams(self) -> bool:
        return authz.all_teams(self)

    @property
    def org_permissions(self) -> frozenset[str]:
        perms: set[str] = set(self.policy_permissions)
        for role_id in self.org_role_ids:
            perms |= catalog.org_role_permissions(role_id)
        return frozenset(perms)

    @property
    def team_ids(self) -> frozenset[str]:
        return frozenset(self.team_roles)

    def has(self, permission: str, team_id: str | None = None) -> bool:
        """`auth.authz.has`: the rule lives there."""
        return authz.has(self, permission, team_id)

    def can_see_team(self, team_id: str) -> bool:
        """`auth.authz.can_see_team`: the rule lives there."""
        return authz.can_see_team(self, team_id)

    def is_owner(self) -> bool:
        return catalog.OWNER in self.org_role_ids


def bearer_token(authorization: str | None) -> str | None:
    """The token of a Bearer Authorization header; None without one, 401 for another scheme."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("The Authorization header must be 'Bearer <token>'.")
    return value.strip()


Membership = tuple[Member, Organization]


def authenticate(db: Session, authorization: str | None) -> Identity | None:
    return _authenticate(db, authorization, None, prefetch=False)[0]


def authenticate_principal(db: Session, authorization: str | None, organization_id: str | None) -> Principal | None:
    """authenticate() then resolve_principal(), reading the login and the likely membership in one query.

    Every check is the same as with the two calls: the login is still read from the database on each request."""
    prefetch = organization_id is None or is_valid_id(organization_id)
    identity, membership = _authenticate(db, authorization, organization_id, prefetch=prefetch)
    if identity is None:
        return None
    return resolve_principal(db, identity, organization_id, membership,
                             looked_up=prefetch and identity.kind == "user")


def _authenticate(db: Session, authorization: str | None, organization_id: str | None,
                  *, prefetch: bool) -> tuple[Identity | None, Membership | None]:
    token = bearer_token(authorization)
    if token is None:
        return None, None
    now = utcnow()
    digest = token_hash(token)
    if token.startswith(API_KEY_PREFIX):
        row = db.execute(_KEY_BY_HASH, {"h": digest}).first()
        if row is None:
            raise unauthorized("The API key is not valid.")
        key, account = row
        if not key_usable(key, now):
            raise unauthorized("The API key has expired or was revoked.")
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            key.last_used_at = now
            checkpoint(db)  # kept whatever the request does next (read_session closes without committing)
        return Identity(kind="service_account", service_account=account, api_key=key), None
    found = _login(db, digest, organization_id, prefetch)
    if found is None:
        raise unauthorized("The token is not valid.")
    login, user, membership = found
    if not login_usable(login, now):
        raise unauthorized("The token has expired or was revoked.")
    if user.status != "active":
        raise unauthorized("The account is deactivated.")
    if login.last_used_at is None or now - login.last_used_at > LAST_USED_RESOLUTION:
        login.last_used_at = now
        checkpoint(db)  # kept whatever the request does next (read_session closes without committing)
    return Identity(kind="user", user=user, login=login), membership


def key_usable(key: ApiKey, now: datetime) -> bool:
    """Neither revoked nor expired: the one rule for API keys, here and wherever a key's use is re-checked."""
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


def login_usable(login: Login, now: datetime) -> bool:
    """Neither revoked (sign-out, revokeMyLogin, a password change) nor expired."""
    return login.revoked_at is None and login.expires_at > now


def _login(db: Session, digest: str, organization_id: str | None,
           prefetch: bool) -> tuple[Login, User, Membership | None] | None:
    if not prefetch:
        row = db.execute(_LOGIN_BY_HASH, {"h": digest}).first()
        return None if row is None else (row[0], row[1], None)
    joined = db.execute(_LOGIN_AND_MEMBERSHIP, {"h": digest, "org_id": organization_id}).first()
    if joined is None:
        return None
    login, user, member, org = joined
    return login, user, ((member, org) if member is not None and org is not None else None)


def _org_not_found() -> ApiError:
    return ApiError(404, "organization_not_found", "The organization was not found.")


def resolve_principal(db: Session, identity: Identity, organization_id: str | None,
                      membership: Membership | None = None, *, looked_up: bool = False,
                      fresh: bool = False) -> Principal:
    """Pick the organization (header, else the only/default membership) and load grants for it.

    `membership`, when given, is the user's active membership in the header's organization, or with no
    header in the login's bound one, else their default one (what the queries below would pick);
    `looked_up` says that lookup was already made, so None means there is no such membership and it is
    not queried again. A login bound to an organization (SSO) acts in no other. `fresh` reads the
    grants from the database and leaves GRANTS alone: another replica's change may be newer than what
    it holds, and a read inside an uncommitted change must not be remembered."""
    if organization_id is not None and not is_valid_id(organization_id):
        raise ApiError(400, "validation_failed", "LakeSail-Organization-Id must match ^[A-Z0-9]{1,20}$.",
                       field_errors={"LakeSail-Organization-Id": "invalid ID"})
    if identity.kind == "service_account":
        account = identity.service_account
        assert account is not None
        if organization_id is not None and organization_id != account.organization_id:
            raise _org_not_found()
        org = db.get(Organization, account.organization_id)
        if org is None:
            raise _org_not_found()
        generation = GRANTS.generation
        grants = None if fresh else GRANTS.get(account.id)
        if grants is None:
            perms = _grantable(db.scalars(_ACCOUNT_POLICIES, {"org_id": org.id, "account_id": account.id}))
            grants = Grants(frozenset(), {}, perms)
            if not fresh:
                GRANTS.put(account.id, grants, generation)
        return Principal(identity=identity, organization=org, member=None,
                         policy_permissions=grants.policy_permissions)

    user = identity.user
    assert user is not None
    bound = identity.login.organization_id if identity.login is not None else None
    if bound is not None:
        # Signed in through this organization's identity provider, which vouches for the person here only:
        # any other organization answers as it would to a non-member, and without a header it is this one.
        if organization_id is not None and organization_id != bound:
            raise _org_not_found()
        organization_id = bound
    member, org = membership or _choose_membership(db, user, organization_id, chosen_one_absent=looked_up)
    grants = _member_grants(db, member, user.id, fresh=fresh)
    return Principal(
        identity=identity,
        organization=org,
        member=member,
        org_role_ids=grants.org_role_ids,
        team_roles=grants.team_roles,
        policy_permissions=grants.policy_permissions,
    )


def _choose_membership(db: Session, user: User, organization_id: str | None,
                       chosen_one_absent: bool = False) -> Membership:
    """The header's organization, else the user's default one, else their only one.

    `chosen_one_absent`: the header's (or default) membership is already known not to exist."""
    if organization_id is not None:
        found = None if chosen_one_absent else db.execute(
            _MEMBERSHIP_IN_ORG, {"user_id": user.id, "org_id": organization_id}).first()
    else:
        found = None
        if user.default_organization_id is not None and not chosen_one_absent:
            found = db.execute(_MEMBERSHIP_IN_ORG, {"user_id": user.id, "org_id": user.default_organization_id}).first()
        if found is None:
            rows = db.execute(_FIRST_TWO_MEMBERSHIPS, {"user_id": user.id}).all()
            if len(rows) > 1:
                raise ApiError(400, "organization_required", "You belong to several organizations; choose one "
                               "with the LakeSail-Organization-Id header.")
            found = rows[0] if rows else None
    if found is None:
        raise _org_not_found()
    return found[0], found[1]


def _member_grants(db: Session, member: Member, user_id: str, *, fresh: bool = False) -> Grants:
    generation = GRANTS.generation
    cached = None if fresh else GRANTS.get(member.id)
    if cached is not None:
        return cached
    role_ids = frozenset(db.scalars(_ROLE_IDS, {"member_id": member.id}))
    team_roles: dict[str, set[str]] = {}
    for team_id, role_id in db.execute(_TEAM_ROLES, {"member_id": member.id}):
        team_roles.setdefault(team_id, set()).add(role_id)
    params = {"org_id": member.organization_id, "user_id": user_id, "member_id": member.id}
    grants = Grants(
        org_role_ids=role_ids,
        team_roles={k: frozenset(v) for k, v in team_roles.items()},
        policy_permissions=_grantable(db.scalars(_MEMBER_POLICIES, params)),
    )
    if not fresh:
        GRANTS.put(member.id, grants, generation)
    return grants


def _grantable(rows: Iterable[list[str] | None]) -> frozenset[str]:
    return frozenset(p for perms in rows for p in (perms or []) if p in catalog.GRANTABLE)
