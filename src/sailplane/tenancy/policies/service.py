"""Organization policies. A policy grants one principal (a member's user, a team, or a service
account of this organization) extra permissions organization-wide; auth.principal reads them.

Principals are addressed by ID (IDs are globally unique), optionally typed as "type:ID". A member
ID is accepted too and normalized to the member's user ID, which is what the principal loader uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sailplane.iam.auth import catalog
from sailplane.iam.auth.principal import Principal
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.errors import ApiError, not_found
from sailplane.kit.pagination import MarkerPage, apply_marker, split_marker
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org.models import Member
from sailplane.tenancy.policies.models import Policy
from sailplane.tenancy.service_accounts.models import ServiceAccount
from sailplane.tenancy.teams.models import Team, TeamMemberRole
from sailplane.workloads import access

USER, TEAM, SERVICE_ACCOUNT = "user", "team", "service_account"
# "member:ID" is accepted as input and stored as the member's user.
PRINCIPAL_PATTERN = r"^(?:(?:user|member|team|service_account):)?[A-Z0-9]{1,20}$"


@dataclass(frozen=True)
class PrincipalKey:
    type: str
    id: str


def _member_user(db: Session, org_id: str, raw_id: str, *, by_user: bool, by_member: bool) -> str | None:
    clauses = []
    if by_user:
        clauses.append(Member.user_id == raw_id)
    if by_member:
        clauses.append(Member.id == raw_id)
    return db.scalar(select(Member.user_id).where(Member.organization_id == org_id, or_(*clauses)))


def resolve(db: Session, org_id: str, raw: str) -> PrincipalKey:
    """Find the principal an ID names in this organization; 404 when it names nothing here."""
    kind, _, raw_id = raw.rpartition(":")
    if kind in ("", USER, "member"):
        user_id = _member_user(db, org_id, raw_id, by_user=kind in ("", USER), by_member=kind in ("", "member"))
        if user_id is not None:
            return PrincipalKey(USER, user_id)
    if kind in ("", TEAM) and db.scalar(
        select(Team.id).where(Team.id == raw_id, Team.organization_id == org_id)
    ) is not None:
        return PrincipalKey(TEAM, raw_id)
    if kind in ("", SERVICE_ACCOUNT) and db.scalar(
        select(ServiceAccount.id).where(ServiceAccount.id == raw_id, ServiceAccount.organization_id == org_id)
    ) is not None:
        return PrincipalKey(SERVICE_ACCOUNT, raw_id)
    raise not_found("principal")


def _find(db: Session, org_id: str, key: PrincipalKey) -> Policy | None:
    return db.scalar(select(Policy).where(
        Policy.organization_id == org_id, Policy.principal_type == key.type, Policy.principal_id == key.id
    ))


def check_permissions(permissions: list[str]) -> list[str]:
    """Only grantable catalog permissions; system-only ones (ownership) are never handed out by policy."""
    names = list(dict.fromkeys(permissions))
    for index, name in enumerate(names):
        if name not in catalog.PERMISSION_NAMES:
            raise ApiError(422, "unknown_permission", f"permissions: unknown permission {name!r}.",
                           field_errors={f"permissions.{index}": f"unknown permission {name!r}"})
        if name not in catalog.GRANTABLE:
            raise ApiError(422, "permission_not_grantable",
                           f"permissions: {name!r} is system-only and cannot be granted by a policy.",
                           field_errors={f"permissions.{index}": f"{name!r} cannot be granted by a policy"})
    return sorted(names)


def list_policies(db: Session, principal: Principal, page: MarkerPage) -> tuple[list[Policy], str | None]:
    stmt = select(Policy).where(Policy.organization_id == principal.organization_id)
    rows = list(db.scalars(apply_marker(stmt, Policy.id, page)))
    return split_marker(rows, page)


def describe_policy(db: Session, principal: Principal, raw: str) -> Policy:
    org_id = principal.organization_id
    try:
        key = resolve(db, org_id, raw)
    except ApiError:
        # The principal is gone (a removed member, a deleted team) but a policy may remain: it stays
        # visible and deletable by the ID it was granted to.
        policy = _find_orphan(db, org_id, raw)
        if policy is None:
            raise
        return policy
    policy = _find(db, org_id, key)
    if policy is None:
        raise not_found("policy")
    return policy


def _find_orphan(db: Session, org_id: str, raw: str) -> Policy | None:
    kind, _, raw_id = raw.rpartition(":")
    if kind == "member":
        return None
    stmt = select(Policy).where(Policy.organization_id == org_id, Policy.principal_id == raw_id)
    if kind:
        stmt = stmt.where(Policy.principal_type == kind)
    return db.scalars(stmt.limit(1)).first()


def set_policy(
    db: Session, principal: Principal, raw: str, permissions: list[str], ctx: RequestContext
) -> Policy:
    org_id = principal.organization_id
    key = resolve(db, org_id, raw)
    names = check_permissions(permissions)
    policy = _find(db, org_id, key)
    before: list[str] = []
    if policy is None:
        policy = Policy(organization_id=org_id, principal_type=key.type, principal_id=key.id, permissions=names,
                        created_by=principal.actor_id, updated_by=principal.actor_id)
        db.add(policy)
    else:
        before = list(policy.permissions or [])
        policy.permissions = names
        policy.updated_by = principal.actor_id
        policy.updated_at = utcnow()
    db.flush()
    audit.record(db, ctx, principal, "policy.set", "policy", policy.id,
                 details={"principalType": key.type, "principalId": key.id, "permissions": names,
                          "previousPermissions": before})
    _end_lost_sessions(db, principal, key, ctx)
    db.flush()
    return policy


def delete_policy(db: Session, principal: Principal, raw: str, ctx: RequestContext) -> None:
    policy = describe_policy(db, principal, raw)
    db.delete(policy)
    audit.record(db, ctx, principal, "policy.delete", "policy", policy.id,
                 details={"principalType": policy.principal_type, "principalId": policy.principal_id,
                          "permissions": list(policy.permissions or [])})
    db.flush()
    _end_lost_sessions(db, principal, PrincipalKey(policy.principal_type, policy.principal_id), ctx)
    db.flush()


def _end_lost_sessions(db: Session, principal: Principal, key: PrincipalKey, ctx: RequestContext) -> None:
    """A policy may have been what let its principal (or a team's members) use a session."""
    org_id = principal.organization_id
    if key.type == SERVICE_ACCOUNT:
        access.end_lost_sessions(db, ctx, principal, org_id, service_accounts=[key.id],
                                 why="Closed because its owner's policy no longer gives access to it.")
        return
    if key.type == USER:
        members = select(Member.id).where(Member.organization_id == org_id, Member.user_id == key.id)
    else:
        members = select(TeamMemberRole.member_id).where(TeamMemberRole.team_id == key.id).distinct()
    access.end_lost_sessions(db, ctx, principal, org_id, members=list(db.scalars(members)),
                             why="Closed because its owner's policy no longer gives access to it.")

