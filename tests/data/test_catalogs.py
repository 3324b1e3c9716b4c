"""Catalogs through HTTP: CRUD, sharing with teams, visibility, bad input, secrets at rest."""

from __future__ import annotations

import json

import sqlalchemy as sa

from sailplane.config import Settings
from tests.data.helpers import build_org, iceberg, make_catalog, make_query
from tests.support.actors import assert_error
from tests.support.world import create_service_account, create_team

CATALOG_FIELDS = {"id", "organizationId", "name", "description", "provider", "providerConfig", "configuredSecrets",
                  "status", "createdAt", "createdBy", "updatedAt", "updatedBy"}


def test_catalog_lifecycle(api_url: str) -> None:
    o = build_org(api_url)
    r = o.dev1.post("/data/catalogs", json=iceberg("prod", [o.team1], warehouse="s3://w") | {"description": "d"})
    assert r.status_code == 201, r.text
    c = r.json()
    assert set(c) == CATALOG_FIELDS
    assert c["provider"] == "iceberg_rest" and c["status"] == "active" and c["description"] == "d"
    assert c["providerConfig"] == {"uri": "https://catalog.example.com/", "warehouse": "s3://w"}
    assert c["configuredSecrets"] == ["bearerAccessToken"]
    assert c["createdBy"] == o.dev1.member_id

    d = o.dev1.get(f"/data/catalogs/{c['id']}").json()
    assert d["item"] == {"catalogId": c["id"], "teamIds": [o.team1]}
    assert d["included"]["catalogs"] == [c]
    assert [t["id"] for t in d["included"]["teams"]] == [o.team1]

    # update: rename, describe, merge provider config (secret kept when omitted, removed with null)
    u = o.dev1.patch(f"/data/catalogs/{c['id']}", json={"name": "prod2", "description": None,
                                                         "providerConfig": {"prefix": "v1"}})
    assert u.status_code == 200, u.text
    u = u.json()
    assert u["name"] == "prod2" and u["description"] is None
    assert u["providerConfig"] == {"uri": "https://catalog.example.com/", "warehouse": "s3://w", "prefix": "v1"}
    assert u["configuredSecrets"] == ["bearerAccessToken"]
    u = o.dev1.patch(f"/data/catalogs/{c['id']}", json={"providerConfig": {"bearerAccessToken": None}}).json()
    assert u["configuredSecrets"] == []

    # teams
    links = o.owner.post(f"/data/catalogs/{c['id']}/teams", json={"teamIds": [o.team2, o.team1]})
    assert links.status_code == 200, links.text
    assert {x["teamId"] for x in links.json()["items"]} == {o.team1, o.team2}
    assert set(links.json()["items"][0]) == {"catalogId", "teamId", "createdAt", "createdBy", "updatedAt", "updatedBy"}
    teams = o.owner.get(f"/data/catalogs/{c['id']}/teams").json()
    assert teams["total"] == 2 and {i["team"]["id"] for i in teams["items"]} == {o.team1, o.team2}
    assert all(i["memberCount"] >= 1 for i in teams["items"])
    limited = o.owner.get(f"/data/catalogs/{c['id']}/teams", params={"limit": 1}).json()
    assert limited["total"] == 2 and len(limited["items"]) == 1
    assert [i["team"]["id"] for i in o.dev1.get(f"/data/catalogs/{c['id']}/teams").json()["items"]] == [o.team1]
    assert o.dev2.get(f"/data/catalogs/{c['id']}").status_code == 200  # now shared with team 2
    assert o.dev1.delete(f"/data/catalogs/{c['id']}/teams/{o.team2}").status_code == 200
    assert_error(o.dev2.get(f"/data/catalogs/{c['id']}"), 404)
    assert_error(o.dev1.delete(f"/data/catalogs/{c['id']}/teams/{o.team2}"), 404)  # not linked
    assert_error(o.dev1.delete(f"/data/catalogs/{c['id']}/teams/{o.team1}"), 409, "last_team")

    # team listing and queries using the catalog
    listed = o.dev1.get(f"/data/teams/{o.team1}/catalogs").json()
    assert [i["catalogId"] for i in listed["items"]] == [c["id"]] and listed["total"] == 1
    q = make_query(o.dev1, "uses-prod", [o.team1], catalogId=c["id"], schema="sales")
    cq = o.dev1.get(f"/data/catalogs/{c['id']}/queries").json()
    assert cq["total"] == 1 and cq["items"] == [{"queryId": q["id"], "catalogId": c["id"], "teamIds": [o.team1]}]
    assert cq["included"]["catalogs"][0]["id"] == c["id"]

    # delete: the query stays, without a catalog
    assert o.dev1.delete(f"/data/catalogs/{c['id']}").json() == {
        "message": "The requested operation was done successfully."}
    assert_error(o.dev1.get(f"/data/catalogs/{c['id']}"), 404)
    assert o.dev1.get(f"/workloads/queries/{q['id']}").json()["included"]["queries"][0]["catalogId"] is None

    actions = [e["action"] for e in o.owner.get("/org/audit-events", params={"resourceId": c["id"]}).json()["items"]]
    assert {"catalog.create", "catalog.update", "catalog.add_teams", "catalog.remove_team",
            "catalog.delete"} <= set(actions)


