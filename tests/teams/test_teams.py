"""Teams through HTTP: create, describe, list (visibility, paging, sorting), update, delete."""

from __future__ import annotations

import httpx

from sailplane.config import Settings
from sailplane.iam.auth import catalog
from sailplane.kit.views import wire_keys
from sailplane.tenancy.teams.schemas import TeamItem, TeamView
from tests.org.helpers import add_to_team, assert_audited, audit_rows, make_member, make_team
from tests.support.actors import Actor, assert_error, signup


def test_create_and_describe_a_team(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    r = owner.post("/org/teams", json={"name": "Data", "description": "The data team", "email": "Data@Example.com"})
    assert r.status_code == 201, r.text
    body = r.json()
    team = body["team"]
    assert body["memberCount"] == 1
    assert set(team) == {"id", "organizationId", "name", "description", "email", "createdAt", "createdBy",
                         "updatedAt", "updatedBy", "defaultRoleId"}
    assert team["organizationId"] == owner.org_id and team["name"] == "Data"
    assert team["description"] == "The data team" and team["email"] == "data@example.com"
    assert team["defaultRoleId"] == catalog.DEFAULT_TEAM_ROLE
    assert team["createdBy"] == owner.member_id == team["updatedBy"]
    assert team["createdAt"].endswith("Z")
    assert owner.get(f"/org/teams/{team['id']}").json() == body
    # The creator joined with the highest team role.
    members = owner.get(f"/org/teams/{team['id']}/members").json()
    assert members["total"] == 1
    assert members["items"][0]["member"]["id"] == owner.member_id
    assert members["items"][0]["roleIds"] == [catalog.HIGHEST_TEAM_ROLE]
    assert members["items"][0]["roles"] == [{"id": "TEAMADMIN", "name": "Team Admin"}]
    assert [t["teamId"] for t in owner.get("/me/teams").json()["items"]] == [team["id"]]
    row = assert_audited(settings, owner, "team.create", team["id"])
    assert row.resource_type == "team"


def test_create_team_accepts_own_organization_id_and_a_default_role(api_url: str) -> None:
    owner = signup(api_url)
    r = owner.post("/org/teams", json={"organizationId": owner.org_id, "name": "Viewers",
                                       "defaultRoleId": "TEAMVIEWER"})
    assert r.status_code == 201, r.text
    assert r.json()["team"]["defaultRoleId"] == "TEAMVIEWER"
    assert r.json()["team"]["description"] is None and r.json()["team"]["email"] is None


def test_create_team_rejects_bad_input_and_writes_nothing(api_url: str) -> None:
    owner, other = signup(api_url), signup(api_url)
    make_team(owner, "Data")
    assert_error(owner.post("/org/teams", json={"name": "Data"}), 409, "team_name_taken")
    assert_error(owner.post("/org/teams", json={"name": "  data "}), 409)  # names are unique case-insensitively
    err = assert_error(owner.post("/org/teams", json={"name": "x" * 256}), 422)
    assert "name" in err["details"]["fieldErrors"]
    assert_error(owner.post("/org/teams", json={"name": ""}), 422)
    assert_error(owner.post("/org/teams", json={}), 422)
    assert_error(owner.post("/org/teams", json={"name": "N", "colour": "red"}), 422)
    assert_error(owner.post("/org/teams", json={"name": "N", "email": "not-an-email"}), 422)
    assert_error(owner.post("/org/teams", json={"name": "N", "description": "d" * 2001}), 422)
    err = assert_error(owner.post("/org/teams", json={"name": "N", "defaultRoleId": "KING"}), 422)
    assert "defaultRoleId" in err["details"]["fieldErrors"]
    assert_error(owner.post("/org/teams", json={"name": "N", "defaultRoleId": "OWNER"}), 422)  # an org role
    assert_error(owner.post("/org/teams", json={"name": "N", "defaultRoleId": "bad-id"}), 422)
    assert_error(owner.post("/org/teams", json={"name": "N", "organizationId": other.org_id}), 404)
    assert_error(owner.post("/org/teams", content=b"{not json", headers={"Content-Type": "application/json"}),
                 400, "malformed_json")
    assert owner.get("/org/teams").json()["total"] == 1


def test_creating_teams_needs_the_permission(api_url: str) -> None:
    owner = signup(api_url)
    member = make_member(owner)
    auditor = make_member(owner, "AUDITOR")
    assert_error(member.post("/org/teams", json={"name": "Mine"}), 403, "forbidden")
    assert_error(auditor.post("/org/teams", json={"name": "Mine"}), 403)
    assert_error(Actor(api_url).post("/org/teams", json={"name": "Mine"}), 401)
    assert_error(Actor(api_url).get("/org/teams"), 401)
    # An Admin may, and becomes the team's admin.
    admin = make_member(owner, "ADMIN")
    r = admin.post("/org/teams", json={"name": "Admins' team"})
    assert r.status_code == 201 and r.json()["memberCount"] == 1
    items = admin.get(f"/org/teams/{r.json()['team']['id']}/members").json()["items"]
    assert [(i["member"]["id"], i["roleIds"]) for i in items] == [(admin.member_id, ["TEAMADMIN"])]


def test_list_teams_pages_and_sorts(api_url: str) -> None:
    owner = signup(api_url)
    names = ["delta", "Alpha", "charlie", "Bravo", "echo"]
    emails = {"delta": "a@example.com", "Alpha": "d@example.com", "charlie": None, "Bravo": "c@example.com",
              "echo": "b@example.com"}
    for n in names:
        make_team(owner, n, **({"email": emails[n]} if emails[n] else {}))

    def listed(**params: object) -> tuple[int, list[str]]:
        r = owner.get("/org/teams", params=params)
        assert r.status_code == 200, r.text
        return r.json()["total"], [i["team"]["name"] for i in r.json()["items"]]

    assert listed() == (5, ["Alpha", "Bravo", "charlie", "delta", "echo"])
    assert listed(sortDirection="desc") == (5, ["echo", "delta", "charlie", "Bravo", "Alpha"])
    assert listed(limit=2) == (5, ["Alpha", "Bravo"])
    assert listed(limit=2, page=2) == (5, ["charlie", "delta"])
    assert listed(limit=2, page=3) == (5, ["echo"])
    assert listed(limit=2, page=4) == (5, [])
    assert listed(limit=0) == (5, [])
    # By email; the team without an email comes last either way.
    assert listed(sortBy="email") == (5, ["delta", "echo", "Bravo", "Alpha", "charlie"])
    assert listed(sortBy="email", sortDirection="desc") == (5, ["Alpha", "Bravo", "echo", "delta", "charlie"])
    # Every page with memberCount.
    assert all(i["memberCount"] == 1 for i in owner.get("/org/teams").json()["items"])
    for params in ({"sortBy": "createdAt"}, {"limit": 101}, {"limit": -1}, {"page": 0}, {"sortDirection": "up"},
                   {"page": "one"}):
        err = assert_error(owner.get("/org/teams", params=params), 400)
        assert err["details"]["fieldErrors"], params
    assert_error(owner.get("/org/teams", params={"sortBy": "createdAt"}), 400, "invalid_sort_field")
    # Without credentials the answer is 401 whatever the parameters, as on every other route.
    anonymous = httpx.get(f"{api_url}/org/teams", params={"limit": 500, "sortBy": "createdAt"})
    assert_error(anonymous, 401)


def test_listed_teams_look_exactly_as_described(api_url: str) -> None:
    """listTeams reads its rows another way than describeTeam (on SQLite a page comes packed into one
    JSON value); whatever a team's text, each listed item must equal the described team."""
    owner = signup(api_url)
    member = make_member(owner)
    names = ['Quote " and back\\slash', "Ünïcode ☃ 🚀", "tab\tand\nnewline", "x" * 255]
    for i, name in enumerate(names):
        team = make_team(owner, name, description=f"line\nsep \u2028 <&> {i}", email=f"t{i}@example.com")
        if i == 0:
            add_to_team(owner, team["id"], member)
    listed = owner.get("/org/teams").json()
    assert listed["total"] == 4 and sorted(i["team"]["name"] for i in listed["items"]) == sorted(names)
    for item in listed["items"]:
        assert owner.get(f"/org/teams/{item['team']['id']}").json() == item
        assert list(item) == wire_keys(TeamItem) and list(item["team"]) == wire_keys(TeamView)
    assert sorted(i["memberCount"] for i in listed["items"]) == [1, 1, 1, 2]
    # The total with more to come (counted), on the last page (known from it) and past the end (counted).
    assert owner.get("/org/teams", params={"limit": 3}).json()["total"] == 4
    assert owner.get("/org/teams", params={"limit": 3, "page": 2}).json()["total"] == 4
    assert owner.get("/org/teams", params={"limit": 3, "page": 3}).json() == {"total": 4, "items": []}


def test_members_see_only_their_own_teams(api_url: str) -> None:
    owner = signup(api_url)
    team_a, team_b = make_team(owner, "A")["id"], make_team(owner, "B")["id"]
    in_a, in_b, nowhere = make_member(owner), make_member(owner), make_member(owner)
    admin = make_member(owner, "ADMIN")
    add_to_team(owner, team_a, in_a)
    add_to_team(owner, team_b, in_b)

    assert [i["team"]["id"] for i in in_a.get("/org/teams").json()["items"]] == [team_a]
    assert in_a.get("/org/teams").json()["total"] == 1
    assert nowhere.get("/org/teams").json() == {"total": 0, "items": []}
    assert admin.get("/org/teams").json()["total"] == 2  # allTeams: an Admin sees every team
    assert in_a.get(f"/org/teams/{team_a}").status_code == 200
    for path in (f"/org/teams/{team_b}", f"/org/teams/{team_b}/members"):
        assert_error(in_a.get(path), 404, "not_found")
        assert_error(nowhere.get(path), 404)
    assert_error(in_b.get(f"/org/teams/{team_a}"), 404)
    # 404 too for every mutation on a team the caller cannot see (not 403: its existence is not revealed).
    assert_error(in_a.patch(f"/org/teams/{team_b}", json={"name": "Mine"}), 404)
    assert_error(in_a.delete(f"/org/teams/{team_b}"), 404)
    assert_error(in_a.put(f"/org/teams/{team_b}/members/{in_a.member_id}", json={}), 404)
    assert_error(in_a.get("/org/teams/not-an-id"), 400)
    assert_error(owner.get("/org/teams/NOSUCHTEAM"), 404)


def test_other_organizations_get_404_for_everything(api_url: str) -> None:
    owner, stranger = signup(api_url), signup(api_url)
    team = make_team(owner, "Secret")["id"]
    member = make_member(owner)
    add_to_team(owner, team, member)
    stranger_member = make_member(stranger)
    stranger_team = make_team(stranger, "Theirs")["id"]
    # The stranger is an Owner (allTeams) of their own organization; the IDs belong to another one.
    calls = [
        stranger.get(f"/org/teams/{team}"),
        stranger.patch(f"/org/teams/{team}", json={"name": "Stolen"}),
        stranger.delete(f"/org/teams/{team}"),
        stranger.get(f"/org/teams/{team}/members"),
        stranger.put(f"/org/teams/{team}/members/{stranger_member.member_id}", json={}),
        stranger.delete(f"/org/teams/{team}/members/{member.member_id}"),
        stranger.put(f"/org/teams/{team}/members/{member.member_id}/roles", json={"roleIds": ["TEAMVIEWER"]}),
        # A team of theirs with a member of another organization.
        stranger.put(f"/org/teams/{stranger_team}/members/{member.member_id}", json={}),
        stranger.put(f"/org/teams/{stranger_team}/members/{member.member_id}/roles", json={"roleIds": ["TEAMVIEWER"]}),
    ]
    for r in calls:
        err = assert_error(r, 404)
        assert "Secret" not in r.text and team not in err["message"]
    assert team not in stranger.get("/org/teams").text
    assert_error(stranger.as_org(owner.org_id or "").get("/org/teams"), 404, "organization_not_found")
    assert_error(stranger.as_org(owner.org_id or "").get(f"/org/teams/{team}"), 404, "organization_not_found")
    # Nothing changed.
    assert owner.get(f"/org/teams/{team}").json()["team"]["name"] == "Secret"
    assert owner.get(f"/org/teams/{team}").json()["memberCount"] == 2


def test_a_team_admin_manages_their_team_but_no_other(api_url: str) -> None:
    owner = signup(api_url)
    team_a, team_b, team_c = (make_team(owner, n)["id"] for n in ("A", "B", "C"))
    lead, dev, other = make_member(owner), make_member(owner), make_member(owner)
    add_to_team(owner, team_a, lead, "TEAMADMIN")
    add_to_team(owner, team_b, lead, "TEAMVIEWER")
    add_to_team(owner, team_a, dev)  # default role: TEAMDEVELOPER

    assert lead.patch(f"/org/teams/{team_a}", json={"description": "Led by lead"}).status_code == 200
    assert lead.put(f"/org/teams/{team_a}/members/{other.member_id}", json={}).status_code == 200
    assert lead.put(f"/org/teams/{team_a}/members/{dev.member_id}/roles",
                    json={"roleIds": ["TEAMVIEWER"]}).status_code == 200
    assert lead.delete(f"/org/teams/{team_a}/members/{other.member_id}").status_code == 200
    # Visible but not managed: 403. Invisible: 404.
    assert_error(lead.patch(f"/org/teams/{team_b}", json={"description": "x"}), 403, "forbidden")
    assert_error(lead.put(f"/org/teams/{team_b}/members/{other.member_id}", json={}), 403)
    assert_error(lead.delete(f"/org/teams/{team_b}"), 403)
    assert lead.get(f"/org/teams/{team_b}/members").status_code == 200  # a viewer may look
    assert_error(lead.patch(f"/org/teams/{team_c}", json={"description": "x"}), 404)
    # A developer of team A cannot manage it either.
    assert_error(dev.patch(f"/org/teams/{team_a}", json={"description": "x"}), 403)
    assert_error(dev.put(f"/org/teams/{team_a}/members/{other.member_id}", json={}), 403)
    # The team admin can delete their own team.
    assert lead.delete(f"/org/teams/{team_a}").status_code == 200
    assert_error(owner.get(f"/org/teams/{team_a}"), 404)


def test_update_team(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    team = make_team(owner, "Data", description="old", email="data@example.com")
    make_team(owner, "Taken")
    r = owner.patch(f"/org/teams/{team['id']}", json={"name": "Analytics", "defaultRoleId": "TEAMVIEWER"})
    assert r.status_code == 200, r.text
    updated = r.json()["team"]
    assert updated["name"] == "Analytics" and updated["defaultRoleId"] == "TEAMVIEWER"
    assert updated["description"] == "old" and updated["email"] == "data@example.com"  # untouched
    assert updated["updatedAt"] >= team["updatedAt"] and r.json()["memberCount"] == 1
    cleared = owner.patch(f"/org/teams/{team['id']}", json={"description": None, "email": None}).json()["team"]
    assert cleared["description"] is None and cleared["email"] is None
    assert owner.patch(f"/org/teams/{team['id']}", json={"name": "ANALYTICS"}).status_code == 200  # own name
    assert owner.patch(f"/org/teams/{team['id']}", json={}).status_code == 200
    assert_error(owner.patch(f"/org/teams/{team['id']}", json={"name": "taken"}), 409, "team_name_taken")
    assert_error(owner.patch(f"/org/teams/{team['id']}", json={"name": "x" * 256}), 422)
    assert_error(owner.patch(f"/org/teams/{team['id']}", json={"name": None}), 422)
    assert_error(owner.patch(f"/org/teams/{team['id']}", json={"defaultRoleId": "ADMIN"}), 422)
    assert_error(owner.patch(f"/org/teams/{team['id']}", json={"defaultRoleId": None}), 422)
    assert_error(owner.patch(f"/org/teams/{team['id']}", json={"email": "nope"}), 422)
    assert_error(owner.patch(f"/org/teams/{team['id']}", json={"organizationId": owner.org_id}), 422)
    assert owner.get(f"/org/teams/{team['id']}").json()["team"]["name"] == "ANALYTICS"
    rows = audit_rows(settings, owner.org_id, "team.update", team["id"])
    assert len(rows) == 4  # only the successful updates
    assert rows[0].details["fields"] == ["default_role_id", "name"]


def test_delete_team_removes_its_member_assignments(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    team = make_team(owner, "Doomed")["id"]
    keep = make_team(owner, "Kept")["id"]
    member = make_member(owner)
    add_to_team(owner, team, member)
    add_to_team(owner, keep, member)
    r = owner.delete(f"/org/teams/{team}")
    assert r.status_code == 200 and r.json() == {"message": "The requested operation was done successfully."}
    assert_error(owner.get(f"/org/teams/{team}"), 404)
    assert_error(owner.delete(f"/org/teams/{team}"), 404)
    assert [t["teamId"] for t in member.get("/me/teams").json()["items"]] == [keep]
    assert [t["id"] for t in owner.get(f"/org/members/{member.member_id}").json()["teams"]] == [keep]
    assert owner.get("/org").json()["teamCount"] == 1
    # The name is free again.
    assert owner.post("/org/teams", json={"name": "Doomed"}).status_code == 201
    assert_audited(settings, owner, "team.delete", team)
