"""The authorization matrix: every route of the platform core, called by every kind of caller,
each asserting the exact status. 404 bodies must not reveal what the caller may not see.

Callers: owner, admin, a member of the team (Developer in team 1), a member of another team
(team 2), the owner of another organization (in their own organization, aiming at our IDs, and
with our organization header), a service account with and without a policy, and anonymous.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import Mailbox
from tests.support.actors import PASSWORD, Actor, assert_error, login, unique_email
from tests.support.server import LiveServer
from tests.support.world import World, add_to_team, build_world, create_member, create_team

CALLERS = ("owner", "admin", "member_t1", "member_t2", "outsider", "outsider_in_org", "sa_with_policy",
           "sa_without_policy", "anonymous")
TOKEN_RE = re.compile(r"/invites/([A-Z0-9]{20})\b")


@dataclass
class Case:
    op: str
    method: str
    path: Callable[[World, dict[str, Any]], str]
    expected: dict[str, int]
    setup: Callable[[World], dict[str, Any]] = field(default=lambda w: {})
    body: Callable[[dict[str, Any]], Any] | None = None


def statuses(admins: int, members: int, sa_without: int, outsider: int, *, member_t1: int | None = None,
             member_t2: int | None = None, anonymous: int = 401, outsider_in_org: int = 404) -> dict[str, int]:
    return {
        "owner": admins, "admin": admins, "sa_with_policy": admins,
        "member_t1": member_t1 if member_t1 is not None else members,
        "member_t2": member_t2 if member_t2 is not None else members,
        "sa_without_policy": sa_without, "outsider": outsider, "outsider_in_org": outsider_in_org,
        "anonymous": anonymous,
    }


def org_admin_only(ok: int, own_org_ok: bool = False) -> dict[str, int]:
    """Organization-level admin operations: admins (and the SA with a policy) only."""
    return statuses(ok, 403, 403, ok if own_org_ok else 404)


def everyone_in_org(ok: int = 200, outsider: int = 200, sa: int | None = None) -> dict[str, int]:
    return statuses(ok, ok, ok if sa is None else sa, outsider)


def team_scoped(ok: int, member_t1: int) -> dict[str, int]:
    """Team 1 routes: team 2's member and the policy-less service account cannot see team 1 at all."""
    return statuses(ok, 404, 404, 404, member_t1=member_t1, member_t2=404)


def users_only(ok: int = 200, sa: int = 400) -> dict[str, int]:
    return statuses(ok, ok, sa, ok) | {"sa_with_policy": sa}


# --- setups: fresh targets for calls that change or remove them ---------------------------------

def fresh_user(w: World) -> dict[str, Any]:
    m = create_member(w.owner)
    return {"user": m.user_id, "member": m.member_id}


def fresh_team(w: World) -> dict[str, Any]:
    team = create_team(w.owner, f"Temp {unique_email('t')}")
    add_to_team(w.owner, team, w.member_t1)
    return {"team": team}


def fresh_team_member(w: World) -> dict[str, Any]:
    m = create_member(w.owner)
    add_to_team(w.owner, w.team1, m)
    return {"member": m.member_id}


def fresh_service_account(w: World) -> dict[str, Any]:
    r = w.owner.post("/org/service-accounts", json={"name": f"sa-{unique_email('x')}"})
    assert r.status_code == 201, r.text
    sa = r.json()["id"]
    k = w.owner.post(f"/org/service-accounts/{sa}/api-keys", json={"name": "k"})
    assert k.status_code == 201, k.text
    return {"sa": sa, "key": k.json()["id"]}


def fresh_policy(w: World) -> dict[str, Any]:
    team = create_team(w.owner, f"Policy {unique_email('p')}")
    r = w.owner.put(f"/org/policies/{team}", json={"permissions": ["CanViewMembers"]})
    assert r.status_code == 200, r.text
    return {"principal": team}


def fresh_job(w: World, *extra_teams: str) -> dict[str, Any]:
    key = f"job-{unique_email('j').split('@')[0].lower()}"
    r = w.owner.post("/workloads/jobs", json={"jobKey": key, "clusterId": "LOCAL", "teamIds": [w.team1, *extra_teams],
                                              "config": {"sql": {"source": "SELECT 1"}}})
    assert r.status_code == 201, r.text
    return {"job": r.json()["id"], "jobKey": key}


def fresh_job_with_draft(w: World) -> dict[str, Any]:
    context = fresh_job(w)
    r = w.owner.post(f"/workloads/jobs/{context['job']}/draft", json={"description": "draft"})
    assert r.status_code == 201, r.text
    return context


