"""The audit log, through HTTP: mutations appear with who/what/where, only to CanViewAuditLog
holders, only for their own organization, newest first, filtered and paged by marker."""

from __future__ import annotations

from tests.service_accounts.helpers import make_api_key, make_service_account, make_user
from tests.support.actors import Actor, assert_error, signup


def test_mutations_appear_with_actor_resource_and_origin(api_url: str) -> None:
    owner = signup(api_url)
    r = owner.post("/org/service-accounts", json={"name": "auditor-bot"}, headers={"X-Request-Id": "REQ1AUDIT"})
    sa = r.json()["id"]
    owner.put(f"/org/policies/{sa}", json={"permissions": ["CanViewAuditLog"]})
    key = make_api_key(owner, sa)

    events = owner.get("/org/audit-events").json()["items"]
    actions = [e["action"] for e in events]
    assert actions[:3] == ["api_key.create", "policy.set", "service_account.create"]
    created = events[2]
    assert set(created) == {"id", "organizationId", "actorType", "actorId", "action", "resourceType", "resourceId",
                            "outcome", "details", "ipAddress", "requestId", "createdAt"}
    assert created["organizationId"] == owner.org_id and created["actorType"] == "member"
    assert created["actorId"] == owner.member_id and created["resourceType"] == "service_account"
    assert created["resourceId"] == sa and created["outcome"] == "success"
    assert created["details"] == {"name": "auditor-bot"} and created["ipAddress"] == "127.0.0.1"
    assert created["requestId"] == r.headers["x-request-id"] == "REQ1AUDIT"
    assert created["createdAt"].endswith("Z")
    assert events[1]["details"]["permissions"] == ["CanViewAuditLog"]
    assert events[0]["resourceId"] == key["id"] and events[0]["details"]["serviceAccountId"] == sa

    # A service account's own actions name it as the actor.
    bot = Actor(api_url, key["secret"])
    assert bot.get("/org/audit-events").status_code == 200
    owner.put(f"/org/policies/{sa}", json={"permissions": ["CanViewAuditLog", "CanManagePolicies"]})
    bot.put(f"/org/policies/{owner.user_id}", json={"permissions": ["CanCreateTeams"]})
    latest = owner.get("/org/audit-events", params={"limit": 1}).json()["items"][0]
    assert (latest["actorType"], latest["actorId"], latest["action"]) == ("service_account", sa, "policy.set")


def test_only_audit_log_readers_may_list(api_url: str) -> None:
    owner = signup(api_url)
    member, auditor, admin = make_user(owner), make_user(owner, "AUDITOR"), make_user(owner, "ADMIN")
    assert_error(member.get("/org/audit-events"), 403)
    assert_error(Actor(api_url).get("/org/audit-events"), 401)
    assert auditor.get("/org/audit-events").status_code == 200
    assert admin.get("/org/audit-events").status_code == 200
    sa = make_service_account(owner)["id"]
    assert_error(Actor(api_url, make_api_key(owner, sa)["secret"]).get("/org/audit-events"), 403)


def test_each_organization_sees_only_its_own_events(api_url: str) -> None:
    a, b = signup(api_url), signup(api_url)
    make_service_account(a, "only-in-a")
    make_service_account(b, "only-in-b")
    for actor in (a, b):
        items = actor.get("/org/audit-events").json()["items"]
        assert items and {e["organizationId"] for e in items} == {actor.org_id}
    names = [e["details"].get("name") for e in b.get("/org/audit-events").json()["items"]]
    assert "only-in-b" in names and "only-in-a" not in names
    # Filters cannot reach across either.
    a_events = a.get("/org/audit-events", params={"actorId": a.member_id}).json()["items"]
    assert a_events
    assert b.get("/org/audit-events", params={"actorId": a.member_id}).json()["items"] == []
    assert b.get("/org/audit-events", params={"resourceId": a_events[0]["resourceId"]}).json()["items"] == []


def test_filters_and_marker_paging_newest_first(api_url: str) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    accounts = [make_service_account(owner, f"bot-{i}")["id"] for i in range(5)]
    created = owner.get("/org/audit-events", params={"action": "service_account.create"}).json()
    assert [e["resourceId"] for e in created["items"]] == list(reversed(accounts))

    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        params: dict[str, object] = {"resourceType": "service_account", "limit": 2}
        if marker:
            params["marker"] = marker
        page = owner.get("/org/audit-events", params=params).json()
        seen += [e["resourceId"] for e in page["items"]]
        pages += 1
        marker = page["marker"]
        if marker is None:
            break
    assert seen == list(reversed(accounts)) and pages == 3

    owner.put(f"/org/policies/{member.user_id}", json={"permissions": ["CanViewAuditLog"]})
    by_member = member.get("/org/audit-events", params={"resourceId": accounts[0]}).json()["items"]
    assert [e["action"] for e in by_member] == ["service_account.create"]
    mine = owner.get("/org/audit-events", params={"actorId": owner.member_id, "action": "policy.set"}).json()
    assert len(mine["items"]) == 1 and mine["items"][0]["details"]["principalId"] == member.user_id
    assert owner.get("/org/audit-events", params={"action": "nothing.happened"}).json()["items"] == []


def test_bad_query_parameters_are_400(api_url: str) -> None:
    owner = signup(api_url)
    for params in ({"limit": 101}, {"limit": -1}, {"limit": "many"}, {"marker": "not a marker"},
                   {"resourceId": "lower"}, {"actorId": "x" * 21}, {"action": "drop table;"},
                   {"resourceType": "a b"}):
        assert_error(owner.get("/org/audit-events", params=params), 400)
