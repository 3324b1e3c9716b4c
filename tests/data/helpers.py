"""Shared setup for catalog and query tests: an organization with two teams and their members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.actors import Actor, signup, unique_email
from tests.support.world import add_to_team, create_member, create_team


@dataclass
class Org:
    owner: Actor
    admin: Actor
    dev1: Actor  # Developer in team 1
    viewer1: Actor  # Viewer in team 1
    dev2: Actor  # Developer in team 2
    loner: Actor  # member of no team
    outsider: Actor  # owner of another organization
    team1: str
    team2: str


def build_org(api_url: str) -> Org:
    owner = signup(api_url)
    admin = create_member(owner, "ADMIN")
    dev1, viewer1, dev2, loner = (create_member(owner) for _ in range(4))
    team1, team2 = create_team(owner, f"t1-{unique_email()}"), create_team(owner, f"t2-{unique_email()}")
    add_to_team(owner, team1, dev1)
    add_to_team(owner, team1, viewer1, "TEAMVIEWER")
    add_to_team(owner, team2, dev2)
    return Org(owner, admin, dev1, viewer1, dev2, loner, signup(api_url), team1, team2)


def iceberg(name: str, team_ids: list[str], **config: Any) -> dict[str, Any]:
    return {"name": name, "provider": "iceberg_rest", "teamIds": team_ids,
            "providerConfig": {"uri": "https://catalog.example.com", "bearerAccessToken": "tok-SECRET-1", **config}}


def make_catalog(actor: Actor, name: str, team_ids: list[str], **config: Any) -> dict[str, Any]:
    r = actor.post("/data/catalogs", json=iceberg(name, team_ids, **config))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def make_query(actor: Actor, name: str, team_ids: list[str], **fields: Any) -> dict[str, Any]:
    r = actor.post("/workloads/queries", json={"name": name, "sql": "SELECT 1", "teamIds": team_ids, **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]
