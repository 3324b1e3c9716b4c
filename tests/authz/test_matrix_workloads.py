"""The authorization matrix of workloads: jobs (versions, drafts, teams), job runs (with
Idempotency-Key), interactive sessions, workload configs, and the clusters a caller may use.

Expected statuses follow the team role catalog (sailplane.iam.auth.catalog): every team role views the
team's jobs; Developers and Team Admins manage jobs, run them, create workload configs and open
sessions; only Team Admins oversee (see, close) other members' sessions; organization admins do all
of it everywhere. A session token goes to the session's owner or an organization admin.

Sessions start real Sail servers, so this matrix runs on a compute node of its own (tests/authz/
conftest.py) and keeps it to two: one shared instance per compute profile it uses (`allowShared`).
Every session the matrix opens attaches to one of them; refusals never get that far. Job runs are
created held (`pending`); a run a caller releases is cancelled at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sailplane.compute.local import LocalSailBackend
from tests.authz.matrix import (
    CALLERS,
    TEAM1,
    TEAM1_WRITERS,
    USERS,
    Case,
    Context,
    by_caller,
    lists,
    once,
    run_cases,
)
from tests.support.actors import Actor, unique_email
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from tests.support.world import World, build_world, create_member, create_service_account, create_team

# --- expected statuses ---------------------------------------------------------------------------

# Callers who see member_t1's session: the owner of it, team 1's Team Admin, organization admins.
SESSION_SEERS = frozenset({"owner", "admin", "member_t1", "teamadmin_t1"})
# The service account with a policy holds CanViewTeam organization-wide: it sees every team's profiles.
CONFIG_SEERS = TEAM1 | {"sa_with_policy"}
OPEN_STATES = ("pending", "active", "idle")


def in_org(ok: int = 200) -> dict[str, int]:
    """Anyone in the organization (listings filter what they show); our header on an outsider: 404."""
    return by_caller(ok, CALLERS, outsider_in_org=404)


def job_read(ok: int = 200) -> dict[str, int]:
    """A job shared with team 1: its members (every role) and organization admins see it; the admin
    service account holds no job permission, so the job does not exist for it."""
    return by_caller(ok, TEAM1)


def job_write(ok: int = 200) -> dict[str, int]:
    """Managing a team 1 job (CanManageJobs) or acting on its runs (CanRunJobs): not its Viewer."""
    return by_caller(ok, TEAM1_WRITERS, seen={"viewer_t1"})


def create_in_team1(ok: int, *, invisible_team: int = 404) -> dict[str, int]:
    """Creating something in team 1: the team's Viewer and the admin service account see the team but
    may not (403); those who cannot see it get `invisible_team`."""
    return by_caller(ok, TEAM1_WRITERS, seen={"viewer_t1", "sa_with_policy"}, others=invisible_team,
                     outsider_in_org=404)


# --- jobs and runs -------------------------------------------------------------------------------

def job_key() -> str:
    return f"job-{unique_email('j').split('@')[0].lower()}"


def fresh_job(w: World, *extra_teams: str) -> Context:
    key = job_key()
    r = w.owner.post("/workloads/jobs", json={"jobKey": key, "clusterId": "LOCAL", "teamIds": [w.team1, *extra_teams],
                                              "config": {"sql": {"source": "SELECT 1"}}})
    assert r.status_code == 201, r.text
    return {"job": r.json()["id"], "jobKey": key}


def fresh_job_with_draft(w: World) -> Context:
    context = fresh_job(w)
    r = w.owner.post(f"/workloads/jobs/{context['job']}/draft", json={"description": "draft"})
    assert r.status_code == 201, r.text
    return context


def fresh_job_with_two_teams(w: World) -> Context:
    team = create_team(w.owner, f"Job team {unique_email('jt')}")
    return fresh_job(w, team) | {"team": team}


def held_run(owner: Actor, job: str, **headers: str) -> str:
    r = owner.post(f"/workloads/jobs/{job}/runs", json={"hold": True}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def fresh_held_run(w: World) -> Context:
    """A job with a run held in `pending`: nothing executes it."""
    context = fresh_job(w)
    return context | {"run": held_run(w.owner, context["job"])}


def fresh_cancelled_run(w: World) -> Context:
    context = fresh_held_run(w)
    r = w.owner.post(f"/workloads/jobs/{context['job']}/runs/{context['run']}/cancel")
    assert r.status_code == 200, r.text
    return context


def keyed_run(w: World) -> Context:
    """A held run created with an Idempotency-Key: the same key again answers this run (200)."""
    context = fresh_job(w)
    key = f"matrix-{unique_email('k')}"
    return context | {"key": key, "run": held_run(w.owner, context["job"], **{"Idempotency-Key": key})}


def run_of_another_job(w: World) -> Context:
    """A job of team 2 (visible to its member) and a run of a team 1 job: the pair names no run."""
    r = w.owner.post("/workloads/jobs", json={"jobKey": job_key(), "clusterId": "LOCAL", "teamIds": [w.team2],
                                              "config": {"sql": {"source": "SELECT 2"}}})
    assert r.status_code == 201, r.text
    return {"job": r.json()["id"], "run": shared_held_run(w)["run"]}


shared_job = once(fresh_job)
shared_job_with_draft = once(fresh_job_with_draft)
shared_job_with_two_teams = once(fresh_job_with_two_teams)
shared_held_run = once(fresh_held_run)
shared_cancelled_run = once(fresh_cancelled_run)
shared_keyed_run = once(keyed_run)
shared_run_of_another_job = once(run_of_another_job)


def new_run_key(w: World) -> Context:
    return shared_job(w) | {"key": f"matrix-{unique_email('k')}"}


def cancel_released(w: World, context: Context, r: httpx.Response) -> None:
    """A released run would execute: cancel it (it may already be done)."""
    w.owner.post(f"/workloads/jobs/{context['job']}/runs/{r.json()['id']}/cancel")


def replays(caller: str, context: Context, r: httpx.Response) -> str | None:
    return None if r.json()["id"] == context["run"] else f"a new run {r.json()['id']} instead of {context['run']}"


def job_cases() -> list[Case]:
    job_path = "/workloads/jobs/{job}"
    run_path = "/workloads/jobs/{job}/runs/{run}"

    def at(template: str) -> Any:
        return lambda w, c: template.format(**c)

    return [
        # listings
        Case("listMyJobs", "GET", lambda w, c: "/me/jobs", in_org(), setup=shared_job, check=lists("job", TEAM1)),
        Case("listJobs", "GET", lambda w, c: "/workloads/jobs", in_org(), setup=shared_job,
             check=lists("job", TEAM1)),
        Case("listTeamJobs", "GET", lambda w, c: f"/workloads/teams/{w.team1}/jobs",
             by_caller(200, TEAM1, seen={"sa_with_policy"}), setup=shared_job, check=lists("job", TEAM1)),
        Case("listClusterJobs", "GET", lambda w, c: "/workloads/clusters/LOCAL/jobs", in_org(), setup=shared_job,
             check=lists("job", TEAM1)),
        # definitions
        Case("createJob", "POST", lambda w, c: "/workloads/jobs", create_in_team1(201, invisible_team=422),
             body=lambda c: {"jobKey": job_key(), "clusterId": "LOCAL", "teamIds": [c["team1"]],
                             "config": {"sql": {"source": "SELECT 1"}}},
             setup=lambda w: {"team1": w.team1}),
        Case("describeJob", "GET", at(job_path), job_read(), setup=shared_job),
        Case("updateJob", "PATCH", at(job_path), job_write(), setup=shared_job, fresh=fresh_job,
             body=lambda c: {"description": "Updated"}),
        Case("deleteJob", "DELETE", at(job_path), job_write(), setup=shared_job, fresh=fresh_job),
        Case("activateJobVersion", "POST", at(job_path + "/activate-version"), job_write(), setup=shared_job,
             fresh=fresh_job, body=lambda c: {"version": 1}),
        # drafts and versions
        Case("describeJobDraft", "GET", at(job_path + "/draft"), job_read(), setup=shared_job_with_draft),
        Case("createJobDraft", "POST", at(job_path + "/draft"), job_write(201), setup=shared_job, fresh=fresh_job,
             body=lambda c: {"description": "Draft"}),
        Case("discardJobDraft", "DELETE", at(job_path + "/draft"), job_write(), setup=shared_job_with_draft,
             fresh=fresh_job_with_draft),
        Case("updateJobDraft", "PATCH", at(job_path + "/draft"), job_write(), setup=shared_job_with_draft,
             fresh=fresh_job_with_draft, body=lambda c: {"description": "Changed"}),
        Case("publishJobDraft", "POST", at(job_path + "/draft/publish"), job_write(), setup=shared_job_with_draft,
             fresh=fresh_job_with_draft),
        Case("listJobVersions", "GET", at(job_path + "/versions"), job_read(), setup=shared_job),
        Case("createJobVersion", "POST", at(job_path + "/versions"), job_write(201), setup=shared_job,
             fresh=fresh_job, body=lambda c: {"description": "Next"}),
        Case("describeJobVersion", "GET", at(job_path + "/versions/1"), job_read(), setup=shared_job),
        # teams
        Case("listJobTeams", "GET", at(job_path + "/teams"), job_read(), setup=shared_job),
        Case("addJobTeams", "POST", at(job_path + "/teams"), job_write(), setup=lambda w: shared_job(w) | {
            "team1": w.team1}, body=lambda c: {"teamIds": [c["team1"]]}, label="a team it has"),
        Case("addJobTeams", "POST", at(job_path + "/teams"),
             job_write() | {"member_t1": 422, "teamadmin_t1": 422}, setup=lambda w: shared_job(w) | {
                 "team2": w.team2}, fresh=lambda w: fresh_job(w) | {"team2": w.team2},
             body=lambda c: {"teamIds": [c["team2"]]}, label="a team the caller cannot see"),
        Case("removeJobTeam", "DELETE", at(job_path + "/teams/{team}"), job_write(),
             setup=shared_job_with_two_teams, fresh=fresh_job_with_two_teams),
        # runs
        Case("listMyJobRuns", "GET", lambda w, c: "/me/jobs/runs", in_org(), setup=shared_held_run,
             check=lists("run", TEAM1)),
        Case("listJobRuns", "GET", at(job_path + "/runs"), job_read(), setup=shared_held_run,
             check=lists("run", TEAM1)),
        Case("createJobRun", "POST", at(job_path + "/runs"), job_write(201), setup=new_run_key,
             headers=lambda c: {"Idempotency-Key": c["key"]}, body=lambda c: {"hold": True},
             label="new Idempotency-Key"),
        Case("createJobRun", "POST", at(job_path + "/runs"), job_write(200), setup=shared_keyed_run,
             headers=lambda c: {"Idempotency-Key": c["key"]}, body=lambda c: {"hold": True}, check=replays,
             label="Idempotency-Key used before"),
        Case("describeJobRun", "GET", at(run_path), job_read(), setup=shared_held_run),
        Case("describeJobRun", "GET", at(run_path), by_caller(200, ()), setup=shared_run_of_another_job,
             label="a run of another job"),
        Case("getJobRunLogs", "GET", at(run_path + "/logs"), job_read(), setup=shared_held_run),
        Case("releaseJobRun", "POST", at(run_path + "/ready"), job_write(), setup=shared_held_run,
             fresh=fresh_held_run, after=cancel_released),
        Case("cancelJobRun", "POST", at(run_path + "/cancel"), job_write(), setup=shared_held_run,
             fresh=fresh_held_run),
        Case("retryJobRun", "POST", at(run_path + "/retry"), job_write(), setup=shared_cancelled_run,
             fresh=fresh_cancelled_run, body=lambda c: {"hold": True}),
        Case("deleteJobRun", "DELETE", at(run_path), job_write(), setup=shared_cancelled_run,
             fresh=fresh_cancelled_run),
    ]


# --- sessions, workload configs, clusters ---------------------------------------------------------

def open_session(actor: Actor, **body: Any) -> str:
    r = actor.post("/workloads/sessions", json={"allowShared": True, **body})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def fresh_session(w: World) -> Context:
    """Team 1's Developer's session, on the instance the shared session keeps running."""
    return {"session": open_session(w.member_t1, teamId=w.team1, name="matrix")}


def fresh_closed_session(w: World) -> Context:
    context = fresh_session(w)
    r = w.member_t1.delete(f"/workloads/sessions/{context['session']}")
    assert r.status_code == 200, r.text
    return context


def fresh_config(w: World) -> Context:
    r = w.owner.post("/workloads/compute-configs", json={"name": f"profile-{unique_email('p')}", "teamId": w.team1})
    assert r.status_code == 201, r.text
    return {"config": r.json()["id"]}


shared_session = once(fresh_session)
shared_closed_session = once(fresh_closed_session)
shared_config = once(fresh_config)


def config_session(w: World) -> Context:
    """A session on the shared profile: it keeps that profile's instance running for the others."""
    config = shared_config(w)["config"]
    return {"config": config, "session": open_session(w.member_t1, workloadConfigId=config)}