def fresh_job_with_two_teams(w: World) -> dict[str, Any]:
    team = create_team(w.owner, f"Job team {unique_email('jt')}")
    return fresh_job(w, team) | {"team": team}


def fresh_held_run(w: World) -> dict[str, Any]:
    """A job with a run held in `pending` (never executed by the shared server's dispatcher)."""
    context = fresh_job(w)
    r = w.owner.post(f"/workloads/jobs/{context['job']}/runs", json={"hold": True})
    assert r.status_code == 201, r.text
    return context | {"run": r.json()["id"]}


def fresh_cancelled_run(w: World) -> dict[str, Any]:
    context = fresh_held_run(w)
    r = w.owner.post(f"/workloads/jobs/{context['job']}/runs/{context['run']}/cancel")
    assert r.status_code == 200, r.text
    return context


def job_scoped(ok: int, member_t1: int) -> dict[str, int]:
    """A job shared with team 1: only admins and team 1 see it (the admin service account holds no job
    permission)."""
    return team_scoped(ok, member_t1) | {"sa_with_policy": 404}


def owner_second_login(w: World) -> dict[str, Any]:
    r = login(w.owner.base_url, w.owner.email or "", PASSWORD)
    assert r.status_code == 200
    return {"login": r.json()["loginId"]}


def invitation(mailbox: Mailbox) -> Callable[[World], dict[str, Any]]:
    def setup(w: World) -> dict[str, Any]:
        email = unique_email("invitee")
        r = w.owner.post("/org/invites", json={"email": email})
        assert r.status_code == 201, r.text
        msg = mailbox.wait_for(email)
        part = msg.get_payload(0) if msg.is_multipart() else msg
        payload = part.get_payload(decode=True)
        match = TOKEN_RE.search(payload.decode())
        assert match, payload
        return {"token": match.group(1)}

    return setup


