"""Shortcuts shared by the organization and team tests: members, teams, and the audit rows a
mutation must leave behind (read straight from the database the server writes to)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, select

from sailplane.config import Settings
from sailplane.tenancy.audit.models import AuditEvent
from tests.support.actors import PASSWORD, Actor, login, unique_email


def make_member(owner: Actor, role: str = "MEMBER", name: str = "Member", email: str | None = None) -> Actor:
    """A new account in the owner's organization (through createUser), signed in."""
    email = email or unique_email(role.lower())
    r = owner.post("/users", json={"email": email, "displayName": name, "password": PASSWORD, "roleIds": [role]})
    assert r.status_code == 201, r.text
    body = r.json()
    token = login(owner.base_url, email, PASSWORD).json()["token"]
    return Actor(owner.base_url, token, owner.org_id, body["id"], body["memberId"], email, PASSWORD)


def make_team(actor: Actor, name: str, **fields: Any) -> dict[str, Any]:
    r = actor.post("/org/teams", json={"name": name, **fields})
    assert r.status_code == 201, r.text
    return r.json()["team"]  # type: ignore[no-any-return]


def add_to_team(actor: Actor, team_id: str, member: Actor, *roles: str) -> None:
    body = {"roleIds": list(roles)} if roles else {}
    r = actor.put(f"/org/teams/{team_id}/members/{member.member_id}", json=body)
    assert r.status_code == 200, r.text


@lru_cache(maxsize=4)
def _engine(url: str) -> Engine:
    return create_engine(url)


def audit_rows(settings: Settings, org_id: str | None, action: str, resource_id: str | None = None) -> list[Any]:
    stmt = select(AuditEvent).where(AuditEvent.organization_id == org_id, AuditEvent.action == action)
    if resource_id is not None:
        stmt = stmt.where(AuditEvent.resource_id == resource_id)
    with _engine(settings.database_url).connect() as conn:
        return list(conn.execute(stmt).all())


def assert_audited(settings: Settings, actor: Actor, action: str, resource_id: str) -> Any:
    """A success event for this action on this resource, by this actor, in this org; returns the latest."""
    rows = audit_rows(settings, actor.org_id, action, resource_id)
    assert len(rows) >= 1, f"no audit event {action} for {resource_id}"
    row = rows[-1]
    assert row.actor_id == actor.member_id and row.outcome == "success", row
    return row