shared_config_session = once(config_session)


def connection_info_for_the_owner(caller: str, context: Context, r: httpx.Response) -> str | None:
    """Only the session's owner is told where to connect."""
    shown = r.json()["connectionInfo"] is not None
    return None if shown == (caller == "member_t1") else f"connectionInfo {'shown' if shown else 'missing'}"


def local_cluster_listed(caller: str, context: Context, r: httpx.Response) -> str | None:
    """Whoever works in a team (or administers) may use the built-in cluster; the service accounts,
    in no team and without CanUseClusters, have no cluster."""
    listed = [item["id"] for item in r.json()["items"]]
    want = ["LOCAL"] if caller in USERS else []
    return None if listed == want else f"clusters {listed}, expected {want}"


def session_cases() -> list[Case]:
    session_path = "/workloads/sessions/{session}"

    def at(template: str) -> Any:
        return lambda w, c: template.format(**c)

    return [
        Case("listSessions", "GET", lambda w, c: "/workloads/sessions", in_org(), setup=shared_session,
             check=lists("session", SESSION_SEERS)),
        Case("listSessions", "GET", lambda w, c: f"/workloads/sessions?teamId={w.team1}", in_org(),
             setup=shared_session, check=lists("session", SESSION_SEERS), label="team 1"),
        Case("createSession", "POST", lambda w, c: "/workloads/sessions", create_in_team1(201),
             setup=lambda w: {"team1": w.team1},
             body=lambda c: {"teamId": c["team1"], "allowShared": True, "name": "matrix"}),
        Case("createSession", "POST", lambda w, c: "/workloads/sessions",
             create_in_team1(201, invisible_team=422) | {"sa_with_policy": 403}, setup=shared_config_session,
             body=lambda c: {"workloadConfigId": c["config"], "allowShared": True}, label="workloadConfigId"),
        Case("describeSession", "GET", at(session_path), by_caller(200, SESSION_SEERS), setup=shared_session,
             check=connection_info_for_the_owner),
        Case("issueSessionToken", "POST", at(session_path + "/token"),
             by_caller(200, {"owner", "admin", "member_t1"}, seen={"teamadmin_t1"}), setup=shared_session,
             body=lambda c: {}),
        Case("closeSession", "DELETE", at(session_path), by_caller(200, SESSION_SEERS), setup=shared_session,
             fresh=fresh_session),
        Case("relaunchSession", "POST", at(session_path + "/relaunch"),
             by_caller(201, {"member_t1"}, seen={"owner", "admin", "teamadmin_t1"}), setup=shared_closed_session,
             fresh=fresh_closed_session),
        Case("listWorkloadConfigs", "GET", lambda w, c: "/workloads/compute-configs", in_org(), setup=shared_config,
             check=lists("config", CONFIG_SEERS)),
        Case("listWorkloadConfigs", "GET", lambda w, c: f"/workloads/compute-configs?teamId={w.team1}", in_org(),
             setup=shared_config, check=lists("config", CONFIG_SEERS), label="team 1"),
        Case("createWorkloadConfig", "POST", lambda w, c: "/workloads/compute-configs", create_in_team1(201),
             setup=lambda w: {"team1": w.team1},
             body=lambda c: {"name": f"profile-{unique_email('p')}", "teamId": c["team1"]}),
        Case("describeWorkloadConfig", "GET", lambda w, c: f"/workloads/compute-configs/{c['config']}",
             by_caller(200, CONFIG_SEERS), setup=shared_config),
        Case("listMyClusters", "GET", lambda w, c: "/me/clusters", in_org(), check=local_cluster_listed),
        Case("describeMyCluster", "GET", lambda w, c: "/me/clusters/LOCAL", by_caller(200, USERS)),
    ]