def cases(mailbox: Mailbox) -> list[Case]:
    admin403 = org_admin_only
    return [
        # authentication and the caller's own account
        Case("listPermissions", "GET", lambda w, c: "/auth/permissions",
             statuses(200, 200, 200, 200, outsider_in_org=200)),
        Case("getMe", "GET", lambda w, c: "/me", users_only()),
        Case("updateMe", "PATCH", lambda w, c: "/me", users_only(), body=lambda c: {}),
        Case("listMyLogins", "GET", lambda w, c: "/me/logins", users_only()),
        Case("revokeMyLogin", "DELETE", lambda w, c: f"/me/logins/{c['login']}",
             users_only(404) | {"owner": 200}, setup=owner_second_login),
        Case("listMyTeams", "GET", lambda w, c: "/me/teams", everyone_in_org()),
        # users (organization admins)
        Case("listUsers", "GET", lambda w, c: "/users", admin403(200, own_org_ok=True)),
        Case("createUser", "POST", lambda w, c: "/users", admin403(201, own_org_ok=True),
             body=lambda c: {"email": unique_email("new"), "displayName": "New", "password": PASSWORD}),
        Case("describeUser", "GET", lambda w, c: f"/users/{w.member_t1.user_id}", admin403(200)),
        Case("updateUser", "PATCH", lambda w, c: f"/users/{c['user']}", admin403(200), setup=fresh_user,
             body=lambda c: {"displayName": "Changed"}),
        Case("deleteUser", "DELETE", lambda w, c: f"/users/{c['user']}", admin403(200), setup=fresh_user),
        Case("changeUserPassword", "POST", lambda w, c: f"/users/{c['user']}/change-password",
             statuses(403, 403, 400, 404) | {"sa_with_policy": 400}, setup=fresh_user,
             body=lambda c: {"currentPassword": PASSWORD, "newPassword": "another-long-password"}),
        Case("resetUserPassword", "POST", lambda w, c: f"/users/{c['user']}/reset-password", admin403(200),
             setup=fresh_user),
        Case("resetUserMfa", "POST", lambda w, c: f"/users/{c['user']}/reset-mfa", admin403(200), setup=fresh_user),
        # organization, roles, members
        Case("describeOrganization", "GET", lambda w, c: "/org", everyone_in_org()),
        Case("updateOrganization", "PATCH", lambda w, c: "/org", admin403(200, own_org_ok=True),
             body=lambda c: {"description": "Updated"}),
        Case("listOrganizationRoles", "GET", lambda w, c: "/org/roles", everyone_in_org()),
        Case("describeOrganizationRole", "GET", lambda w, c: "/org/roles/ADMIN", everyone_in_org()),
        Case("listTeamRoles", "GET", lambda w, c: "/org/team-roles", everyone_in_org()),
        Case("describeTeamRole", "GET", lambda w, c: "/org/team-roles/TEAMADMIN", everyone_in_org()),
        Case("searchMembers", "GET", lambda w, c: "/org/members", everyone_in_org(sa=403)),
        Case("describeMember", "GET", lambda w, c: f"/org/members/{w.member_t1.member_id}",
             everyone_in_org(sa=403, outsider=404)),
        Case("updateMember", "PATCH", lambda w, c: f"/org/members/{c['member']}", admin403(200), setup=fresh_user,
             body=lambda c: {"displayName": "Renamed"}),
        Case("removeMember", "DELETE", lambda w, c: f"/org/members/{c['member']}", admin403(200), setup=fresh_user),
        Case("updateMemberRoles", "PUT", lambda w, c: f"/org/members/{c['member']}/roles", admin403(200),
             setup=fresh_user, body=lambda c: {"roleIds": ["AUDITOR"]}),
        # teams
        Case("listTeams", "GET", lambda w, c: "/org/teams", everyone_in_org()),
        Case("createTeam", "POST", lambda w, c: "/org/teams", admin403(201, own_org_ok=True),
             body=lambda c: {"name": f"New team {unique_email('n')}"}),
        Case("describeTeam", "GET", lambda w, c: f"/org/teams/{w.team1}", team_scoped(200, 200)),
        Case("updateTeam", "PATCH", lambda w, c: f"/org/teams/{w.team1}", team_scoped(200, 403),
             body=lambda c: {"description": "Updated"}),
        Case("deleteTeam", "DELETE", lambda w, c: f"/org/teams/{c['team']}", team_scoped(200, 403),
             setup=fresh_team),
        Case("listTeamMembers", "GET", lambda w, c: f"/org/teams/{w.team1}/members", team_scoped(200, 200)),
        Case("addTeamMember", "PUT", lambda w, c: f"/org/teams/{w.team1}/members/{c['member']}",
             team_scoped(200, 403), setup=fresh_user, body=lambda c: {}),
        Case("removeTeamMember", "DELETE", lambda w, c: f"/org/teams/{w.team1}/members/{c['member']}",
             team_scoped(200, 403), setup=fresh_team_member),
        Case("updateTeamMemberRoles", "PUT", lambda w, c: f"/org/teams/{w.team1}/members/{c['member']}/roles",
             team_scoped(200, 403), setup=fresh_team_member, body=lambda c: {"roleIds": ["TEAMVIEWER"]}),
        # invitations
        Case("createInvitation", "POST", lambda w, c: "/org/invites", admin403(201, own_org_ok=True),
             body=lambda c: {"email": unique_email("invited")}),
        Case("describeInvitation", "GET", lambda w, c: f"/invites/{c['token']}",
             statuses(200, 200, 200, 200, anonymous=200, outsider_in_org=200), setup=invitation(mailbox)),
        # policies
        Case("listOrganizationPolicies", "GET", lambda w, c: "/org/policies", admin403(200, own_org_ok=True)),
        Case("describeOrganizationPolicy", "GET", lambda w, c: f"/org/policies/{w.sa_with_policy_id}",
             admin403(200)),
        Case("setOrganizationPolicy", "PUT", lambda w, c: f"/org/policies/{c['principal']}", admin403(200),
             setup=fresh_policy, body=lambda c: {"permissions": ["CanViewMembers", "CanViewAuditLog"]}),
        Case("deleteOrganizationPolicy", "DELETE", lambda w, c: f"/org/policies/{c['principal']}", admin403(200),
             setup=fresh_policy),
        # service accounts and API keys
        Case("listServiceAccounts", "GET", lambda w, c: "/org/service-accounts", admin403(200, own_org_ok=True)),
        Case("createServiceAccount", "POST", lambda w, c: "/org/service-accounts", admin403(201, own_org_ok=True),
             body=lambda c: {"name": f"bot-{unique_email('b')}"}),
        Case("describeServiceAccount", "GET", lambda w, c: f"/org/service-accounts/{w.sa_without_policy_id}",
             admin403(200)),
        Case("updateServiceAccount", "PATCH", lambda w, c: f"/org/service-accounts/{c['sa']}", admin403(200),
             setup=fresh_service_account, body=lambda c: {"description": "Updated"}),
        Case("deleteServiceAccount", "DELETE", lambda w, c: f"/org/service-accounts/{c['sa']}", admin403(200),
             setup=fresh_service_account),
        Case("listApiKeys", "GET", lambda w, c: f"/org/service-accounts/{w.sa_without_policy_id}/api-keys",
             admin403(200)),
        Case("createApiKey", "POST", lambda w, c: f"/org/service-accounts/{c['sa']}/api-keys", admin403(201),
             setup=fresh_service_account, body=lambda c: {"name": "another"}),
        Case("revokeApiKey", "DELETE", lambda w, c: f"/org/service-accounts/{c['sa']}/api-keys/{c['key']}",
             admin403(200), setup=fresh_service_account),
        # audit
        Case("listAuditEvents", "GET", lambda w, c: "/org/audit-events", admin403(200, own_org_ok=True)),
        # job definitions (a job shared with team 1)
        Case("listMyJobs", "GET", lambda w, c: "/me/jobs", everyone_in_org()),
        Case("listJobs", "GET", lambda w, c: "/workloads/jobs", everyone_in_org()),
        Case("createJob", "POST", lambda w, c: "/workloads/jobs",
             statuses(201, 422, 422, 422, member_t1=201) | {"sa_with_policy": 403},
             body=lambda c: {"jobKey": f"new-{unique_email('n').split('@')[0].lower()}", "clusterId": "LOCAL",
                             "teamIds": [c["team1"]], "config": {"sql": {"source": "SELECT 1"}}},
             setup=lambda w: {"team1": w.team1}),
        Case("describeJob", "GET", lambda w, c: f"/workloads/jobs/{c['job']}", job_scoped(200, 200), setup=fresh_job),
        Case("updateJob", "PATCH", lambda w, c: f"/workloads/jobs/{c['job']}", job_scoped(200, 200),
             setup=fresh_job, body=lambda c: {"description": "Updated"}),
        Case("deleteJob", "DELETE", lambda w, c: f"/workloads/jobs/{c['job']}", job_scoped(200, 200),
             setup=fresh_job),
        Case("activateJobVersion", "POST", lambda w, c: f"/workloads/jobs/{c['job']}/activate-version",
             job_scoped(200, 200), setup=fresh_job, body=lambda c: {"version": 1}),
        Case("describeJobDraft", "GET", lambda w, c: f"/workloads/jobs/{c['job']}/draft", job_scoped(200, 200),
             setup=fresh_job_with_draft),
        Case("createJobDraft", "POST", lambda w, c: f"/workloads/jobs/{c['job']}/draft", job_scoped(201, 201),
             setup=fresh_job, body=lambda c: {"description": "Draft"}),
        Case("discardJobDraft", "DELETE", lambda w, c: f"/workloads/jobs/{c['job']}/draft", job_scoped(200, 200),
             setup=fresh_job_with_draft),
        Case("updateJobDraft", "PATCH", lambda w, c: f"/workloads/jobs/{c['job']}/draft", job_scoped(200, 200),
             setup=fresh_job_with_draft, body=lambda c: {"description": "Changed"}),
        Case("publishJobDraft", "POST", lambda w, c: f"/workloads/jobs/{c['job']}/draft/publish",
             job_scoped(200, 200), setup=fresh_job_with_draft),
        Case("listJobTeams", "GET", lambda w, c: f"/workloads/jobs/{c['job']}/teams", job_scoped(200, 200),
             setup=fresh_job),
        Case("addJobTeams", "POST", lambda w, c: f"/workloads/jobs/{c['job']}/teams", job_scoped(200, 200),
             setup=lambda w: fresh_job(w) | {"team1": w.team1}, body=lambda c: {"teamIds": [c["team1"]]}),
        Case("removeJobTeam", "DELETE", lambda w, c: f"/workloads/jobs/{c['job']}/teams/{c['team']}",
             job_scoped(200, 200), setup=fresh_job_with_two_teams),
        Case("listJobVersions", "GET", lambda w, c: f"/workloads/jobs/{c['job']}/versions", job_scoped(200, 200),
             setup=fresh_job),
        Case("createJobVersion", "POST", lambda w, c: f"/workloads/jobs/{c['job']}/versions", job_scoped(201, 201),
             setup=fresh_job, body=lambda c: {"description": "Next"}),
        Case("describeJobVersion", "GET", lambda w, c: f"/workloads/jobs/{c['job']}/versions/1",
             job_scoped(200, 200), setup=fresh_job),
        Case("listTeamJobs", "GET", lambda w, c: f"/workloads/teams/{w.team1}/jobs",
             team_scoped(200, 200) | {"sa_with_policy": 403}),
        Case("listClusterJobs", "GET", lambda w, c: "/workloads/clusters/LOCAL/jobs", everyone_in_org()),
        # job runs (of a job shared with team 1; held or cancelled, so nothing executes)
        Case("listMyJobRuns", "GET", lambda w, c: "/me/jobs/runs", everyone_in_org()),
        Case("listJobRuns", "GET", lambda w, c: f"/workloads/jobs/{c['job']}/runs", job_scoped(200, 200),
             setup=fresh_job),
        Case("createJobRun", "POST", lambda w, c: f"/workloads/jobs/{c['job']}/runs", job_scoped(201, 201),
             setup=fresh_job, body=lambda c: {"hold": True}),
        Case("describeJobRun", "GET", lambda w, c: f"/workloads/jobs/{c['job']}/runs/{c['run']}",
             job_scoped(200, 200), setup=fresh_held_run),
        Case("deleteJobRun", "DELETE", lambda w, c: f"/workloads/jobs/{c['job']}/runs/{c['run']}",
             job_scoped(200, 200), setup=fresh_cancelled_run),
        Case("releaseJobRun", "POST", lambda w, c: f"/workloads/jobs/{c['job']}/runs/{c['run']}/ready",
             job_scoped(200, 200), setup=fresh_held_run),
        Case("retryJobRun", "POST", lambda w, c: f"/workloads/jobs/{c['job']}/runs/{c['run']}/retry",
             job_scoped(200, 200), setup=fresh_cancelled_run, body=lambda c: {"hold": True}),
        Case("cancelJobRun", "POST", lambda w, c: f"/workloads/jobs/{c['job']}/runs/{c['run']}/cancel",
             job_scoped(200, 200), setup=fresh_held_run),
        Case("getJobRunLogs", "GET", lambda w, c: f"/workloads/jobs/{c['job']}/runs/{c['run']}/logs",
             job_scoped(200, 200), setup=fresh_held_run),
    ]


