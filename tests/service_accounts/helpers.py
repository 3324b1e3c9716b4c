"""Helpers shared by the invitations, policies, service-account and audit tests."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from tests.support.actors import PASSWORD, Actor, login, unique_email


def make_user(owner: Actor, role: str = "MEMBER") -> Actor:
    """A new account in the owner's organization, signed in."""
    email = unique_email("member")
    r = owner.post("/users", json={"email": email, "displayName": "Member", "password": PASSWORD,
                                   "roleIds": [role]})
    assert r.status_code == 201, r.text
    created = r.json()
    signed_in = login(owner.base_url, email, PASSWORD)
    assert signed_in.status_code == 200, signed_in.text
    return Actor(owner.base_url, signed_in.json()["token"], owner.org_id, created["id"], created["memberId"], email,
                 PASSWORD)


def make_team(owner: Actor, name: str | None = None) -> str:
    r = owner.post("/org/teams", json={"name": name or f"team-{unique_email('t').split('@')[0]}"})
    assert r.status_code == 201, r.text
    return str(r.json()["team"]["id"])


def make_service_account(owner: Actor, name: str = "ci-bot") -> dict[str, Any]:
    r = owner.post("/org/service-accounts", json={"name": name, "description": "Runs the nightly jobs"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def make_api_key(owner: Actor, account_id: str, **extra: Any) -> dict[str, Any]:
    r = owner.post(f"/org/service-accounts/{account_id}/api-keys", json={"name": "deploy", **extra})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def key_actor(owner: Actor, secret: str, *, org_header: bool = False) -> Actor:
    return Actor(owner.base_url, secret, owner.org_id if org_header else None)


@lru_cache(maxsize=4)
def engine(url: str) -> Engine:
    """Direct database access, for checking what is (and is not) stored."""
    return create_engine(url)
