"""describeOrganization and updateOrganization through HTTP."""

from __future__ import annotations

from sailplane.config import Settings
from tests.org.helpers import assert_audited, make_member, make_team
from tests.support.actors import Actor, assert_error, signup


def test_describe_organization(api_url: str) -> None:
    owner = signup(api_url, org_name="Acme")
    make_member(owner)
    make_team(owner, "One")
    r = owner.get("/org")
    assert r.status_code == 200, r.text
    org = r.json()
    assert set(org) == {"id", "name", "description", "requireMfa", "memberCount", "teamCount", "createdAt",
                        "createdBy", "updatedAt", "updatedBy"}
    assert org["id"] == owner.org_id and org["name"] == "Acme" and org["description"] is None
    assert org["requireMfa"] is False and org["memberCount"] == 2 and org["teamCount"] == 1
    assert org["createdBy"] == owner.member_id and org["createdAt"].endswith("Z")
    # Any member may read it; nobody else.
    member = make_member(owner)
    assert member.get("/org").json()["id"] == owner.org_id
    assert_error(Actor(api_url).get("/org"), 401)
    stranger = signup(api_url)
    assert stranger.get("/org").json()["id"] == stranger.org_id
    assert_error(stranger.as_org(owner.org_id or "").get("/org"), 404, "organization_not_found")


def test_update_organization(api_url: str, settings: Settings) -> None:
    owner = signup(api_url, org_name="Acme")
    admin = make_member(owner, "ADMIN")
    r = owner.patch("/org", json={"name": "Acme Corp", "description": "We make things", "requireMfa": True})
    assert r.status_code == 200, r.text
    org = r.json()
    assert (org["name"], org["description"], org["requireMfa"]) == ("Acme Corp", "We make things", True)
    assert org["updatedBy"] == owner.member_id and org["updatedAt"] >= org["createdAt"]
    assert owner.get("/org").json() == org
    assert_audited(settings, owner, "organization.update", owner.org_id or "")
    # An Admin may too; null clears the description, other fields stay.
    r = admin.patch("/org", json={"description": None})
    assert r.status_code == 200 and r.json()["description"] is None and r.json()["name"] == "Acme Corp"
    assert r.json()["updatedBy"] == admin.member_id
    row = assert_audited(settings, admin, "organization.update", owner.org_id or "")
    assert row.details == {"fields": ["description"]}


def test_update_organization_rules(api_url: str) -> None:
    owner = signup(api_url, org_name="Acme")
    member = make_member(owner)
    auditor = make_member(owner, "AUDITOR")
    assert_error(member.patch("/org", json={"name": "Mine"}), 403, "forbidden")
    assert_error(auditor.patch("/org", json={"name": "Mine"}), 403)
    assert_error(Actor(api_url).patch("/org", json={"name": "Mine"}), 401)
    stranger = signup(api_url)
    assert_error(stranger.as_org(owner.org_id or "").patch("/org", json={"name": "Mine"}), 404)
    for body in ({"name": "x" * 256}, {"name": ""}, {"name": None}, {"requireMfa": "maybe"}, {"requireMfa": None},
                 {"description": "d" * 2001}, {"plan": "gold"}):
        err = assert_error(owner.patch("/org", json=body), 422)
        assert err["details"]["fieldErrors"], body
    assert owner.get("/org").json()["name"] == "Acme"
