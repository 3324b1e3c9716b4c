"""Service accounts and API keys, through HTTP: CRUD, keys as bearer tokens, revocation, expiry,
organization isolation, and secrets never returned or stored in clear."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import String, Text, inspect, select, text

from sailplane.config import Settings
from tests.service_accounts.helpers import engine, key_actor, make_api_key, make_service_account, make_user
from tests.support.actors import Actor, assert_error, signup


def test_service_account_crud(api_url: str) -> None:
    owner = signup(api_url)
    created = make_service_account(owner, "ci-bot")
    assert created["name"] == "ci-bot" and created["description"] == "Runs the nightly jobs"
    assert created["organizationId"] == owner.org_id
    assert created["createdBy"] == owner.member_id and created["updatedBy"] == owner.member_id
    assert created["createdAt"].endswith("Z")
    sa = created["id"]

    assert_error(owner.post("/org/service-accounts", json={"name": "ci-bot"}), 409, "service_account_exists")
    other = make_service_account(owner, "etl")

    listed = owner.get("/org/service-accounts").json()
    assert [a["id"] for a in listed["items"]] == [sa, other["id"]] and listed["marker"] is None
    assert owner.get(f"/org/service-accounts/{sa}").json() == created

    r = owner.patch(f"/org/service-accounts/{sa}", json={"name": "ci-robot", "description": None})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "ci-robot" and r.json()["description"] is None
    assert_error(owner.patch(f"/org/service-accounts/{sa}", json={"name": "etl"}), 409, "service_account_exists")
    assert owner.patch(f"/org/service-accounts/{sa}", json={"description": "kept"}).json()["name"] == "ci-robot"

    assert owner.delete(f"/org/service-accounts/{sa}").status_code == 200
    assert_error(owner.get(f"/org/service-accounts/{sa}"), 404)
    assert_error(owner.delete(f"/org/service-accounts/{sa}"), 404)
    assert [a["id"] for a in owner.get("/org/service-accounts").json()["items"]] == [other["id"]]
    # The name is free again once the account is gone.
    make_service_account(owner, "ci-robot")


def test_bad_input_is_rejected_with_the_error_shape(api_url: str) -> None:
    owner = signup(api_url)
    sa = make_service_account(owner)["id"]
    assert_error(owner.post("/org/service-accounts", json={"name": "x", "colour": "red"}), 422)
    assert_error(owner.post("/org/service-accounts", json={"name": ""}), 422)
    assert_error(owner.post("/org/service-accounts", json={}), 422)
    assert_error(owner.post("/org/service-accounts", json={"name": "x" * 256}), 422)
    assert_error(owner.post("/org/service-accounts", content=b"{not json",
                            headers={"Content-Type": "application/json"}), 400, "malformed_json")
    assert_error(owner.patch(f"/org/service-accounts/{sa}", json={"name": None}), 422)
    assert_error(owner.patch(f"/org/service-accounts/{sa}", json={"owner": "me"}), 422)
    assert_error(owner.get("/org/service-accounts/not-an-id"), 400)
    assert_error(owner.get("/org/service-accounts/ABCDEFGHJKMNPQRSTVWXYZ"), 400)
    assert_error(owner.get("/org/service-accounts/UNKNOWN1"), 404)
    assert_error(owner.get("/org/service-accounts", params={"limit": 101}), 400)
    assert_error(owner.get("/org/service-accounts", params={"marker": "bad marker"}), 400)
    assert_error(owner.get(f"/org/service-accounts/{sa}/api-keys", params={"limit": 101}), 400)
    keys = f"/org/service-accounts/{sa}/api-keys"
    assert_error(owner.post(keys, json={}), 422)
    assert_error(owner.post(keys, json={"name": "k", "secret": "spk_mine"}), 422)
    assert_error(owner.post(keys, json={"name": "k", "expiresInSeconds": 0}), 422)
    assert_error(owner.post(keys, json={"name": "k", "expiresAt": "yesterday"}), 422)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    err = assert_error(owner.post(keys, json={"name": "k", "expiresAt": past}), 422)
    assert "expiresAt" in err["details"]["fieldErrors"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert_error(owner.post(keys, json={"name": "k", "expiresAt": future, "expiresInSeconds": 60}), 422)
    assert_error(owner.delete(f"{keys}/bad-id"), 400)
    assert_error(owner.delete(f"{keys}/UNKNOWN1"), 404)
    assert owner.get(keys).json()["items"] == []


def test_list_pages_with_a_marker(api_url: str) -> None:
    owner = signup(api_url)
    ids = [make_service_account(owner, f"bot-{i}")["id"] for i in range(3)]
    first = owner.get("/org/service-accounts", params={"limit": 2}).json()
    assert [a["id"] for a in first["items"]] == ids[:2] and first["marker"] == ids[1]
    second = owner.get("/org/service-accounts", params={"limit": 2, "marker": first["marker"]}).json()
    assert [a["id"] for a in second["items"]] == ids[2:] and second["marker"] is None
    keys = [make_api_key(owner, ids[0])["id"] for _ in range(3)]
    page = owner.get(f"/org/service-accounts/{ids[0]}/api-keys", params={"limit": 1}).json()
    assert [k["id"] for k in page["items"]] == keys[:1] and page["marker"] == keys[0]
    rest = owner.get(f"/org/service-accounts/{ids[0]}/api-keys", params={"marker": page["marker"]}).json()
    assert [k["id"] for k in rest["items"]] == keys[1:]


def test_only_holders_of_the_permission_manage_service_accounts(api_url: str) -> None:
    owner = signup(api_url)
    sa = make_service_account(owner)["id"]
    member = make_user(owner)
    admin = make_user(owner, "ADMIN")
    assert_error(member.get("/org/service-accounts"), 403)
    assert_error(member.post("/org/service-accounts", json={"name": "mine"}), 403)
    assert_error(member.get(f"/org/service-accounts/{sa}"), 403)
    assert_error(member.post(f"/org/service-accounts/{sa}/api-keys", json={"name": "k"}), 403)
    assert_error(Actor(api_url).get("/org/service-accounts"), 401)
    assert admin.get(f"/org/service-accounts/{sa}").status_code == 200
    # A policy can grant the permission to a plain member.
    assert owner.put(f"/org/policies/{member.user_id}", json={"permissions": ["CanManageServiceAccounts"]}
                     ).status_code == 200
    assert member.get("/org/service-accounts").status_code == 200


def test_another_organization_gets_404_for_everything(api_url: str) -> None:
    owner, stranger = signup(api_url), signup(api_url)
    sa = make_service_account(owner)["id"]
    key = make_api_key(owner, sa)["id"]
    base = f"/org/service-accounts/{sa}"
    for response in (
        stranger.get(base),
        stranger.patch(base, json={"name": "mine"}),
        stranger.delete(base),
        stranger.get(f"{base}/api-keys"),
        stranger.post(f"{base}/api-keys", json={"name": "steal"}),
        stranger.delete(f"{base}/api-keys/{key}"),
    ):
        err = assert_error(response, 404)
        assert sa not in err["message"]
    assert stranger.get("/org/service-accounts").json()["items"] == []
    # A key is addressed through its own account: another account's path does not reach it.
    other_sa = make_service_account(owner, "other")["id"]
    assert_error(owner.delete(f"/org/service-accounts/{other_sa}/api-keys/{key}"), 404)
    assert owner.get(f"{base}/api-keys").json()["items"][0]["status"] == "active"


def test_api_key_is_a_bearer_token_with_the_accounts_policy(api_url: str) -> None:
    owner, elsewhere = signup(api_url), signup(api_url)
    sa = make_service_account(owner)["id"]
    created = make_api_key(owner, sa)
    secret = created["secret"]
    assert secret.startswith("spk_") and len(secret) > 40
    assert created["prefix"] == secret[:12] and created["status"] == "active"
    assert created["expiresAt"] is None and created["lastUsedAt"] is None
    assert created["serviceAccountId"] == sa and created["createdBy"] == owner.member_id
    bot = key_actor(owner, secret)

    assert_error(bot.get("/org/policies"), 403)
    r = owner.put(f"/org/policies/{sa}", json={"permissions": ["CanManagePolicies"]})
    assert r.status_code == 200 and r.json()["principal"] == {"type": "service_account", "id": sa}
    assert bot.get("/org/policies").status_code == 200
    assert key_actor(owner, secret, org_header=True).get("/org/policies").status_code == 200
    # The key acts only in its own organization.
    assert_error(bot.as_org(elsewhere.org_id or "").get("/org/policies"), 404)
    assert_error(bot.get("/org/service-accounts"), 403)
    # Records it creates name the service account as their author.
    bot_made = bot.put(f"/org/policies/{owner.user_id}", json={"permissions": ["CanViewAuditLog"]}).json()
    assert bot_made["createdBy"] == sa

    listed = owner.get(f"/org/service-accounts/{sa}/api-keys").json()["items"]
    assert listed[0]["lastUsedAt"] is not None
    assert owner.delete(f"/org/policies/{sa}").status_code == 200
    assert_error(bot.get("/org/policies"), 403)


def test_revoked_and_expired_keys_fail_at_once(api_url: str) -> None:
    owner = signup(api_url)
    sa = make_service_account(owner)["id"]
    owner.put(f"/org/policies/{sa}", json={"permissions": ["CanManagePolicies"]})
    keys = f"/org/service-accounts/{sa}/api-keys"

    revoked = make_api_key(owner, sa)
    bot = key_actor(owner, revoked["secret"])
    assert bot.get("/org/policies").status_code == 200
    assert owner.delete(f"{keys}/{revoked['id']}").status_code == 200
    assert_error(bot.get("/org/policies"), 401)
    assert_error(owner.delete(f"{keys}/{revoked['id']}"), 409, "api_key_revoked")

    short = make_api_key(owner, sa, expiresInSeconds=1)
    assert short["expiresAt"] is not None
    short_bot = key_actor(owner, short["secret"])
    assert short_bot.get("/org/policies").status_code == 200
    time.sleep(1.2)
    assert_error(short_bot.get("/org/policies"), 401)

    future = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    dated = make_api_key(owner, sa, expiresAt=future.isoformat().replace("+00:00", "Z"))
    assert dated["expiresAt"] == future.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert key_actor(owner, dated["secret"]).get("/org/policies").status_code == 200

    statuses = {k["id"]: k["status"] for k in owner.get(keys).json()["items"]}
    assert statuses == {revoked["id"]: "revoked", short["id"]: "expired", dated["id"]: "active"}
    assert_error(Actor(api_url, "spk_not-a-real-key").get("/org/policies"), 401)


def test_deleting_the_account_kills_its_keys_and_its_policy(api_url: str) -> None:
    owner = signup(api_url)
    sa = make_service_account(owner)["id"]
    key = make_api_key(owner, sa)
    owner.put(f"/org/policies/{sa}", json={"permissions": ["CanManagePolicies"]})
    bot = key_actor(owner, key["secret"])
    assert bot.get("/org/policies").status_code == 200
    assert owner.delete(f"/org/service-accounts/{sa}").status_code == 200
    assert_error(bot.get("/org/policies"), 401)
    assert all(p["principal"]["id"] != sa for p in owner.get("/org/policies").json()["items"])
    assert_error(owner.get(f"/org/policies/{sa}"), 404)


def test_the_secret_is_never_shown_again_nor_stored(api_url: str, settings: Settings) -> None:
    owner = signup(api_url)
    sa = make_service_account(owner)["id"]
    created = make_api_key(owner, sa)
    secret = created["secret"]
    key_actor(owner, secret).get("/org/policies")  # a use, so lastUsedAt is written too
    owner.delete(f"/org/service-accounts/{sa}/api-keys/{created['id']}")
    for path in ("/org/service-accounts", f"/org/service-accounts/{sa}", f"/org/service-accounts/{sa}/api-keys",
                 "/org/audit-events"):
        r = owner.get(path)
        assert r.status_code == 200 and secret not in r.text and "secret" not in r.json().get("items", [{}])[0]
    listed = owner.get(f"/org/service-accounts/{sa}/api-keys").json()["items"][0]
    assert set(listed) == set(created) - {"secret"}

    eng = engine(settings.database_url)
    columns = [c["name"] for c in inspect(eng).get_columns("api_keys")
               if isinstance(c["type"], String | Text)]
    assert {"token_hash", "prefix", "name"} <= set(columns)
    with eng.connect() as conn:
        rows = conn.execute(text(f"SELECT {', '.join(columns)} FROM api_keys WHERE id = :id"),
                            {"id": created["id"]}).all()
        assert len(rows) == 1
        for value in rows[0]:
            assert value is None or secret not in str(value)
        assert rows[0][columns.index("prefix")] == secret[:12]
        events = conn.execute(select(text("details")).select_from(text("audit_events"))
                              .where(text("organization_id = :org")), {"org": owner.org_id}).all()
        assert events and all(secret not in str(e[0]) for e in events)