@pytest.fixture(scope="module")
def world(api_url: str) -> World:
    return build_world(api_url)


def secrets_of(w: World) -> list[str]:
    """Things a 404 must never echo back: our team names, our members' emails."""
    return ["Team One", "Team Two", "World Org", w.owner.email or "", w.admin.email or "",
            w.member_t1.email or "", w.member_t2.email or ""]


# These change who the caller is (or need no caller); they have their own tests.
NOT_IN_MATRIX = {"signup", "login", "logout", "acceptInvitation"}
CORE_PREFIXES = ("/api/v1/auth/", "/api/v1/me", "/api/v1/users", "/api/v1/org", "/api/v1/invites",
                 "/api/v1/workloads/jobs", "/api/v1/workloads/teams/{team}/jobs",
                 "/api/v1/workloads/clusters/{cluster}/jobs")
LATER_AREAS = ("/api/v1/me/clusters", "/api/v1/me/mfa", "/api/v1/me/emails", "/api/v1/me/trusted-devices",
               "/api/v1/auth/idps", "/api/v1/auth/identity-provider-types", "/api/v1/auth/sso",
               "/api/v1/auth/login/", "/api/v1/auth/password", "/api/v1/auth/email", "/api/v1/me/catalogs",
               "/api/v1/me/queries")


