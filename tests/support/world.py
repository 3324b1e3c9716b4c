"""A populated organization for authorization tests: every kind of caller the matrix checks.

Built entirely through the public API, the way a customer would set it up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.actors import PASSWORD, Actor, login, signup, unique_email

# What the service account "with a policy" is granted: enough to administer the organization.
SA_POLICY = [
    "CanManageOrganization", "CanViewMembers", "CanManageUsers", "CanInviteMembers", "CanCreateTeams",
    "CanViewTeam", "CanManageTeam", "CanManagePolicies", "CanManageServiceAccounts", "CanViewAuditLog",
]


@dataclass
class World:
    owner: Actor
    admin: Actor
    member_t1: Actor  # Developer in team 1
    member_t2: Actor  # Developer in team 2
    outsider: Actor
    sa_with_policy: Actor
    sa_without_policy: Actor
    anonymous: Actor
    team1: str
    team2: str
    sa_with_policy_id: str
    sa_without_policy_id: str
    viewer_t1: Actor  # Viewer in team 1
    teamadmin_t1: Actor  # Team Admin of team 1
    # Targets that tests make once per world and share (see tests/authz/matrix.py: once).
    shared: dict[str, Any] = field(default_factory=dict, repr=False)

    def callers(self) -> dict[str, Actor]:
        return {
            "owner": self.owner, "admin": self.admin, "member_t1": self.member_t1, "viewer_t1": self.viewer_t1,
            "teamadmin_t1": self.teamadmin_t1, "member_t2": self.member_t2,
            "outsider": self.outsider, "outsider_in_org": self.outsider.as_org(self.owner.org_id or ""),
            "sa_with_policy": self.sa_with_policy, "sa_without_policy": self.sa_without_policy,
            "anonymous": self.anonymous,
        }


def create_member(owner: Actor, role: str = "MEMBER", *, sign_in: bool = True) -> Actor:
    """A new user and member; signed in unless `sign_in` is false (then the actor has no token, and
    the test saves a password hash)."""
    email = unique_email(role.lower())
    r = owner.post("/users", json={"email": email, "displayName": f"{role} person", "password": PASSWORD,
                                   "roleIds": [role]})
    assert r.status_code == 201, r.text
    body = r.json()
    token = login(owner.base_url, email, PASSWORD).json()["token"] if sign_in else None
    return Actor(owner.base_url, token, owner.org_id, body["id"], body["memberId"], email, PASSWORD)


def create_team(owner: Actor, name: str) -> str:
    r = owner.post("/org/teams", json={"name": name})
    assert r.status_code == 201, r.text
    return str(r.json()["team"]["id"])


def add_to_team(owner: Actor, team_id: str, member: Actor, role: str = "TEAMDEVELOPER") -> None:
    r = owner.put(f"/org/teams/{team_id}/members/{member.member_id}", json={"roleIds": [role]})
    assert r.status_code == 200, r.text


def create_service_account(owner: Actor, name: str, permissions: list[str] | None) -> tuple[str, Actor]:
    r = owner.post("/org/service-accounts", json={"name": name})
    assert r.status_code == 201, r.text
    sa_id = r.json()["id"]
    key = owner.post(f"/org/service-accounts/{sa_id}/api-keys", json={"name": "key"})
    assert key.status_code == 201, key.text
    if permissions is not None:
        p = owner.put(f"/org/policies/{sa_id}", json={"permissions": permissions})
        assert p.status_code == 200, p.text
    return sa_id, Actor(owner.base_url, key.json()["secret"], owner.org_id)


def build_world(api_url: str) -> World:
    owner = signup(api_url, name="Owner", org_name="World Org")
    admin = create_member(owner, "ADMIN")
    member_t1 = create_member(owner)
    member_t2 = create_member(owner)
    viewer_t1, teamadmin_t1 = create_member(owner), create_member(owner)
    team1, team2 = create_team(owner, "Team One"), create_team(owner, "Team Two")
    add_to_team(owner, team1, member_t1)
    add_to_team(owner, team1, viewer_t1, "TEAMVIEWER")
    add_to_team(owner, team1, teamadmin_t1, "TEAMADMIN")
    add_to_team(owner, team2, member_t2)
    sa1_id, sa1 = create_service_account(owner, "with-policy", SA_POLICY)
    sa2_id, sa2 = create_service_account(owner, "without-policy", None)
    outsider = signup(api_url, name="Outsider", org_name="Other Org")
    return World(owner, admin, member_t1, member_t2, outsider, sa1, sa2, Actor(api_url), team1, team2, sa1_id, sa2_id,
                 viewer_t1, teamadmin_t1)
