"""The authorization matrix of data: catalogs and saved queries, their team sharing, and the caller's
and a team's listings.

Expected statuses follow the team role catalog (sailplane.iam.auth.catalog): every team role views the
catalogs and queries shared with its team; Developers and Team Admins create, change, share and
delete them; organization admins do all of it everywhere. Neither service account holds a data
permission, though the one with a policy sees every team (CanViewTeam): it is told 403 where a team
is named, and finds no catalog or query. A team the caller cannot see is an unknown team (422).
A catalog's secrets never appear in any response.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.authz.matrix import (
    CALLERS,
    TEAM1,
    TEAM1_WRITERS,
    Case,
    Context,
    by_caller,
    lists,
    once,
    run_cases,
)
from tests.support.actors import unique_email
from tests.support.world import World, create_team

CATALOG_SECRET = "matrix-catalog-SECRET-token"


def in_org(ok: int = 200) -> dict[str, int]:
    return by_caller(ok, CALLERS, outsider_in_org=404)


def read(ok: int = 200) -> dict[str, int]:
    """Shared with team 1: its members (every role) and organization admins see it; others get 404."""
    return by_caller(ok, TEAM1)


def write(ok: int = 200) -> dict[str, int]:
    """Changing what team 1 shares: not its Viewer (403, it sees the resource)."""
    return by_caller(ok, TEAM1_WRITERS, seen={"viewer_t1"})


def create_in_team1(ok: int) -> dict[str, int]:
    """Creating for team 1: the Viewer and the admin service account see the team (403); for the
    others it is an unknown team (422)."""
    return by_caller(ok, TEAM1_WRITERS, seen={"viewer_t1", "sa_with_policy"}, others=422, outsider_in_org=404)


def share_with_team2(ok: int = 200) -> dict[str, int]:
    """Sharing team 1's resource with team 2: team 1's Developer and Team Admin may manage it but
    cannot see team 2 (unknown team, 422)."""
    return write(ok) | {"member_t1": 422, "teamadmin_t1": 422}


def list_team1(ok: int = 200) -> dict[str, int]:
    """A team's listing: the admin service account sees the team but may not view its data (403)."""
    return by_caller(ok, TEAM1, seen={"sa_with_policy"})


# --- targets -------------------------------------------------------------------------------------

def catalog_body(team_ids: list[str]) -> dict[str, Any]:
    return {"name": f"catalog-{unique_email('c')}", "provider": "iceberg_rest", "teamIds": team_ids,
            "providerConfig": {"uri": "https://catalog.example.com", "bearerAccessToken": CATALOG_SECRET}}


def query_body(team_ids: list[str], **fields: Any) -> dict[str, Any]:
    return {"name": f"query-{unique_email('q')}", "sql": "SELECT 1", "teamIds": team_ids, **fields}


def fresh_catalog(w: World, *extra_teams: str) -> Context:
    r = w.owner.post("/data/catalogs", json=catalog_body([w.team1, *extra_teams]))
    assert r.status_code == 201, r.text
    return {"catalog": r.json()["id"]}


def fresh_query(w: World, *extra_teams: str) -> Context:
    r = w.owner.post("/workloads/queries", json=query_body([w.team1, *extra_teams]))
    assert r.status_code == 201, r.text
    return {"query": r.json()["id"]}


def catalog_with_query(w: World) -> Context:
    catalog = fresh_catalog(w)["catalog"]
    r = w.owner.post("/workloads/queries", json=query_body([w.team1], catalogId=catalog))
    assert r.status_code == 201, r.text
    return {"catalog": catalog, "query": r.json()["id"]}


def fresh_catalog_with_two_teams(w: World) -> Context:
    team = create_team(w.owner, f"Data team {unique_email('dt')}")
    return fresh_catalog(w, team) | {"team": team}


def fresh_query_with_two_teams(w: World) -> Context:
    team = create_team(w.owner, f"Query team {unique_email('qt')}")
    return fresh_query(w, team) | {"team": team}


shared_catalog = once(fresh_catalog)
shared_query = once(fresh_query)
shared_catalog_with_query = once(catalog_with_query)
shared_catalog_with_two_teams = once(fresh_catalog_with_two_teams)
shared_query_with_two_teams = once(fresh_query_with_two_teams)


def with_team(setup: Any, attribute: str) -> Any:
    return lambda w: setup(w) | {"team": getattr(w, attribute)}


