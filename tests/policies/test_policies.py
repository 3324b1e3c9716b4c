"""Organization policies, through HTTP: principals by ID (user, member, team, service account),
replacing semantics, the permissions they grant, validation and organization isolation."""

from __future__ import annotations

from tests.service_accounts.helpers import make_service_account, make_team, make_user
from tests.support.actors import Actor, assert_error, signup


def test_set_describe_list_and_delete_a_user_policy(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    assert_error(owner.get(f"/org/policies/{member.user_id}"), 404)

    r = owner.put(f"/org/policies/{member.user_id}",
                  json={"permissions": ["CanViewAuditLog", "CanManagePolicies", "CanViewAuditLog"]})
    assert r.status_code == 200, r.text
    policy = r.json()
    assert policy["principal"] == {"type": "user", "id": member.user_id}
    assert policy["permissions"] == ["CanManagePolicies", "CanViewAuditLog"]
    assert policy["createdBy"] == owner.member_id and policy["createdAt"].endswith("Z")
    assert owner.get(f"/org/policies/{member.user_id}").json() == policy

    # Replaces, never merges.
    replaced = owner.put(f"/org/policies/{member.user_id}", json={"permissions": ["CanCreateTeams"]}).json()
    assert replaced["permissions"] == ["CanCreateTeams"] and replaced["createdAt"] == policy["createdAt"]
    assert replaced["updatedAt"] >= policy["updatedAt"]
    listed = owner.get("/org/policies").json()
    assert listed == {"items": [replaced], "marker": None}

    assert owner.delete(f"/org/policies/{member.user_id}").status_code == 200
    assert_error(owner.get(f"/org/policies/{member.user_id}"), 404)
    assert_error(owner.delete(f"/org/policies/{member.user_id}"), 404)
    assert owner.get("/org/policies").json()["items"] == []


def test_a_principal_can_be_named_by_member_id_or_typed_id(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    by_member = owner.put(f"/org/policies/{member.member_id}", json={"permissions": ["CanCreateTeams"]}).json()
    assert by_member["principal"] == {"type": "user", "id": member.user_id}
    for name in (f"user:{member.user_id}", f"member:{member.member_id}", member.user_id):
        assert owner.get(f"/org/policies/{name}").json()["permissions"] == ["CanCreateTeams"]
    assert_error(owner.get(f"/org/policies/team:{member.user_id}"), 404)
    assert_error(owner.get(f"/org/policies/service_account:{member.user_id}"), 404)
    assert_error(owner.get(f"/org/policies/robot:{member.user_id}"), 400)
    assert_error(owner.get("/org/policies/lower-case"), 400)
    assert_error(owner.get("/org/policies/user:"), 400)


def test_team_and_service_account_principals(api_url: str) -> None:
    owner = signup(api_url)
    team = make_team(owner)
    sa = make_service_account(owner)["id"]
    t = owner.put(f"/org/policies/{team}", json={"permissions": ["CanViewAuditLog"]}).json()
    assert t["principal"] == {"type": "team", "id": team}
    s = owner.put(f"/org/policies/service_account:{sa}", json={"permissions": ["CanViewMembers"]}).json()
    assert s["principal"] == {"type": "service_account", "id": sa}
    assert owner.get(f"/org/policies/team:{team}").json() == t
    listed = owner.get("/org/policies").json()["items"]
    assert [p["principal"]["type"] for p in listed] == ["team", "service_account"]


def test_a_policy_grants_its_permissions_organization_wide(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    assert_error(member.get("/org/policies"), 403)
    assert_error(member.get("/org/audit-events"), 403)
    owner.put(f"/org/policies/{member.user_id}", json={"permissions": ["CanManagePolicies"]})
    assert member.get("/org/policies").status_code == 200
    assert_error(member.get("/org/audit-events"), 403)
    owner.delete(f"/org/policies/{member.user_id}")
    assert_error(member.get("/org/policies"), 403)


def test_a_team_policy_applies_to_its_members(api_url: str) -> None:
    owner = signup(api_url)
    member, outsider = make_user(owner), make_user(owner)
    team = make_team(owner)
    r = owner.put(f"/org/teams/{team}/members/{member.member_id}", json={})
    assert r.status_code in (200, 201), r.text
    owner.put(f"/org/policies/{team}", json={"permissions": ["CanViewAuditLog"]})
    assert member.get("/org/audit-events").status_code == 200
    assert_error(outsider.get("/org/audit-events"), 403)


def test_only_grantable_catalog_permissions_are_accepted(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    path = f"/org/policies/{member.user_id}"
    err = assert_error(owner.put(path, json={"permissions": ["CanViewAuditLog", "CanFlyToTheMoon"]}), 422,
                       "unknown_permission")
    assert "CanFlyToTheMoon" in err["message"] and "permissions.1" in err["details"]["fieldErrors"]
    err = assert_error(owner.put(path, json={"permissions": ["CanManageOwners"]}), 422, "permission_not_grantable")
    assert "CanManageOwners" in err["message"]
    assert_error(owner.put(path, json={}), 422)
    assert_error(owner.put(path, json={"permissions": "CanViewAuditLog"}), 422)
    assert_error(owner.put(path, json={"permissions": [], "note": "x"}), 422)
    assert_error(owner.put(path, content=b"{", headers={"Content-Type": "application/json"}), 400, "malformed_json")
    # Nothing was written by any of the failures.
    assert_error(owner.get(path), 404)
    empty = owner.put(path, json={"permissions": []})
    assert empty.status_code == 200 and empty.json()["permissions"] == []


def test_only_policy_managers_may_read_or_write_policies(api_url: str) -> None:
    owner = signup(api_url)
    member, admin = make_user(owner), make_user(owner, "ADMIN")
    for response in (member.get("/org/policies"), member.get(f"/org/policies/{member.user_id}"),
                     member.put(f"/org/policies/{member.user_id}", json={"permissions": ["CanManagePolicies"]}),
                     member.delete(f"/org/policies/{member.user_id}")):
        assert_error(response, 403)
    assert_error(Actor(api_url).get("/org/policies"), 401)
    assert admin.put(f"/org/policies/{member.user_id}", json={"permissions": ["CanCreateTeams"]}).status_code == 200


def test_principals_of_other_organizations_are_not_found(api_url: str) -> None:
    owner, stranger = signup(api_url), signup(api_url)
    team = make_team(owner)
    sa = make_service_account(owner)["id"]
    owner.put(f"/org/policies/{owner.user_id}", json={"permissions": ["CanViewAuditLog"]})
    for principal in (owner.user_id, owner.member_id, team, sa, "UNKNOWN1"):
        assert_error(stranger.put(f"/org/policies/{principal}", json={"permissions": ["CanViewAuditLog"]}), 404)
        assert_error(stranger.get(f"/org/policies/{principal}"), 404)
        assert_error(stranger.delete(f"/org/policies/{principal}"), 404)
    assert stranger.get("/org/policies").json()["items"] == []
    assert owner.get(f"/org/policies/{owner.user_id}").status_code == 200


def test_policy_list_pages_with_a_marker(api_url: str) -> None:
    owner = signup(api_url)
    principals = [make_service_account(owner, f"bot-{i}")["id"] for i in range(3)]
    for p in principals:
        owner.put(f"/org/policies/{p}", json={"permissions": ["CanViewMembers"]})
    first = owner.get("/org/policies", params={"limit": 2}).json()
    assert [p["principal"]["id"] for p in first["items"]] == principals[:2] and first["marker"]
    second = owner.get("/org/policies", params={"limit": 2, "marker": first["marker"]}).json()
    assert [p["principal"]["id"] for p in second["items"]] == principals[2:] and second["marker"] is None
    assert owner.get("/org/policies", params={"limit": 0}).json()["items"] == []
    assert_error(owner.get("/org/policies", params={"limit": 101}), 400)
    assert_error(owner.get("/org/policies", params={"marker": "not valid"}), 400)


def test_no_policy_is_stranded_when_its_principal_goes_away(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    team = make_team(owner)
    owner.put(f"/org/policies/{member.user_id}", json={"permissions": ["CanViewAuditLog"]})
    owner.put(f"/org/policies/{team}", json={"permissions": ["CanViewAuditLog"]})
    assert owner.delete(f"/users/{member.user_id}").status_code == 200
    assert owner.delete(f"/org/teams/{team}").status_code == 200
    # A removed member's policy is either gone with them or still reachable by the ID, to delete it.
    remaining = owner.get(f"/org/policies/{member.user_id}")
    if remaining.status_code == 200:
        assert remaining.json()["principal"] == {"type": "user", "id": member.user_id}
        assert owner.delete(f"/org/policies/user:{member.user_id}").status_code == 200
    assert_error(owner.get(f"/org/policies/{member.user_id}"), 404)
    assert_error(owner.get(f"/org/policies/{team}"), 404)
    assert owner.get("/org/policies").json()["items"] == []
    # New grants need a principal that exists.
    assert_error(owner.put(f"/org/policies/{member.user_id}", json={"permissions": ["CanViewAuditLog"]}), 404)
