"""searchMembers, describeMember, updateMember, removeMember and updateMemberRoles through HTTP."""

from __future__ import annotations

import json

from sailplane.config import Settings
from tests.org.helpers import add_to_team, assert_audited, audit_rows, make_member, make_team
from tests.support.actors import PASSWORD, Actor, assert_error, login, signup


def _ids(response: object) -> list[str]:
    body = response.json()  # type: ignore[attr-defined]
    return [i["member"]["id"] for i in body["items"]]


def test_describe_member_shape(api_url: str) -> None:
    owner = signup(api_url, name="Olga Owner")
    member = make_member(owner, name="Mia")
    team = make_team(owner, "Data")["id"]
    add_to_team(owner, team, member, "TEAMVIEWER")
    r = owner.get(f"/org/members/{member.member_id}")
    assert r.status_code == 200, r.text
    item = r.json()
    assert set(item) == {"member", "roleIds", "teams"}
    m = item["member"]
    assert set(m) == {"id", "organizationId", "userId", "email", "displayName", "status", "accountType", "createdAt",
                      "createdBy", "updatedAt", "updatedBy"}
    assert (m["id"], m["organizationId"], m["userId"], m["email"]) == \
        (member.member_id, owner.org_id, member.user_id, member.email)
    assert (m["displayName"], m["status"], m["accountType"], m["createdBy"]) == \
        ("Mia", "active", "managed", owner.member_id)
    assert item["roleIds"] == ["MEMBER"]
    assert item["teams"] == [{"id": team, "name": "Data", "roleIds": ["TEAMVIEWER"]}]
    # Members may look each other up (Directory); bad and unknown IDs.
    assert member.get(f"/org/members/{owner.member_id}").json()["roleIds"] == ["OWNER"]
    assert_error(owner.get("/org/members/not-an-id"), 400)
    assert_error(owner.get("/org/members/NOSUCHMEMBER"), 404)
    assert_error(Actor(api_url).get(f"/org/members/{member.member_id}"), 401)


def test_search_members_filters(api_url: str) -> None:
    owner = signup(api_url, name="Olga Owner")
    ann = make_member(owner, name="Ann Archer")
    annie = make_member(owner, "ADMIN", name="Annie Admin")
    bob = make_member(owner, "AUDITOR", name="Bob Builder")
    team = make_team(owner, "Data")["id"]
    add_to_team(owner, team, bob)
    owner.patch(f"/org/members/{annie.member_id}", json={"status": "deactivated"})

    def search(flt: object) -> list[str]:
        value = flt if isinstance(flt, str) else json.dumps(flt)
        r = owner.get("/org/members", params={"filter": value})
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["items"])
        return sorted(_ids(r))

    everyone = sorted([owner.member_id, ann.member_id, annie.member_id, bob.member_id])  # type: ignore[type-var]
    assert search("") == everyone
    assert search("ann") == sorted([ann.member_id, annie.member_id])  # type: ignore[type-var]
    assert search("ARCHER") == [ann.member_id]
    assert search(bob.email or "") == [bob.member_id]  # matches the email
    assert search("%") == [] and search("_") == []  # LIKE wildcards are taken literally
    assert search({"query": "ann", "status": "active"}) == [ann.member_id]
    assert search({"status": "deactivated"}) == [annie.member_id]
    assert search({"roleId": "AUDITOR"}) == [bob.member_id]
    assert search({"roleId": "OWNER"}) == [owner.member_id]
    assert search({"teamId": team}) == sorted([owner.member_id, bob.member_id])  # type: ignore[type-var]
    assert search({"teamId": "NOSUCHTEAM"}) == []
    assert search({"query": "bob", "roleId": "MEMBER"}) == []
    assert search({}) == everyone
    for bad in ('{"query": "ann"', '{"name": "ann"}', '{"status": "frozen"}', '{"roleId": "KING"}',
                '{"teamId": "bad id"}', '{"query": 5}', '{"query": ["ann"]}', '{"query": "' + "q" * 256 + '"}'):
        err = assert_error(owner.get("/org/members", params={"filter": bad}), 400)
        assert "filter" in err["details"]["fieldErrors"], bad


def test_search_members_pages_and_sorts(api_url: str) -> None:
    owner = signup(api_url, name="Zoe Owner")
    tag = str(owner.member_id).lower()
    for name, prefix in (("carol", "a"), ("Alice", "c"), ("bob", "b")):
        make_member(owner, name=name, email=f"{prefix}-{name.lower()}-{tag}@example.com")

    def names(**params: object) -> tuple[int, list[str]]:
        r = owner.get("/org/members", params=params)
        assert r.status_code == 200, r.text
        return r.json()["total"], [i["member"]["displayName"] for i in r.json()["items"]]

    assert names() == (4, ["Alice", "bob", "carol", "Zoe Owner"])
    assert names(sortDirection="desc") == (4, ["Zoe Owner", "carol", "bob", "Alice"])
    assert names(limit=3, page=2) == (4, ["Zoe Owner"])
    assert names(limit=1, page=2, sortBy="email") == (4, ["bob"])
    assert names(sortBy="email")[1][:3] == ["carol", "bob", "Alice"]
    assert names(limit=0) == (4, [])
    for params in ({"sortBy": "createdAt"}, {"limit": 101}, {"page": 0}, {"sortDirection": "asc,desc"}):
        assert_error(owner.get("/org/members", params=params), 400)