def test_visibility_and_permissions(api_url: str) -> None:
    o = build_org(api_url)
    c = make_catalog(o.dev1, "t1-cat", [o.team1])
    c2 = make_catalog(o.dev2, "t2-cat", [o.team2])
    path = f"/data/catalogs/{c['id']}"
    for actor in (o.owner, o.admin, o.dev1, o.viewer1):
        assert actor.get(path).status_code == 200
    for actor in (o.dev2, o.loner):
        assert_error(actor.get(path), 404)
        assert_error(actor.patch(path, json={"name": "x"}), 404)
        assert_error(actor.delete(path), 404)
        assert_error(actor.get(f"{path}/teams"), 404)
        assert_error(actor.get(f"{path}/queries"), 404)
    outsider_err = assert_error(o.outsider.get(path), 404)
    assert c["id"] not in json.dumps(outsider_err) and "t1-cat" not in json.dumps(outsider_err)
    assert_error(o.outsider.as_org(o.owner.org_id or "").get(path), 404)
    assert_error(o.outsider.delete(path), 404)
    # viewers see but cannot manage
    assert_error(o.viewer1.patch(path, json={"name": "x"}), 403)
    assert_error(o.viewer1.delete(path), 403)
    assert_error(o.viewer1.post(f"{path}/teams", json={"teamIds": [o.team1]}), 403)
    assert_error(o.viewer1.post("/data/catalogs", json=iceberg("v", [o.team1])), 403)
    # creating in a team the caller is not in: the team is unknown to them
    err = assert_error(o.dev1.post("/data/catalogs", json=iceberg("x", [o.team2])), 422)
    assert "teamIds" in err["details"]["fieldErrors"]
    assert_error(o.outsider.post("/data/catalogs", json=iceberg("x", [o.team1])), 422)
    # org admins manage everything and see everything
    assert o.admin.patch(path, json={"description": "by admin"}).status_code == 200
    names = {i["name"] for i in o.admin.get("/data/catalogs").json()["included"]["catalogs"]}
    assert names == {"t1-cat", "t2-cat"}
    assert o.admin.get(f"/data/teams/{o.team2}/catalogs").json()["total"] == 1
    # members see their teams' catalogs only
    assert [i["catalogId"] for i in o.dev1.get("/data/catalogs").json()["items"]] == [c["id"]]
    assert [i["catalogId"] for i in o.dev2.get("/me/catalogs").json()["items"]] == [c2["id"]]
    assert o.loner.get("/me/catalogs").json() == {"total": 0, "items": [], "included": {"catalogs": [], "teams": []}}
    assert o.outsider.get("/data/catalogs").json()["total"] == 0
    assert_error(o.dev2.get(f"/data/teams/{o.team1}/catalogs"), 404)
    assert_error(o.outsider.get(f"/data/teams/{o.team1}/catalogs"), 404)
    assert_error(o.dev1.post(f"{path}/teams", json={"teamIds": [o.team2]}), 422)  # team 2 unknown to dev1
    # anonymous
    anon = o.owner.__class__(o.owner.base_url)
    assert_error(anon.get("/data/catalogs"), 401)
    assert_error(anon.get("/me/catalogs"), 401)
    # service accounts: org-wide policy grants
    _, robot = create_service_account(o.owner, "cat-robot", ["CanViewCatalogs"])
    assert robot.get(path).status_code == 200
    assert_error(robot.delete(path), 403)
    _, nobody = create_service_account(o.owner, "cat-nobody", None)
    assert_error(nobody.get(path), 404)
    _, manager = create_service_account(o.owner, "cat-manager", ["CanViewCatalogs", "CanManageCatalogs"])
    assert manager.patch(path, json={"description": "robot"}).status_code == 200