def cases() -> list[Case]:
    catalog_path = "/data/catalogs/{catalog}"
    query_path = "/workloads/queries/{query}"

    def at(template: str) -> Any:
        return lambda w, c: template.format(**c)

    return [
        # catalogs
        Case("listMyCatalogs", "GET", lambda w, c: "/me/catalogs", in_org(), setup=shared_catalog,
             check=lists("catalog", TEAM1)),
        Case("listCatalogs", "GET", lambda w, c: "/data/catalogs", in_org(), setup=shared_catalog,
             check=lists("catalog", TEAM1)),
        Case("listTeamCatalogs", "GET", lambda w, c: f"/data/teams/{w.team1}/catalogs", list_team1(),
             setup=shared_catalog, check=lists("catalog", TEAM1)),
        Case("createCatalog", "POST", lambda w, c: "/data/catalogs", create_in_team1(201),
             setup=lambda w: {"team1": w.team1}, body=lambda c: catalog_body([c["team1"]])),
        Case("describeCatalog", "GET", at(catalog_path), read(), setup=shared_catalog),
        Case("updateCatalog", "PATCH", at(catalog_path), write(), setup=shared_catalog, fresh=fresh_catalog,
             body=lambda c: {"description": "Updated"}),
        Case("deleteCatalog", "DELETE", at(catalog_path), write(), setup=shared_catalog, fresh=fresh_catalog),
        Case("listCatalogTeams", "GET", at(catalog_path + "/teams"), read(), setup=shared_catalog),
        Case("addCatalogTeams", "POST", at(catalog_path + "/teams"), write(), setup=with_team(shared_catalog, "team1"),
             body=lambda c: {"teamIds": [c["team"]]}, label="a team it has"),
        Case("addCatalogTeams", "POST", at(catalog_path + "/teams"), share_with_team2(),
             setup=with_team(shared_catalog, "team2"), fresh=with_team(fresh_catalog, "team2"),
             body=lambda c: {"teamIds": [c["team"]]}, label="team 2"),
        Case("removeCatalogTeam", "DELETE", at(catalog_path + "/teams/{team}"), write(),
             setup=shared_catalog_with_two_teams, fresh=fresh_catalog_with_two_teams),
        Case("listCatalogQueries", "GET", at(catalog_path + "/queries"), read(), setup=shared_catalog_with_query,
             check=lists("query", TEAM1)),
        # saved queries
        Case("listMyQueries", "GET", lambda w, c: "/me/queries", in_org(), setup=shared_query,
             check=lists("query", TEAM1)),
        Case("listQueries", "GET", lambda w, c: "/workloads/queries", in_org(), setup=shared_query,
             check=lists("query", TEAM1)),
        Case("listTeamQueries", "GET", lambda w, c: f"/workloads/teams/{w.team1}/queries", list_team1(),
             setup=shared_query, check=lists("query", TEAM1)),
        Case("createQuery", "POST", lambda w, c: "/workloads/queries", create_in_team1(201),
             setup=lambda w: {"team1": w.team1}, body=lambda c: query_body([c["team1"]])),
        Case("describeQuery", "GET", at(query_path), read(), setup=shared_query),
        Case("updateQuery", "PATCH", at(query_path), write(), setup=shared_query, fresh=fresh_query,
             body=lambda c: {"description": "Updated"}),
        Case("deleteQuery", "DELETE", at(query_path), write(), setup=shared_query, fresh=fresh_query),
        Case("listQueryTeams", "GET", at(query_path + "/teams"), read(), setup=shared_query),
        Case("addQueryTeams", "POST", at(query_path + "/teams"), write(), setup=with_team(shared_query, "team1"),
             body=lambda c: {"teamIds": [c["team"]]}, label="a team it has"),
        Case("addQueryTeams", "POST", at(query_path + "/teams"), share_with_team2(),
             setup=with_team(shared_query, "team2"), fresh=with_team(fresh_query, "team2"),
             body=lambda c: {"teamIds": [c["team"]]}, label="team 2"),
        Case("removeQueryTeam", "DELETE", at(query_path + "/teams/{team}"), write(),
             setup=shared_query_with_two_teams, fresh=fresh_query_with_two_teams),
    ]


@pytest.fixture(scope="module")
def world(core_world: World) -> World:
    return core_world


@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix(world: World, caller: str) -> None:
    run_cases(world, caller, cases(), hidden=[CATALOG_SECRET])