def test_member_directory_permissions_and_team_visibility(api_url: str) -> None:
    owner = signup(api_url)
    team_a, team_b = make_team(owner, "A")["id"], make_team(owner, "B")["id"]
    in_a, in_b = make_member(owner), make_member(owner)
    add_to_team(owner, team_a, in_a)
    add_to_team(owner, team_b, in_b)
    # A plain member sees the directory, but not the teams they cannot see.
    items = {i["member"]["id"]: i for i in in_a.get("/org/members").json()["items"]}
    assert [t["id"] for t in items[in_a.member_id]["teams"]] == [team_a]
    assert items[in_b.member_id]["teams"] == []
    assert [t["id"] for t in items[owner.member_id]["teams"]] == [team_a]  # the owner created both
    assert in_a.get("/org/members", params={"filter": json.dumps({"teamId": team_b})}).json() == \
        {"total": 0, "items": []}
    assert in_a.get(f"/org/members/{in_b.member_id}").json()["teams"] == []
    # The owner sees everything.
    assert [t["id"] for t in owner.get(f"/org/members/{in_b.member_id}").json()["teams"]] == [team_b]
    # Without credentials, or from another organization: refused / not found.
    assert_error(Actor(api_url).get("/org/members"), 401)
    stranger = signup(api_url)
    assert str(in_a.member_id) not in stranger.get("/org/members").text
    for r in (stranger.get(f"/org/members/{in_a.member_id}"),
              stranger.patch(f"/org/members/{in_a.member_id}", json={"displayName": "Hacked"}),
              stranger.delete(f"/org/members/{in_a.member_id}"),
              stranger.put(f"/org/members/{in_a.member_id}/roles", json={"roleIds": ["ADMIN"]})):
        err = assert_error(r, 404)
        assert in_a.email not in err["message"]
    assert_error(stranger.as_org(owner.org_id or "").get("/org/members"), 404, "organization_not_found")
    assert owner.get(f"/org/members/{in_a.member_id}").json()["member"]["displayName"] == "Member"