def test_my_catalogs_paging_and_sorting(api_url: str) -> None:
    o = build_org(api_url)
    ids = {n: make_catalog(o.dev1, n, [o.team1])["id"] for n in ("bravo", "Alpha", "charlie")}
    o.dev1.patch(f"/data/catalogs/{ids['Alpha']}", json={"description": "touched last"})
    body = o.dev1.get("/me/catalogs").json()
    assert body["total"] == 3
    assert [i["catalogId"] for i in body["items"]] == [ids["Alpha"], ids["bravo"], ids["charlie"]]
    assert [c["id"] for c in body["included"]["catalogs"]] == [i["catalogId"] for i in body["items"]]
    assert [t["id"] for t in body["included"]["teams"]] == [o.team1]
    desc = o.dev1.get("/me/catalogs", params={"sortDirection": "desc"}).json()
    assert [i["catalogId"] for i in desc["items"]] == [ids["charlie"], ids["bravo"], ids["Alpha"]]
    by_update = o.dev1.get("/me/catalogs", params={"sortBy": "updatedAt", "sortDirection": "desc"}).json()
    assert by_update["items"][0]["catalogId"] == ids["Alpha"]
    page2 = o.dev1.get("/me/catalogs", params={"page": 2, "limit": 2}).json()
    assert page2["total"] == 3 and [i["catalogId"] for i in page2["items"]] == [ids["charlie"]]
    zero = o.dev1.get("/me/catalogs", params={"limit": 0}).json()
    assert zero["total"] == 3 and zero["items"] == []
    limited = o.dev1.get("/data/catalogs", params={"limit": 2}).json()
    assert limited["total"] == 3 and len(limited["items"]) == 2
    assert_error(o.dev1.get("/me/catalogs", params={"sortBy": "provider"}), 400, "invalid_sort_field")
    for params in ({"limit": 101}, {"limit": -1}, {"page": 0}, {"sortDirection": "up"}):
        assert_error(o.dev1.get("/me/catalogs", params=params), 400)
    assert_error(o.dev1.get("/data/catalogs", params={"limit": 1000}), 400)


