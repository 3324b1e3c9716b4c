"""Service accounts hold no roles: what they may do here comes only from their organization policy."""

from __future__ import annotations

from tests.org.helpers import make_member, make_team
from tests.support.actors import assert_error, signup
from tests.support.world import create_service_account


def test_service_accounts_follow_their_policy(api_url: str) -> None:
    owner = signup(api_url)
    team = make_team(owner, "Data")["id"]
    member = make_member(owner)
    _id, bare = create_service_account(owner, "bare", None)
    assert_error(bare.get("/org/members"), 403)
    assert_error(bare.post("/org/teams", json={"name": "Robots"}), 403)
    assert bare.get("/org/teams").json() == {"total": 0, "items": []}  # belongs to no team
    assert_error(bare.get(f"/org/teams/{team}"), 404)
    assert bare.get("/org/roles").json()["total"] == 4

    _id, admin_sa = create_service_account(
        owner, "admin", ["CanCreateTeams", "CanViewTeam", "CanManageTeam", "CanViewMembers", "CanManageUsers"])
    r = admin_sa.post("/org/teams", json={"name": "Robots"})
    assert r.status_code == 201, r.text
    assert r.json()["memberCount"] == 0  # a service account does not join the team it creates
    robots = r.json()["team"]["id"]
    assert admin_sa.get("/org/teams").json()["total"] == 2
    assert admin_sa.put(f"/org/teams/{robots}/members/{member.member_id}", json={}).status_code == 200
    assert admin_sa.get("/org/members").json()["total"] == 2
    # CanManageOwners is never grantable, so Owners stay out of reach.
    assert_error(admin_sa.put(f"/org/members/{member.member_id}/roles", json={"roleIds": ["OWNER"]}), 403)
    assert_error(admin_sa.patch(f"/org/members/{owner.member_id}", json={"displayName": "Robot"}), 403)
    assert admin_sa.put(f"/org/members/{member.member_id}/roles", json={"roleIds": ["AUDITOR"]}).status_code == 200