def test_matrix_covers_every_core_operation(server: LiveServer, mailbox: Mailbox) -> None:
    doc = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    core = {
        op["operationId"]
        for path, ops in doc["paths"].items()
        if path.startswith(CORE_PREFIXES) and not path.startswith(LATER_AREAS)
        for op in ops.values()
    }
    covered = {c.op for c in cases(mailbox)}
    assert len(covered) == len(cases(mailbox))
    assert core - NOT_IN_MATRIX == covered


@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix(world: World, mailbox: Mailbox, caller: str) -> None:
    actor: Actor = world.callers()[caller]
    failures = []
    for case in cases(mailbox):
        context = case.setup(world)
        path = case.path(world, context)
        kwargs: dict[str, Any] = {}
        if case.body is not None:
            kwargs["json"] = case.body(context)
        r = actor.request(case.method, path, **kwargs)
        want = case.expected[caller]
        if r.status_code != want:
            failures.append(f"{case.op} {case.method} {path}: expected {want}, got {r.status_code} {r.text[:160]}")
            continue
        if want >= 400:
            err = assert_error(r, want)
            if want == 404:
                assert err["code"] in {"not_found", "organization_not_found"}, (case.op, err)
                for secret in secrets_of(world):
                    assert secret not in r.text, (case.op, caller, secret)
                for value in context.values():
                    assert str(value) not in r.text, (case.op, caller, value)
    assert not failures, "\n".join(failures)