def test_update_member(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    member = make_member(owner, name="Original")
    r = owner.patch(f"/org/members/{member.member_id}", json={"displayName": "Org Name"})
    assert r.status_code == 200, r.text
    assert r.json()["member"]["displayName"] == "Org Name" and r.json()["member"]["updatedBy"] == owner.member_id
    # The org-scoped name does not change the account's own profile.
    assert owner.get(f"/users/{member.user_id}").json()["displayName"] == "Original"
    assert member.get("/me").json()["user"]["displayName"] == "Original"
    r = owner.patch(f"/org/members/{member.member_id}", json={"displayName": None})
    assert r.json()["member"]["displayName"] == "Original"
    row = assert_audited(settings, owner, "member.update", member.member_id or "")
    assert row.details["fields"] == ["display_name"]
    # Deactivation ends their access here, reactivation restores it.
    r = owner.patch(f"/org/members/{member.member_id}", json={"status": "deactivated"})
    assert r.status_code == 200 and r.json()["member"]["status"] == "deactivated"
    assert_error(member.get("/org"), 404)
    assert owner.patch(f"/org/members/{member.member_id}", json={"status": "active"}).status_code == 200
    assert member.get("/org").status_code == 200
    for body in ({"status": "frozen"}, {"status": None}, {"displayName": ""}, {"displayName": "x" * 256},
                 {"email": "new@example.com"}):
        assert_error(owner.patch(f"/org/members/{member.member_id}", json=body), 422)


def test_update_member_owner_rules(api_url: str) -> None:
    owner = signup(api_url)
    admin = make_member(owner, "ADMIN")
    member = make_member(owner)
    assert_error(member.patch(f"/org/members/{admin.member_id}", json={"displayName": "x"}), 403)
    assert_error(member.patch(f"/org/members/{member.member_id}", json={"displayName": "x"}), 403)
    assert admin.patch(f"/org/members/{member.member_id}", json={"displayName": "By admin"}).status_code == 200
    # Only an Owner changes an Owner.
    assert_error(admin.patch(f"/org/members/{owner.member_id}", json={"displayName": "x"}), 403)
    assert_error(admin.patch(f"/org/members/{owner.member_id}", json={"status": "deactivated"}), 403)
    # The last Owner is never deactivated, not even by themselves.
    assert_error(owner.patch(f"/org/members/{owner.member_id}", json={"status": "deactivated"}), 409, "last_owner")
    assert owner.get("/org").status_code == 200
    # With a second Owner, one of them can step down.
    second = make_member(owner, "OWNER")
    assert owner.patch(f"/org/members/{second.member_id}", json={"status": "deactivated"}).status_code == 200
    assert_error(owner.patch(f"/org/members/{owner.member_id}", json={"status": "deactivated"}), 409)
    assert owner.patch(f"/org/members/{second.member_id}", json={"status": "active"}).status_code == 200
    assert second.patch(f"/org/members/{owner.member_id}", json={"status": "deactivated"}).status_code == 200


def test_update_member_roles(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    admin = make_member(owner, "ADMIN")
    member = make_member(owner)
    path = f"/org/members/{member.member_id}/roles"
    r = admin.put(path, json={"roleIds": ["AUDITOR", "MEMBER", "AUDITOR"]})
    assert r.status_code == 200 and r.json() == {"message": "The requested operation was done successfully."}
    assert owner.get(f"/org/members/{member.member_id}").json()["roleIds"] == ["AUDITOR", "MEMBER"]
    row = assert_audited(settings, admin, "member.update_roles", member.member_id or "")
    assert row.details == {"before": ["MEMBER"], "after": ["AUDITOR", "MEMBER"]}
    # The new role takes effect at once.
    assert member.get("/org/members").status_code == 200
    assert admin.put(path, json={"roleIds": ["ADMIN"]}).status_code == 200
    assert member.get("/org/teams").status_code == 200 and member.patch("/org", json={}).status_code == 200
    bodies: list[dict[str, object]] = [{"roleIds": []}, {}, {"roleIds": ["KING"]}, {"roleIds": ["TEAMADMIN"]},
                                       {"roleIds": ["bad id"]}, {"roleIds": "ADMIN"}]
    for body in bodies:
        err = assert_error(admin.put(path, json=body), 422)
        assert any(k.startswith("roleIds") for k in err["details"]["fieldErrors"]), body
    assert_error(admin.put("/org/members/bad-id/roles", json={"roleIds": ["ADMIN"]}), 400)
    assert_error(admin.put("/org/members/NOSUCHMEMBER/roles", json={"roleIds": ["ADMIN"]}), 404)
    plain = make_member(owner)
    assert_error(plain.put(path, json={"roleIds": ["MEMBER"]}), 403)
    assert_error(plain.put(f"/org/members/{plain.member_id}/roles", json={"roleIds": ["ADMIN"]}), 403)


def test_owner_role_rules(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    admin = make_member(owner, "ADMIN")
    member = make_member(owner)
    # Granting or removing Owner needs CanManageOwners.
    assert_error(admin.put(f"/org/members/{member.member_id}/roles", json={"roleIds": ["OWNER"]}), 403)
    assert_error(admin.put(f"/org/members/{admin.member_id}/roles", json={"roleIds": ["OWNER", "ADMIN"]}), 403)
    assert_error(admin.put(f"/org/members/{owner.member_id}/roles", json={"roleIds": ["MEMBER"]}), 403)
    # The last Owner keeps the role.
    assert_error(owner.put(f"/org/members/{owner.member_id}/roles", json={"roleIds": ["ADMIN"]}), 409, "last_owner")
    assert owner.get(f"/org/members/{owner.member_id}").json()["roleIds"] == ["OWNER"]
    assert owner.put(f"/org/members/{owner.member_id}/roles", json={"roleIds": ["OWNER", "ADMIN"]}).status_code == 200
    # An Owner grants Owner; then either can step down.
    assert owner.put(f"/org/members/{member.member_id}/roles", json={"roleIds": ["OWNER"]}).status_code == 200
    assert owner.put(f"/org/members/{owner.member_id}/roles", json={"roleIds": ["ADMIN"]}).status_code == 200
    assert_error(member.put(f"/org/members/{member.member_id}/roles", json={"roleIds": ["MEMBER"]}), 409)
    # The former owner (now Admin) may no longer touch the Owner.
    assert_error(owner.put(f"/org/members/{member.member_id}/roles", json={"roleIds": ["MEMBER"]}), 403)
    assert [r.details["after"] for r in audit_rows(settings, owner.org_id, "member.update_roles")] == \
        [["ADMIN", "OWNER"], ["OWNER"], ["ADMIN"]]


def test_remove_member(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    admin = make_member(owner, "ADMIN")
    member = make_member(owner)
    team = make_team(owner, "Data")["id"]
    add_to_team(owner, team, member)
    assert_error(member.delete(f"/org/members/{admin.member_id}"), 403)
    r = admin.delete(f"/org/members/{member.member_id}")
    assert r.status_code == 200, r.text
    assert_error(owner.get(f"/org/members/{member.member_id}"), 404)
    assert_error(admin.delete(f"/org/members/{member.member_id}"), 404)
    assert owner.get(f"/org/teams/{team}").json()["memberCount"] == 1  # team membership went too
    assert_error(login(api_url, member.email or "", PASSWORD), 401)  # their only organization: account gone
    assert_audited(settings, admin, "member.remove", member.member_id or "")
    # Owners: only by an Owner, never the last one.
    assert_error(admin.delete(f"/org/members/{owner.member_id}"), 403)
    assert_error(owner.delete(f"/org/members/{owner.member_id}"), 409, "last_owner")
    assert_error(owner.delete("/org/members/bad-id"), 400)
    assert owner.get("/org").json()["memberCount"] == 2
