"""The authorization matrix of the platform core (the caller's account, users, organization, roles,
members, teams, invitations, policies, service accounts, audit): every route called by every kind
of caller (tests/authz/matrix.py), each asserting the exact status. 404 bodies must not reveal what
the caller may not see. Data, workloads and identity routes have their own matrices beside this one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.authz.matrix import (
    CALLERS,
    TEAM1,
    Case,
    everyone_in_org,
    lists,
    once,
    org_admin_only,
    run_cases,
    statuses,
    team_scoped,
    users_only,
)
from tests.conftest import Mailbox
from tests.support.actors import PASSWORD, login, unique_email
from tests.support.world import World, add_to_team, create_member, create_team

TOKEN_RE = re.compile(r"/invites/([A-Z0-9]{20})\b")


# --- setups: fresh targets for calls that change or remove them ---------------------------------

def fresh_user(w: World) -> dict[str, Any]:
    m = create_member(w.owner, sign_in=False)
    return {"user": m.user_id, "member": m.member_id}


shared_user = once(fresh_user)


def fresh_team(w: World) -> dict[str, Any]:
    """A team with team 1's people in the same roles."""
    team = create_team(w.owner, f"Temp {unique_email('t')}")
    add_to_team(w.owner, team, w.member_t1)
    add_to_team(w.owner, team, w.viewer_t1, "TEAMVIEWER")
    add_to_team(w.owner, team, w.teamadmin_t1, "TEAMADMIN")
    return {"team": team}


def fresh_team_member(w: World) -> dict[str, Any]:
    m = create_member(w.owner, sign_in=False)
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


def fresh_invitation(w: World) -> dict[str, Any]:
    r = w.owner.post("/org/invites", json={"email": unique_email("invitee")})
    assert r.status_code == 201, r.text
    return {"invitation": r.json()["id"]}


shared_invitation = once(fresh_invitation)


shared_team_member = once(fresh_team_member)


def team_admin_only(ok: int) -> dict[str, int]:
    """Managing team 1: its Team Admin (CanManageTeam in the team) and organization admins."""
    return team_scoped(ok, 403) | {"teamadmin_t1": ok}


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
        # The teams one belongs to: the Owner created team 1 (so joined it); the Admin works in every team
        # through the role (allTeams) without being added to them, so /me/teams does not list them.
        Case("listMyTeams", "GET", lambda w, c: "/me/teams", everyone_in_org(), setup=lambda w: {"team": w.team1},
             check=lists("team", TEAM1 - {"admin"})),
        # users (organization admins)
        Case("listUsers", "GET", lambda w, c: "/users", admin403(200, own_org_ok=True)),
        Case("createUser", "POST", lambda w, c: "/users", admin403(201, own_org_ok=True),
             body=lambda c: {"email": unique_email("new"), "displayName": "New", "password": PASSWORD}),
        Case("describeUser", "GET", lambda w, c: f"/users/{w.member_t1.user_id}", admin403(200)),
        Case("updateUser", "PATCH", lambda w, c: f"/users/{c['user']}", admin403(200), setup=shared_user,
             fresh=fresh_user, body=lambda c: {"displayName": "Changed"}),
        Case("deleteUser", "DELETE", lambda w, c: f"/users/{c['user']}", admin403(200), setup=shared_user,
             fresh=fresh_user),
        Case("changeUserPassword", "POST", lambda w, c: f"/users/{c['user']}/change-password",
             statuses(403, 403, 400, 404) | {"sa_with_policy": 400}, setup=shared_user,
             body=lambda c: {"currentPassword": PASSWORD, "newPassword": "another-long-password"}),
        Case("resetUserPassword", "POST", lambda w, c: f"/users/{c['user']}/reset-password", admin403(200),
             setup=shared_user, fresh=fresh_user),
        Case("resetUserMfa", "POST", lambda w, c: f"/users/{c['user']}/reset-mfa", admin403(200),
             setup=shared_user, fresh=fresh_user),
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
        Case("updateMember", "PATCH", lambda w, c: f"/org/members/{c['member']}", admin403(200),
             setup=shared_user, fresh=fresh_user, body=lambda c: {"displayName": "Renamed"}),
        Case("removeMember", "DELETE", lambda w, c: f"/org/members/{c['member']}", admin403(200),
             setup=shared_user, fresh=fresh_user),
        Case("updateMemberRoles", "PUT", lambda w, c: f"/org/members/{c['member']}/roles", admin403(200),
             setup=shared_user, fresh=fresh_user, body=lambda c: {"roleIds": ["AUDITOR"]}),
        # teams
        Case("listTeams", "GET", lambda w, c: "/org/teams", everyone_in_org(), setup=lambda w: {"team": w.team1},
             check=lists("team", TEAM1 | {"sa_with_policy"})),
        Case("createTeam", "POST", lambda w, c: "/org/teams", admin403(201, own_org_ok=True),
             body=lambda c: {"name": f"New team {unique_email('n')}"}),
        Case("describeTeam", "GET", lambda w, c: f"/org/teams/{w.team1}", team_scoped(200, 200)),
        Case("updateTeam", "PATCH", lambda w, c: f"/org/teams/{w.team1}", team_admin_only(200),
             body=lambda c: {"description": "Updated"}),
        Case("deleteTeam", "DELETE", lambda w, c: f"/org/teams/{c['team']}", team_admin_only(200),
             setup=fresh_team),
        Case("listTeamMembers", "GET", lambda w, c: f"/org/teams/{w.team1}/members", team_scoped(200, 200)),
        Case("addTeamMember", "PUT", lambda w, c: f"/org/teams/{w.team1}/members/{c['member']}",
             team_admin_only(200), setup=shared_user, fresh=fresh_user, body=lambda c: {}),
        Case("removeTeamMember", "DELETE", lambda w, c: f"/org/teams/{w.team1}/members/{c['member']}",
             team_admin_only(200), setup=shared_team_member, fresh=fresh_team_member),
        Case("updateTeamMemberRoles", "PUT", lambda w, c: f"/org/teams/{w.team1}/members/{c['member']}/roles",
             team_admin_only(200), setup=shared_team_member, fresh=fresh_team_member,
             body=lambda c: {"roleIds": ["TEAMVIEWER"]}),
        # invitations
        Case("createInvitation", "POST", lambda w, c: "/org/invites", admin403(201, own_org_ok=True),
             body=lambda c: {"email": unique_email("invited")}),
        Case("describeInvitation", "GET", lambda w, c: f"/invites/{c['token']}",
             statuses(200, 200, 200, 200, anonymous=200, outsider_in_org=200), setup=invitation(mailbox)),
        Case("listInvitations", "GET", lambda w, c: "/org/invites", admin403(200, own_org_ok=True)),
        Case("resendInvitation", "POST", lambda w, c: f"/org/invites/{c['invitation']}/resend", admin403(200),
             setup=shared_invitation),
        Case("revokeInvitation", "DELETE", lambda w, c: f"/org/invites/{c['invitation']}", admin403(200),
             setup=shared_invitation, fresh=fresh_invitation),
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
    ]


@pytest.fixture(scope="module")
def world(core_world: World) -> World:
    return core_world


@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix(world: World, mailbox: Mailbox, caller: str) -> None:
    run_cases(world, caller, cases(mailbox))
