"""Team membership through HTTP: list, add (default role, idempotent), update roles, remove."""

from __future__ import annotations

from sailplane.config import Settings
from tests.org.helpers import add_to_team, assert_audited, audit_rows, make_member, make_team
from tests.support.actors import assert_error, signup


def test_add_member_uses_the_default_role_and_is_idempotent(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    team = make_team(owner, "Data", defaultRoleId="TEAMVIEWER")["id"]
    ann, bob, cat = make_member(owner, name="Ann"), make_member(owner, name="Bob"), make_member(owner, name="Cat")
    r = owner.put(f"/org/teams/{team}/members/{ann.member_id}")  # no body at all
    assert r.status_code == 200, r.text
    item = r.json()
    assert item["member"] == {"id": ann.member_id, "userId": ann.user_id, "email": ann.email, "displayName": "Ann",
                              "status": "active"}
    assert item["roleIds"] == ["TEAMVIEWER"] and item["roles"] == [{"id": "TEAMVIEWER", "name": "Viewer"}]
    assert owner.put(f"/org/teams/{team}/members/{bob.member_id}", json={"roleIds": []}).json()["roleIds"] == \
        ["TEAMVIEWER"]
    r = owner.put(f"/org/teams/{team}/members/{cat.member_id}", json={"roleIds": ["TEAMDEVELOPER", "TEAMDEVELOPER"]})
    assert r.json()["roleIds"] == ["TEAMDEVELOPER"]
    # Adding again replaces the roles; no duplicate membership.
    r = owner.put(f"/org/teams/{team}/members/{ann.member_id}", json={"roleIds": ["TEAMADMIN", "TEAMDEVELOPER"]})
    assert r.status_code == 200 and r.json()["roleIds"] == ["TEAMADMIN", "TEAMDEVELOPER"]
    described = owner.get(f"/org/teams/{team}").json()
    assert described["memberCount"] == 4  # owner (creator) + 3
    listed = owner.get(f"/org/teams/{team}/members").json()
    assert listed["total"] == 4
    by_id = {i["member"]["id"]: i["roleIds"] for i in listed["items"]}
    assert by_id[ann.member_id] == ["TEAMADMIN", "TEAMDEVELOPER"]
    assert [t["roleIds"] for t in ann.get("/me/teams").json()["items"]] == [["TEAMADMIN", "TEAMDEVELOPER"]]
    rows = audit_rows(settings, owner.org_id, "team.add_member", team)
    assert len(rows) == 4 and rows[-1].details["memberId"] == ann.member_id
    assert rows[-1].details["before"] == ["TEAMVIEWER"]


def test_add_member_rejects_bad_input(api_url: str) -> None:
    owner = signup(api_url)
    team = make_team(owner, "Data")["id"]
    member = make_member(owner)
    path = f"/org/teams/{team}/members/{member.member_id}"
    err = assert_error(owner.put(path, json={"roleIds": ["KING"]}), 422)
    assert "roleIds" in err["details"]["fieldErrors"]
    assert_error(owner.put(path, json={"roleIds": ["ADMIN"]}), 422)  # an organization role
    assert_error(owner.put(path, json={"roleIds": ["bad id"]}), 422)
    assert_error(owner.put(path, json={"roleIds": "TEAMADMIN"}), 422)
    assert_error(owner.put(path, json={"roles": ["TEAMADMIN"]}), 422)
    assert_error(owner.put(f"/org/teams/{team}/members/bad-id", json={}), 400)
    assert_error(owner.put(f"/org/teams/bad-id/members/{member.member_id}", json={}), 400)
    assert_error(owner.put(f"/org/teams/{team}/members/NOSUCHMEMBER", json={}), 404)
    assert owner.get(f"/org/teams/{team}").json()["memberCount"] == 1  # nothing half-written
    # A deactivated member cannot be added.
    assert owner.patch(f"/org/members/{member.member_id}", json={"status": "deactivated"}).status_code == 200
    assert_error(owner.put(path, json={}), 404)


def test_update_team_member_roles(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    team = make_team(owner, "Data")["id"]
    member, outsider = make_member(owner), make_member(owner)
    add_to_team(owner, team, member)
    path = f"/org/teams/{team}/members/{member.member_id}/roles"
    r = owner.put(path, json={"roleIds": ["TEAMVIEWER"]})
    assert r.status_code == 200 and r.json() == {"message": "The requested operation was done successfully."}
    items = owner.get(f"/org/teams/{team}/members").json()["items"]
    assert {i["member"]["id"]: i["roleIds"] for i in items}[member.member_id] == ["TEAMVIEWER"]
    err = assert_error(owner.put(path, json={"roleIds": []}), 422)
    assert "roleIds" in err["details"]["fieldErrors"]
    assert_error(owner.put(path, json={}), 422)
    assert_error(owner.put(path, json={"roleIds": ["TEAMVIEWER", "NOPE"]}), 422)
    # Not in the team yet: 404 (use addTeamMember first).
    assert_error(owner.put(f"/org/teams/{team}/members/{outsider.member_id}/roles",
                           json={"roleIds": ["TEAMVIEWER"]}), 404)
    assert_error(owner.put(f"/org/teams/{team}/members/x-y/roles", json={"roleIds": ["TEAMVIEWER"]}), 400)
    # The new role takes effect at once: a viewer may look, not manage.
    assert member.get(f"/org/teams/{team}/members").status_code == 200
    row = assert_audited(settings, owner, "team.update_member_roles", team)
    assert row.details == {"memberId": member.member_id, "before": ["TEAMDEVELOPER"], "roleIds": ["TEAMVIEWER"]}


def test_remove_team_member(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    team = make_team(owner, "Data")["id"]
    member = make_member(owner)
    add_to_team(owner, team, member)
    assert member.get(f"/org/teams/{team}").status_code == 200
    r = owner.delete(f"/org/teams/{team}/members/{member.member_id}")
    assert r.status_code == 200, r.text
    assert_error(member.get(f"/org/teams/{team}"), 404)  # no longer visible
    assert owner.get(f"/org/teams/{team}").json()["memberCount"] == 1
    assert_error(owner.delete(f"/org/teams/{team}/members/{member.member_id}"), 404)
    assert_error(owner.delete(f"/org/teams/{team}/members/NOSUCH"), 404)
    # Still a member of the organization.
    assert owner.get(f"/org/members/{member.member_id}").status_code == 200
    assert_audited(settings, owner, "team.remove_member", team)


def test_list_team_members_pages_and_sorts(api_url: str) -> None:
    owner = signup(api_url, name="Zed Owner")
    team = make_team(owner, "Data")["id"]
    people = {}
    for name, prefix in (("anna", "d"), ("Bert", "c"), ("carl", "b"), ("Dora", "a")):
        member = make_member(owner, name=name, email=f"{prefix}-{name.lower()}-{team.lower()}@example.com")
        add_to_team(owner, team, member)
        people[name] = member

    def names(**params: object) -> tuple[int, list[str]]:
        r = owner.get(f"/org/teams/{team}/members", params=params)
        assert r.status_code == 200, r.text
        return r.json()["total"], [i["member"]["displayName"] for i in r.json()["items"]]

    assert names() == (5, ["anna", "Bert", "carl", "Dora", "Zed Owner"])
    assert names(sortDirection="desc", limit=2) == (5, ["Zed Owner", "Dora"])
    assert names(limit=2, page=2) == (5, ["carl", "Dora"])
    assert names(limit=2, page=9) == (5, [])
    total, by_email = names(sortBy="email")
    assert total == 5 and by_email[:4] == ["Dora", "carl", "Bert", "anna"]
    # The org-scoped display name is what the team sees.
    owner.patch(f"/org/members/{people['anna'].member_id}", json={"displayName": "Zz Anna"})
    assert names()[1][-1] == "Zz Anna"
    for params in ({"sortBy": "role"}, {"limit": 101}, {"page": 0}, {"sortDirection": "sideways"}):
        assert_error(owner.get(f"/org/teams/{team}/members", params=params), 400)