def test_bad_input(api_url: str) -> None:
    o = build_org(api_url)
    c = make_catalog(o.dev1, "dup", [o.team1])
    assert_error(o.dev1.post("/data/catalogs", json=iceberg("dup", [o.team1])), 409, "catalog_name_taken")
    assert_error(o.dev1.post("/data/catalogs", json=iceberg("DUP", [o.team1])), 409)
    make_catalog(o.dev1, "other", [o.team1])
    assert_error(o.dev1.patch(f"/data/catalogs/{c['id']}", json={"name": "other"}), 409)
    # the same name in another organization is fine
    make_catalog(o.outsider, "dup", [create_team(o.outsider, 'own team')])
    cases = [
        (iceberg("a", [o.team1]) | {"colour": "red"}, "colour"),
        (iceberg("a", []), "teamIds"),
        ({k: v for k, v in iceberg("a", [o.team1]).items() if k != "providerConfig"}, "providerConfig"),
        (iceberg("a", [o.team1]) | {"provider": "hive"}, "provider"),
        (iceberg("a", [o.team1], uri="ftp:/nope"), "providerConfig.uri"),
        (iceberg("a", [o.team1], secret="x"), "providerConfig.secret"),
        (iceberg("", [o.team1]), "name"),
        (iceberg("a", ["bad id!"]), "teamIds.0"),
        (iceberg("a", ["ZZZZZZZZZZZZZZZZZZZZ"]), "teamIds"),
        ({"name": "g", "provider": "glue", "providerConfig": {}, "teamIds": [o.team1]}, "providerConfig.region"),
        ({"name": "l", "provider": "local", "providerConfig": {"warehouseDir": "rel"}, "teamIds": [o.team1]},
         "providerConfig.warehouseDir"),
    ]
    for body, field in cases:
        err = assert_error(o.dev1.post("/data/catalogs", json=body), 422)
        assert field in err["details"]["fieldErrors"], (field, err)
    err = assert_error(o.dev1.patch(f"/data/catalogs/{c['id']}", json={"provider": "glue"}), 422)
    assert "provider" in err["details"]["fieldErrors"]
    err = assert_error(o.dev1.patch(f"/data/catalogs/{c['id']}", json={"providerConfig": {"uri": None}}), 422)
    assert "providerConfig.uri" in err["details"]["fieldErrors"]
    assert_error(o.dev1.patch(f"/data/catalogs/{c['id']}", json={"name": None}), 422)
    assert_error(o.dev1.post(f"/data/catalogs/{c['id']}/teams", json={"teamIds": []}), 422)
    assert_error(o.dev1.get("/data/catalogs/not-an-id"), 400)
    assert_error(o.dev1.get("/data/catalogs/ZZZZZZZZZZZZZZZZZZZZ"), 404)
    assert_error(o.dev1.delete(f"/data/catalogs/{c['id']}/teams/bad-id"), 400)
    assert_error(o.dev1.get("/data/teams/bad-id/catalogs"), 400)
    assert_error(o.dev1.post("/data/catalogs", content=b"{nope", headers={"content-type": "application/json"}), 400)
    # nothing half-written: the failed creations left no catalog behind
    assert {i["name"] for i in o.owner.get("/data/catalogs").json()["included"]["catalogs"]} == {"dup", "other"}


def test_secrets_never_returned_nor_stored_in_clear(api_url: str, settings: Settings) -> None:
    o = build_org(api_url)
    secret = "tok-SECRET-1"
    c = make_catalog(o.dev1, "secretive", [o.team1])
    other = o.dev1.post("/data/catalogs", json={
        "name": "uc", "provider": "unity", "teamIds": [o.team1],
        "providerConfig": {"uri": "https://uc.example.com", "token": "UNITY-SECRET-2"}}).json()
    o.dev1.patch(f"/data/catalogs/{other['id']}", json={"providerConfig": {"defaultCatalog": "main"}})
    responses = [
        o.dev1.get(f"/data/catalogs/{c['id']}").text, o.dev1.get("/data/catalogs").text,
        o.dev1.get("/me/catalogs").text, o.dev1.get(f"/data/teams/{o.team1}/catalogs").text,
        o.owner.get("/org/audit-events").text, json.dumps(c), json.dumps(other),
    ]
    for text in responses:
        assert secret not in text and "UNITY-SECRET-2" not in text
    engine = sa.create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM catalogs WHERE id IN (:a, :b)"),
                                {"a": c["id"], "b": other["id"]}).mappings().all()
            audit = conn.execute(sa.text("SELECT details FROM audit_events WHERE resource_id IN (:a, :b)"),
                                 {"a": c["id"], "b": other["id"]}).all()
    finally:
        engine.dispose()
    assert len(rows) == 2
    for row in rows:
        dumped = json.dumps({k: str(v) for k, v in row.items()})
        assert secret not in dumped and "UNITY-SECRET-2" not in dumped
        assert row["secret_config"]
    assert audit and all(secret not in str(a) and "UNITY-SECRET-2" not in str(a) for a in audit)
