"""The authorization matrix of notebooks: records, sharing with teams, the source and its revisions.

The target is a notebook of team 1's Developer (`member_t1`), on a workload config of team 1, shared with
team 1. Every member of team 1 and the organization admins see it (others: 404); its owner and the
organization admins change, share and delete it (team 1's Viewer and Team Admin see it: 403); members of
team 1 holding CanManageNotebooks (Developer, Team Admin) also edit its source. Notebooks belong to
members: service accounts create none (403), and neither of ours sees any.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.authz.matrix import CALLERS, TEAM1, Case, Context, by_caller, lists, once, run_cases
from tests.notebooks.helpers import db_rows
from tests.support.actors import unique_email
from tests.support.world import World, create_team

MANAGERS = frozenset({"owner", "admin", "member_t1"})
EDITORS = MANAGERS | {"teamadmin_t1"}


def read(ok: int = 200) -> dict[str, int]:
    return by_caller(ok, TEAM1)


def manage(ok: int = 200) -> dict[str, int]:
    return by_caller(ok, MANAGERS, seen=TEAM1)


def edit(ok: int = 200) -> dict[str, int]:
    return by_caller(ok, EDITORS, seen=TEAM1)


def config_of_team1(w: World) -> Context:
    r = w.member_t1.post("/workloads/compute-configs", json={"name": f"nb-{unique_email('c')}", "teamId": w.team1})
    assert r.status_code == 201, r.text
    return {"config": r.json()["id"]}


def fresh_notebook(w: World, *extra_teams: str) -> Context:
    config = shared_config(w)["config"]
    r = w.member_t1.post("/workloads/notebooks", json={"workloadConfigId": config, "name": "Matrix notebook",
                                                       "teamIds": [w.team1]})
    assert r.status_code == 201, r.text
    notebook = r.json()["item"]["notebookId"]
    if extra_teams:
        added = w.owner.post(f"/workloads/notebooks/{notebook}/teams", json={"teamIds": list(extra_teams)})
        assert added.status_code == 200, added.text
    source = w.member_t1.put(f"/workloads/notebooks/{notebook}/source", content=b"import marimo\n")
    assert source.status_code == 200, source.text
    return {"notebook": notebook, "revision": source.json()["revisionId"], "config": config}


def fresh_notebook_with_two_teams(w: World) -> Context:
    team = create_team(w.owner, f"Notebook team {unique_email('nt')}")
    return fresh_notebook(w, team) | {"team": team}


shared_config = once(config_of_team1)
def stopping_notebook(w: World) -> Context:
    """A notebook in `stopping` on no node (no controller touches it): start is a conflict for whoever may
    start it, so the matrix checks who may without starting anything."""
    context = fresh_notebook(w)
    db_rows(w.shared["database_url"], "UPDATE notebooks SET status = 'stopping' WHERE id = :id",
            id=context["notebook"])
    return context


shared_notebook = once(fresh_notebook)
shared_stopping_notebook = once(stopping_notebook)
shared_notebook_with_two_teams = once(fresh_notebook_with_two_teams)


def with_team(setup: Any, attribute: str) -> Any:
    return lambda w: setup(w) | {"team": getattr(w, attribute)}


def cases() -> list[Case]:
    path = "/workloads/notebooks/{notebook}"

    def at(template: str) -> Any:
        return lambda w, c: template.format(**c)

    create = by_caller(201, MANAGERS | {"teamadmin_t1"}, seen={"viewer_t1", "sa_with_policy", "sa_without_policy"},
                       outsider_in_org=404)
    return [
        Case("listNotebooks", "GET", lambda w, c: "/workloads/notebooks", by_caller(200, CALLERS, outsider_in_org=404),
             setup=shared_notebook, check=lists("notebook", TEAM1)),
        Case("listTeamNotebooks", "GET", lambda w, c: f"/workloads/teams/{w.team1}/notebooks",
             by_caller(200, TEAM1 | {"sa_with_policy"}), setup=shared_notebook, check=lists("notebook", TEAM1)),
        Case("createNotebook", "POST", lambda w, c: "/workloads/notebooks", create, setup=shared_config,
             body=lambda c: {"workloadConfigId": c["config"], "name": "Created by the matrix"}),
        Case("describeNotebook", "GET", at(path), read(), setup=shared_notebook),
        Case("updateNotebook", "PATCH", at(path), manage(), setup=shared_notebook,
             body=lambda c: {"description": "Updated"}),
        Case("deleteNotebook", "DELETE", at(path), manage(), setup=shared_notebook, fresh=fresh_notebook),
        Case("openNotebook", "POST", at(path + "/open"), read(409), setup=shared_notebook,
             label="stopped"),  # running: tests/notebooks/test_proxy.py
        Case("listNotebookTeams", "GET", at(path + "/teams"), read(), setup=shared_notebook),
        Case("addNotebookTeams", "POST", at(path + "/teams"), manage(), setup=with_team(shared_notebook, "team1"),
             body=lambda c: {"teamIds": [c["team"]]}, label="a team it has"),
        Case("addNotebookTeams", "POST", at(path + "/teams"), manage() | {"member_t1": 422},
             setup=with_team(shared_notebook, "team2"), fresh=with_team(fresh_notebook, "team2"),
             body=lambda c: {"teamIds": [c["team"]]}, label="team 2"),
        Case("removeNotebookTeam", "DELETE", at(path + "/teams/{team}"), manage(),
             setup=shared_notebook_with_two_teams, fresh=fresh_notebook_with_two_teams),
        Case("getNotebookSource", "GET", at(path + "/source"), read(), setup=shared_notebook),
        Case("replaceNotebookSource", "PUT", at(path + "/source"), edit(), setup=shared_notebook,
             body=lambda c: "# edited by the matrix\n"),
        Case("listNotebookSourceRevisions", "GET", at(path + "/source/revisions"), read(), setup=shared_notebook),
        Case("getNotebookSourceRevision", "GET", at(path + "/source/revisions/{revision}"), read(),
             setup=shared_notebook),
        Case("restoreNotebookSourceRevision", "POST", at(path + "/source/revisions/{revision}/restore"), edit(),
             setup=shared_notebook),
        # Past the permission check, the state decides (409): the runtime tests start and stop for real.
        Case("startNotebook", "POST", at(path + "/start"), manage(409), setup=shared_stopping_notebook),
        Case("stopNotebook", "POST", at(path + "/stop"), manage(409), setup=shared_notebook),
        Case("pingNotebook", "POST", at(path + "/ping"), read(409), setup=shared_notebook),
    ]


@pytest.fixture(scope="module")
def world(core_world: World, database_url: str) -> World:
    core_world.shared["database_url"] = database_url
    return core_world


@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix(world: World, caller: str) -> None:
    run_cases(world, caller, cases())
