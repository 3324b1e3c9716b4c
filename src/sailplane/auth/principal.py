"""Turning a bearer token into a principal, and answering "may this principal do X (in team T)?".

Effective permissions = organization roles + team roles (within that team) + policies of the
principal itself and of every team it belongs to (organization-wide).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sailplane.auth import catalog
from sailplane.auth.models import Login, User
from sailplane.kit.clock import utcnow
from sailplane.kit.crypto import token_hash
from sailplane.kit.errors import ApiError, unauthorized
from sailplane.kit.ids import is_valid_id
from sailplane.org.models import Member, MemberRole, Organization
from sailplane.policies.models import Policy
from sailplane.service_accounts.models import ApiKey, ServiceAccount
from sailplane.teams.models import TeamMemberRole

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
    def all_teams(self) -> bool:
        return any(catalog.ORG_ROLES[r].all_teams for r in self.org_role_ids if r in catalog.ORG_ROLES)

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
        if permission in self.org_permissions:
            return True
        if team_id is None:
            return False
        return any(permission in catalog.team_role_permissions(r) for r in self.team_roles.get(team_id, ()))

    def can_see_team(self, team_id: str) -> bool:
        return team_id in self.team_roles or self.all_teams or "CanViewTeam" in self.org_permissions

    def is_owner(self) -> bool:
        return catalog.OWNER in self.org_role_ids


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("The Authorization header must be 'Bearer <token>'.")
    return value.strip()


def authenticate(db: Session, authorization: str | None) -> Identity | None:
    token = _bearer(authorization)
    if token is None:
        return None
    now = utcnow()
    digest = token_hash(token)
    if token.startswith(API_KEY_PREFIX):
        row = db.execute(
            select(ApiKey, ServiceAccount)
            .join(ServiceAccount, ServiceAccount.id == ApiKey.service_account_id)
            .where(ApiKey.token_hash == digest)
        ).first()
        if row is None:
            raise unauthorized("The API key is not valid.")
        key, account = row
        if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
            raise unauthorized("The API key has expired or was revoked.")
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            key.last_used_at = now
            db.commit()
        return Identity(kind="service_account", service_account=account, api_key=key)
    found = db.execute(
        select(Login, User).join(User, User.id == Login.user_id).where(Login.token_hash == digest)
    ).first()
    if found is None:
        raise unauthorized("The token is not valid.")
    login, user = found
    if login.revoked_at is not None or login.expires_at <= now:
        raise unauthorized("The token has expired or was revoked.")
    if user.status != "active":
        raise unauthorized("The account is deactivated.")
    if login.last_used_at is None or now - login.last_used_at > LAST_USED_RESOLUTION:
        login.last_used_at = now
        db.commit()
    return Identity(kind="user", user=user, login=login)


def _org_not_found() -> ApiError:
    return ApiError(404, "organization_not_found", "The organization was not found.")


def resolve_principal(db: Session, identity: Identity, organization_id: str | None) -> Principal:
    """Pick the organization (header, else the only/default membership) and load grants for it."""
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
        perms = _policy_permissions(db, org.id, [("service_account", account.id)])
        return Principal(identity=identity, organization=org, member=None, policy_permissions=perms)

    user = identity.user
    assert user is not None
    stmt = select(Member).where(Member.user_id == user.id, Member.status == "active")
    if organization_id is not None:
        member = db.scalar(stmt.where(Member.organization_id == organization_id))
    else:
        members = list(db.scalars(stmt.order_by(Member.created_at).limit(50)))
        preferred = [m for m in members if m.organization_id == user.default_organization_id]
        member = preferred[0] if preferred else (members[0] if len(members) == 1 else None)
        if member is None and members:
            raise ApiError(400, "organization_required",
                           "You belong to several organizations; choose one with the LakeSail-Organization-Id header.")
    if member is None:
        raise _org_not_found()
    org = db.get(Organization, member.organization_id)
    if org is None:
        raise _org_not_found()
    role_ids = frozenset(db.scalars(select(MemberRole.role_id).where(MemberRole.member_id == member.id)))
    team_roles: dict[str, set[str]] = {}
    for team_id, role_id in db.execute(
        select(TeamMemberRole.team_id, TeamMemberRole.role_id).where(TeamMemberRole.member_id == member.id)
    ):
        team_roles.setdefault(team_id, set()).add(role_id)
    principals = [("user", user.id)] + [("team", t) for t in team_roles]
    perms = _policy_permissions(db, org.id, principals)
    return Principal(
        identity=identity,
        organization=org,
        member=member,
        org_role_ids=role_ids,
        team_roles={k: frozenset(v) for k, v in team_roles.items()},
        policy_permissions=perms,
    )


def _policy_permissions(db: Session, org_id: str, principals: list[tuple[str, str]]) -> frozenset[str]:
    # One IN per principal type (not one clause per principal): a member of many teams stays one cached statement.
    ids_by_type: dict[str, list[str]] = {}
    for principal_type, principal_id in principals:
        ids_by_type.setdefault(principal_type, []).append(principal_id)
    clauses = [(Policy.principal_type == t) & Policy.principal_id.in_(ids) for t, ids in ids_by_type.items()]
    rows = db.scalars(select(Policy.permissions).where(Policy.organization_id == org_id, or_(*clauses)))
    return frozenset(p for perms in rows for p in (perms or []) if p in catalog.GRANTABLE)
