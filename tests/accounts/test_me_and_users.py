"""/me and the admin /users operations, through HTTP."""

from __future__ import annotations

from tests.support.actors import PASSWORD, Actor, assert_error, login, signup, unique_email


def make_user(owner: Actor, role: str = "MEMBER", password: str | None = PASSWORD) -> Actor:
    email = unique_email("member")
    body: dict[str, object] = {"email": email, "displayName": "Member", "roleIds": [role]}
    if password is not None:
        body["password"] = password
    r = owner.post("/users", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    token = login(owner.base_url, email, password or created["temporaryPassword"]).json()["token"]
    return Actor(owner.base_url, token, owner.org_id, created["id"], created["memberId"], email,
                 password or created["temporaryPassword"])


def test_update_me_changes_profile_and_preferences(api_url: str) -> None:
    owner = signup(api_url)
    r = owner.patch("/me", json={"displayName": "Grace", "preferences": {"theme": "dark"}})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["displayName"] == "Grace"
    assert owner.get("/me").json()["preferences"] == {"theme": "dark"}
    assert_error(owner.patch("/me", json={"displayName": ""}), 422)
    assert_error(owner.patch("/me", json={"nickname": "x"}), 422)
    assert_error(owner.patch("/me", json={"defaultOrganizationId": "NOTMYORG1"}), 422)


def test_logins_are_listed_and_revoking_one_kills_that_token_at_once(api_url: str) -> None:
    owner = signup(api_url)
    second = login(api_url, owner.email, PASSWORD, **{"User-Agent": "pytest-laptop/1.0"}).json()
    logins = owner.get("/me/logins").json()["items"]
    assert len(logins) == 2
    assert sum(1 for x in logins if x["current"]) == 1
    other = next(x for x in logins if x["id"] == second["loginId"])
    assert other["userAgent"] == "pytest-laptop/1.0" and other["ipAddress"] == "127.0.0.1"
    assert owner.delete(f"/me/logins/{second['loginId']}").status_code == 200
    assert_error(Actor(api_url, second["token"]).get("/me"), 401)
    assert_error(owner.delete(f"/me/logins/{second['loginId']}"), 404)
    assert_error(owner.delete("/me/logins/bad-id"), 400)


def test_someone_elses_login_cannot_be_revoked(api_url: str) -> None:
    a, b = signup(api_url), signup(api_url)
    b_login = b.get("/me/logins").json()["items"][0]["id"]
    assert_error(a.delete(f"/me/logins/{b_login}"), 404)
    assert b.get("/me").status_code == 200


def test_admin_user_crud(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    listed = owner.get("/users").json()
    assert {u["id"] for u in listed["items"]} == {owner.user_id, member.user_id}
    described = owner.get(f"/users/{member.user_id}").json()
    assert described["roleIds"] == ["MEMBER"] and described["email"] == member.email
    r = owner.patch(f"/users/{member.user_id}", json={"displayName": "Renamed"})
    assert r.status_code == 200 and r.json()["displayName"] == "Renamed"
    assert_error(owner.patch(f"/users/{member.user_id}", json={"status": "frozen"}), 422)
    assert owner.delete(f"/users/{member.user_id}").status_code == 200
    assert_error(owner.get(f"/users/{member.user_id}"), 404)
    assert_error(login(api_url, member.email, PASSWORD), 401)


def test_user_list_pages_with_a_marker(api_url: str) -> None:
    owner = signup(api_url)
    for _ in range(3):
        make_user(owner)
    first = owner.get("/users", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["marker"]
    second = owner.get("/users", params={"limit": 2, "marker": first["marker"]}).json()
    assert len(second["items"]) == 2 and second["marker"] is None
    ids = [u["id"] for u in first["items"] + second["items"]]
    assert len(set(ids)) == 4 and ids == sorted(ids)
    assert_error(owner.get("/users", params={"limit": 101}), 400)
    assert_error(owner.get("/users", params={"limit": -1}), 400)
    assert_error(owner.get("/users", params={"marker": "lower-case"}), 400)


def test_deactivated_member_cannot_act_in_the_organization(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    assert owner.patch(f"/users/{member.user_id}", json={"status": "deactivated"}).status_code == 200
    assert_error(member.get("/me/teams"), 404)
    assert owner.patch(f"/users/{member.user_id}", json={"status": "active"}).status_code == 200
    assert member.get("/me/teams").status_code == 200


def test_create_user_rejects_duplicates_and_unknown_roles(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    assert_error(owner.post("/users", json={"email": member.email, "displayName": "x", "password": PASSWORD}), 409)
    err = assert_error(owner.post("/users", json={"email": unique_email(), "displayName": "x", "roleIds": ["KING"]}),
                       422)
    assert "roleIds" in err["details"]["fieldErrors"]
    assert len(owner.get("/users").json()["items"]) == 2  # nothing half-written


def test_members_and_admins_follow_the_rules(api_url: str) -> None:
    owner = signup(api_url)
    admin = make_user(owner, role="ADMIN")
    member = make_user(owner)
    assert_error(member.get("/users"), 403)
    assert_error(member.post("/users", json={"email": unique_email(), "displayName": "x"}), 403)
    assert admin.get("/users").status_code == 200
    # An Admin cannot touch an Owner's account, nor create Owners.
    assert_error(admin.post(f"/users/{owner.user_id}/reset-password"), 403)
    assert_error(admin.delete(f"/users/{owner.user_id}"), 403)
    assert_error(admin.post("/users", json={"email": unique_email(), "displayName": "x", "roleIds": ["OWNER"]}), 403)
    # The last Owner cannot be removed, even by themselves.
    assert_error(owner.delete(f"/users/{owner.user_id}"), 409, "last_owner")


def test_other_organizations_see_nothing(api_url: str) -> None:
    owner, stranger = signup(api_url), signup(api_url)
    member = make_user(owner)
    for r in (stranger.get(f"/users/{member.user_id}"), stranger.patch(f"/users/{member.user_id}", json={}),
              stranger.delete(f"/users/{member.user_id}"),
              stranger.post(f"/users/{member.user_id}/reset-password")):
        err = assert_error(r, 404)
        assert member.user_id not in r.text and member.email not in err["message"]
    assert_error(stranger.as_org(owner.org_id).get("/users"), 404, "organization_not_found")


def test_change_password_needs_the_current_one_and_ends_other_logins(api_url: str) -> None:
    owner = signup(api_url)
    other_token = login(api_url, owner.email, PASSWORD).json()["token"]
    err = assert_error(owner.post(f"/users/{owner.user_id}/change-password",
                                  json={"currentPassword": "wrong-password", "newPassword": "a-brand-new-password"}),
                       400, "invalid_current_password")
    assert "currentPassword" in err["details"]["fieldErrors"]
    r = owner.post(f"/users/{owner.user_id}/change-password",
                   json={"currentPassword": PASSWORD, "newPassword": "a-brand-new-password"})
    assert r.status_code == 200, r.text
    assert owner.get("/me").status_code == 200
    assert_error(Actor(api_url, other_token).get("/me"), 401)
    assert login(api_url, owner.email, "a-brand-new-password").status_code == 200
    assert_error(login(api_url, owner.email, PASSWORD), 401)


def test_nobody_changes_someone_elses_password(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    assert_error(owner.post(f"/users/{member.user_id}/change-password",
                            json={"currentPassword": PASSWORD, "newPassword": "a-brand-new-password"}), 403)


def test_admin_reset_password_forces_a_change_at_next_login(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    r = owner.post(f"/users/{member.user_id}/reset-password")
    assert r.status_code == 200
    temporary = r.json()["temporaryPassword"]
    assert_error(member.get("/me"), 401)  # every login ended
    fresh = login(api_url, member.email, temporary).json()
    assert fresh["mustChangePassword"] is True
    limited = Actor(api_url, fresh["token"])
    assert limited.get("/me").status_code == 200
    assert_error(limited.get("/me/teams"), 403, "password_change_required")
    assert limited.post(f"/users/{member.user_id}/change-password",
                        json={"currentPassword": temporary, "newPassword": "my-own-new-password"}).status_code == 200
    assert limited.get("/me/teams").status_code == 200
    assert owner.get(f"/users/{member.user_id}").json()["mustChangePassword"] is False


def test_created_user_without_password_gets_a_temporary_one(api_url: str) -> None:
    owner = signup(api_url)
    r = owner.post("/users", json={"email": unique_email(), "displayName": "Temp"})
    assert r.status_code == 201
    body = r.json()
    assert body["mustChangePassword"] is True and body["temporaryPassword"]
    again = owner.get(f"/users/{body['id']}").json()
    assert "temporaryPassword" not in again


def test_the_header_or_the_default_organization_chooses_where_a_request_acts(api_url: str, mailbox) -> None:  # noqa: ANN001
    import re

    first, second = signup(api_url, org_name="First"), signup(api_url, org_name="Second")
    r = second.post("/org/invites", json={"email": first.email})
    assert r.status_code == 201, r.text
    body = mailbox.wait_for(first.email or "", subject_contains="invited you").get_payload(decode=True).decode()
    token = re.search(r"/invites/([A-Z0-9]{20})\b", body).group(1)  # type: ignore[union-attr]
    assert first.post(f"/invites/{token}/accept").status_code == 200
    no_header = Actor(api_url, first.token)
    assert no_header.get("/me").json()["organizationId"] == first.org_id  # the default: where they signed up
    assert no_header.as_org(second.org_id or "").get("/me").json()["organizationId"] == second.org_id
    assert no_header.patch("/me", json={"defaultOrganizationId": second.org_id}).status_code == 200
    assert no_header.get("/me").json()["organizationId"] == second.org_id
    assert {o["name"] for o in no_header.get("/me").json()["organizations"]} == {"First", "Second"}
    assert_error(no_header.as_org("NOSUCHORG").get("/me"), 404, "organization_not_found")
    assert_error(no_header.as_org("bad id!").get("/me"), 400)


def test_without_a_default_organization_a_user_in_several_must_choose(api_url: str, mailbox) -> None:  # noqa: ANN001
    import re

    home, second, third = (signup(api_url, org_name=name) for name in ("Home", "Second", "Third"))
    user = make_user(home)

    def join(owner: Actor, org_name: str) -> str:
        assert owner.post("/org/invites", json={"email": user.email}).status_code == 201
        mail = mailbox.wait_for(user.email or "", subject_contains=f"invited you to {org_name}")
        body = mail.get_payload(decode=True).decode()
        token = re.search(r"/invites/([A-Z0-9]{20})\b", body).group(1)  # type: ignore[union-attr]
        r = user.post(f"/invites/{token}/accept")
        assert r.status_code == 200, r.text
        return str(r.json()["memberId"])

    join(second, "Second")
    in_third = join(third, "Third")
    no_header = Actor(api_url, user.token)
    assert no_header.get("/me").json()["organizationId"] == home.org_id  # still the default
    # Removed from the default organization: with two left, the request must name one.
    assert home.delete(f"/org/members/{user.member_id}").status_code == 200
    assert_error(no_header.get("/me"), 400, "organization_required")
    assert no_header.as_org(second.org_id or "").get("/me").json()["organizationId"] == second.org_id
    assert_error(no_header.as_org(home.org_id or "").get("/me"), 404, "organization_not_found")
    # With one left, that one.
    assert third.delete(f"/org/members/{in_third}").status_code == 200
    assert no_header.get("/me").json()["organizationId"] == second.org_id
