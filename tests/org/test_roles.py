"""The fixed organization and team role catalogs through HTTP."""

from __future__ import annotations

from sailplane.iam.auth import catalog
from tests.org.helpers import add_to_team, make_member, make_team
from tests.support.actors import Actor, assert_error, signup


def test_list_organization_roles(api_url: str) -> None:
    owner = signup(api_url)
    make_member(owner, "ADMIN")
    make_member(owner, "ADMIN")
    member = make_member(owner)
    r = member.get("/org/roles")  # any member may read the catalog
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 4
    assert [i["role"]["name"] for i in body["items"]] == ["Admin", "Auditor", "Member", "Owner"]
    by_id = {i["role"]["id"]: i for i in body["items"]}
    assert {k: v["memberCount"] for k, v in by_id.items()} == {"OWNER": 1, "ADMIN": 2, "MEMBER": 1, "AUDITOR": 0}
    owner_role = by_id["OWNER"]["role"]
    assert owner_role == {
        "id": "OWNER", "organizationId": owner.org_id, "name": "Owner",
        "description": catalog.ORG_ROLES["OWNER"].description, "allTeams": True, "breakGlass": False,
        "createdAt": "2024-01-01T00:00:00.000Z", "createdBy": None, "updatedAt": "2024-01-01T00:00:00.000Z",
        "updatedBy": None,
    }
    assert by_id["MEMBER"]["role"]["allTeams"] is False
    assert by_id["OWNER"]["permissionCount"] == len(catalog.org_role_permissions("OWNER"))
    assert by_id["AUDITOR"]["permissionCount"] == 2  # CanViewMembers + CanViewAuditLog


def test_list_roles_search_sort_and_pages(api_url: str) -> None:
    owner = signup(api_url)

    def names(path: str = "/org/roles", **params: object) -> tuple[int, list[str]]:
        r = owner.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()["total"], [i["role"]["name"] for i in r.json()["items"]]

    assert names(sortDirection="desc") == (4, ["Owner", "Member", "Auditor", "Admin"])
    assert names(sortBy="name", limit=3, page=2) == (4, ["Owner"])
    assert names(limit=0) == (4, [])
    assert names(search="AUDIT") == (1, ["Auditor"])
    assert names(search="ownership") == (1, ["Admin"])  # matches the description
    assert names(search="no such role") == (0, [])
    assert names("/org/team-roles") == (3, ["Developer", "Team Admin", "Viewer"])
    assert names("/org/team-roles", search="TEAM", sortDirection="desc") == (3, ["Viewer", "Team Admin", "Developer"])
    assert names("/org/team-roles", search="workloads") == (1, ["Developer"])
    assert names("/org/team-roles", search="view") == (1, ["Viewer"])
    for path in ("/org/roles", "/org/team-roles"):
        for params in ({"sortBy": "email"}, {"limit": 101}, {"page": 0}, {"sortDirection": "random"},
                       {"search": "s" * 256}):
            assert_error(owner.get(path, params=params), 400)


def test_describe_organization_role(api_url: str) -> None:
    owner = signup(api_url)
    r = owner.get("/org/roles/OWNER")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["role"]["id"] == "OWNER" and body["memberCount"] == 1
    assert "CanManageOwners" in body["permissions"] and body["permissions"] == sorted(body["permissions"])
    bundles = {b["name"]: b["permissions"] for b in body["permissionBundles"]}
    assert set(bundles) == set(catalog.BUNDLES) and bundles["Ownership"] == ["CanManageOwners"]
    admin = owner.get("/org/roles/ADMIN").json()
    assert "CanManageOwners" not in admin["permissions"] and admin["memberCount"] == 0
    assert "Ownership" not in {b["name"] for b in admin["permissionBundles"]}
    auditor = owner.get("/org/roles/AUDITOR").json()
    assert auditor["permissions"] == ["CanViewAuditLog", "CanViewMembers"]
    assert auditor["permissionBundles"] == [{"name": "Directory", "permissions": ["CanViewMembers"]}]
    assert_error(owner.get("/org/roles/KING"), 404, "not_found")
    assert_error(owner.get("/org/roles/TEAMADMIN"), 404)  # a team role, not an organization role
    assert_error(owner.get("/org/roles/bad-id"), 400)
    assert_error(Actor(api_url).get("/org/roles/OWNER"), 401)


def test_team_roles_count_assignments_in_this_organization(api_url: str) -> None:
    owner, other = signup(api_url), signup(api_url)
    team_a, team_b = make_team(owner, "A")["id"], make_team(owner, "B")["id"]  # owner: TEAMADMIN in both
    member = make_member(owner)
    add_to_team(owner, team_a, member, "TEAMVIEWER")
    add_to_team(owner, team_b, member, "TEAMVIEWER")
    make_team(other, "Elsewhere")  # another organization's assignment is not counted
    listed = {i["role"]["id"]: i for i in member.get("/org/team-roles").json()["items"]}
    assert {k: v["memberCount"] for k, v in listed.items()} == {"TEAMADMIN": 2, "TEAMVIEWER": 2, "TEAMDEVELOPER": 0}
    assert all(v["role"]["organizationId"] == owner.org_id and v["role"]["allTeams"] is False
               for v in listed.values())
    detail = member.get("/org/team-roles/TEAMVIEWER").json()
    assert detail["memberCount"] == 2
    assert detail["permissions"] == sorted(catalog.team_role_permissions("TEAMVIEWER"))
    assert detail["permissionBundles"] == [{"name": "ReadOnly", "permissions": sorted(catalog.BUNDLES["ReadOnly"])}]
    assert listed["TEAMVIEWER"]["permissionCount"] == len(detail["permissions"])
    admin = member.get("/org/team-roles/TEAMADMIN").json()
    assert {"CanManageTeam", "CanViewTeam"} <= set(admin["permissions"])
    assert_error(member.get("/org/team-roles/OWNER"), 404)
    assert_error(member.get("/org/team-roles/x_y"), 400)