def cases() -> list[Case]:
    return job_cases() + session_cases()


# --- the matrix ----------------------------------------------------------------------------------

def close_open_sessions(owner: Actor) -> None:
    for status in OPEN_STATES:
        r = owner.get("/workloads/sessions", params={"status": status})
        assert r.status_code == 200, r.text
        for item in r.json()["items"]:
            owner.delete(f"/workloads/sessions/{item['id']}")


@pytest.fixture(scope="module")
def world(compute_node: LiveServer) -> Iterator[World]:
    w = build_world(f"{compute_node.url}/api/v1")
    try:
        # The two instances every session of the matrix shares, started before the first caller.
        shared_session(w)
        shared_config_session(w)
        yield w
    finally:
        close_open_sessions(w.owner)
        backend = LocalSailBackend(compute_node.settings.data_dir)
        wait_until(lambda: not backend.scan(), timeout=30)


@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix(world: World, caller: str) -> None:
    run_cases(world, caller, cases())


def test_session_oversight_granted_by_a_policy_does_not_use_sessions(world: World) -> None:
    """CanManageSessions granted organization-wide by a policy ("view and close other members'
    sessions") does what a Team Admin's does in their team: it sees and closes other members' sessions,
    but a token for someone else's session (acting in it, with its team's catalogs) stays with the
    session's owner and organization admins (the Owner and Admin roles, over every team)."""
    _, account = create_service_account(world.owner, f"oversight-{unique_email('o')}", ["CanManageSessions"])
    person = create_member(world.owner)
    r = world.owner.put(f"/org/policies/{person.user_id}", json={"permissions": ["CanManageSessions"]})
    assert r.status_code == 200, r.text
    for overseer in (account, person):
        session = fresh_session(world)["session"]
        assert overseer.get(f"/workloads/sessions/{session}").status_code == 200
        r = overseer.post(f"/workloads/sessions/{session}/token", json={})
        assert r.status_code == 403, r.text
        assert overseer.delete(f"/workloads/sessions/{session}").status_code == 200
