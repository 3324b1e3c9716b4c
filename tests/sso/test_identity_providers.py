"""Identity provider types and identity providers through HTTP, tested against a real OpenID provider."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from sailplane.config import Settings
from tests.service_accounts.helpers import engine, make_user
from tests.support.actors import Actor, assert_error, signup

SECRET = "super-secret-client-value-123"


def create(owner: Actor, issuer: str, **extra: object) -> dict[str, object]:
    body = {"name": "Corporate SSO", "providerType": "keycloak", "issuer": issuer, "clientId": "static-client",
            "clientSecret": SECRET, **extra}
    r = owner.post("/auth/idps", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_types_catalog_lists_enabled_visible_types_in_order(api_url: str) -> None:
    owner = signup(api_url)
    r = owner.get("/auth/identity-provider-types")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [t["id"] for t in items] == ["okta", "entra-id", "google-workspace", "auth0", "keycloak", "oidc"]
    keycloak = items[4]
    assert keycloak["capabilities"]["dcr"]["supported"] is True
    assert keycloak["capabilities"]["requiresClientSecret"] is False
    assert keycloak["metadata"]["issuerTemplate"] == "https://{host}/realms/{realm}"
    assert items[2]["metadata"]["defaultIssuer"] == "https://accounts.google.com"
    assert all(t["enabled"] and t["visible"] for t in items)
    assert [t["displayOrder"] for t in items] == sorted(t["displayOrder"] for t in items)
    assert_error(Actor(api_url).get("/auth/identity-provider-types"), 401)


def test_create_describe_update_rotate_delete_never_show_the_secret(api_url: str, oidc_issuer: str,
                                                                     settings: Settings) -> None:
    owner = signup(api_url)
    created = create(owner, oidc_issuer + "/", emailDomains=["Example.COM"])
    idp = created["id"]
    assert created["issuer"] == oidc_issuer and created["hasClientSecret"] is True
    assert created["scopes"] == ["openid", "email", "profile"] and created["emailDomains"] == ["example.com"]
    assert str(created["redirectUri"]).endswith("/api/v1/auth/sso/callback")
    assert SECRET not in str(created) and "clientSecret" not in created

    r = owner.get(f"/auth/idps/{idp}")
    assert r.status_code == 200 and SECRET not in r.text
    listed = owner.get("/auth/idps", params={"limit": 10})
    assert [i["id"] for i in listed.json()["items"]] == [idp] and SECRET not in listed.text
    with engine(settings.database_url).connect() as conn:
        stored = conn.execute(text("SELECT client_secret_encrypted FROM identity_providers WHERE id = :i"),
                              {"i": idp}).scalar_one()
    assert stored and SECRET not in stored

    assert_error(owner.post("/auth/idps", json={"name": "Corporate SSO", "issuer": oidc_issuer, "clientId": "x"}),
                 409, "name_taken")
    r = owner.patch(f"/auth/idps/{idp}", json={"name": "Renamed", "scopes": ["openid", "email", "profile", "groups"],
                                               "status": "disabled"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Renamed" and r.json()["status"] == "disabled" and "groups" in r.json()["scopes"]

    r = owner.post(f"/auth/idps/{idp}/rotate-secret", json={"clientSecret": "another-secret-456"})
    assert r.status_code == 200 and r.json()["hasClientSecret"] is True and r.json()["secretRotatedAt"]
    assert "another-secret-456" not in r.text
    with engine(settings.database_url).connect() as conn:
        rotated = conn.execute(text("SELECT client_secret_encrypted FROM identity_providers WHERE id = :i"),
                               {"i": idp}).scalar_one()
    assert rotated != stored
    r = owner.post(f"/auth/idps/{idp}/rotate-secret", json={"clientSecret": None})
    assert r.status_code == 200 and r.json()["hasClientSecret"] is False

    assert owner.delete(f"/auth/idps/{idp}").status_code == 200
    assert_error(owner.get(f"/auth/idps/{idp}"), 404)
    actions = {e["action"] for e in owner.get("/org/audit-events", params={"resourceType": "identity_provider"})
               .json()["items"]}
    assert actions == {"identity_provider.create", "identity_provider.update", "identity_provider.rotate_secret",
                       "identity_provider.delete"}


def test_bad_input_is_rejected_and_nothing_is_created(api_url: str, oidc_issuer: str) -> None:
    owner = signup(api_url)
    base = {"name": "X", "issuer": oidc_issuer, "clientId": "c"}
    for bad in ({"issuer": "idp.example.com"}, {"issuer": "ftp://idp.example.com"},
                {"scopes": ["openid", "email"]}, {"providerType": "nonsense"}, {"emailDomains": ["not a domain"]},
                {"clientId": ""}, {"unknownField": 1}):
        r = owner.post("/auth/idps", json={**base, **bad})
        assert r.status_code == 422, (bad, r.text)
        assert_error(r, 422)
    assert owner.get("/auth/idps").json()["items"] == []


def test_only_identity_provider_managers_in_the_organization(api_url: str, oidc_issuer: str) -> None:
    owner = signup(api_url)
    idp = create(owner, oidc_issuer)["id"]
    member = make_user(owner)
    assert_error(member.get("/auth/idps"), 403)
    assert_error(member.post(f"/auth/idps/{idp}/test"), 403)
    outsider = signup(api_url)
    for method, path in (("GET", f"/auth/idps/{idp}"), ("PATCH", f"/auth/idps/{idp}"),
                         ("DELETE", f"/auth/idps/{idp}"), ("POST", f"/auth/idps/{idp}/test")):
        r = outsider.request(method, path, json={} if method in ("PATCH", "POST") else None)
        assert_error(r, 404)
        assert "Corporate SSO" not in r.text
    assert outsider.get("/auth/idps").json()["items"] == []
    assert_error(Actor(api_url).get("/auth/idps"), 401)


def test_connection_test_against_a_real_provider_and_failures(api_url: str, oidc_issuer: str) -> None:
    owner = signup(api_url)
    idp = create(owner, oidc_issuer)["id"]
    r = owner.post(f"/auth/idps/{idp}/test")
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["ok"] is True, result
    assert {c["name"] for c in result["checks"]} == {"discovery", "issuer", "endpoints", "authorization_code", "jwks"}
    assert result["keyCount"] >= 1 and result["registrationEndpoint"] == f"{oidc_issuer}/reg"
    assert owner.get(f"/auth/idps/{idp}").json()["lastTestOk"] is True

    # A server that is not an OpenID provider, and an issuer that does not match the document.
    not_oidc = create(owner, api_url.rsplit("/api/v1", 1)[0], name="Not OIDC")["id"]
    failed = owner.post(f"/auth/idps/{not_oidc}/test").json()
    assert failed["ok"] is False and failed["checks"][0] == {
        "name": "discovery", "ok": False, "message": failed["checks"][0]["message"]}
    assert "HTTP 404" in failed["checks"][0]["message"]
    wrong_issuer = create(owner, oidc_issuer + "/realms/other", name="Wrong issuer")["id"]
    result = owner.post(f"/auth/idps/{wrong_issuer}/test").json()
    assert result["ok"] is False
    unreachable = create(owner, "http://127.0.0.1:9", name="Unreachable")["id"]
    result = owner.post(f"/auth/idps/{unreachable}/test").json()
    assert result["ok"] is False and "could not reach" in result["checks"][0]["message"]
    outcomes = sorted(e["outcome"] for e in owner.get("/org/audit-events", params={
        "action": "identity_provider.test"}).json()["items"])
    assert outcomes == ["failure", "failure", "failure", "success"]


def test_auto_setup_registers_a_client_by_dcr(api_url: str, oidc_issuer: str, settings: Settings) -> None:
    owner = signup(api_url)
    r = owner.post("/auth/idps/auto-setup", json={"name": "Auto", "providerUrl": oidc_issuer,
                                                  "emailDomains": ["auto.example"]})
    assert r.status_code == 201, r.text
    idp = r.json()
    assert idp["autoConfigured"] is True and idp["hasClientSecret"] is True and idp["clientId"]
    assert idp["issuer"] == oidc_issuer and idp["emailDomains"] == ["auto.example"]
    with engine(settings.database_url).connect() as conn:
        stored = conn.execute(text("SELECT client_secret_encrypted FROM identity_providers WHERE id = :i"),
                              {"i": idp["id"]}).scalar_one()
    assert stored
    # The client really exists at the provider: its authorization endpoint accepts it and our redirect URI.
    authorize = httpx.get(f"{oidc_issuer}/auth", params={
        "client_id": idp["clientId"], "redirect_uri": idp["redirectUri"], "response_type": "code",
        "scope": "openid email profile", "state": "s", "nonce": "n"}, follow_redirects=False)
    assert authorize.status_code in (302, 303) and "/interaction/" in authorize.headers["location"], authorize.text
    bogus = httpx.get(f"{oidc_issuer}/auth", params={
        "client_id": "no-such-client", "redirect_uri": idp["redirectUri"], "response_type": "code",
        "scope": "openid"}, follow_redirects=False)
    assert bogus.status_code == 400
    tested = owner.post(f"/auth/idps/{idp['id']}/test").json()
    assert tested["ok"] is True
    events = owner.get("/org/audit-events", params={"action": "identity_provider.auto_setup"}).json()["items"]
    assert [(e["outcome"], e["resourceId"]) for e in events] == [("success", idp["id"])]


def test_auto_setup_failures_are_clear_audited_and_create_nothing(
    api_url: str, oidc_issuer_without_dcr: str, oidc_issuer_with_token_dcr: str
) -> None:
    owner = signup(api_url)
    no_scheme = owner.post("/auth/idps/auto-setup", json={"name": "A", "providerUrl": "idp.example.com"})
    err = assert_error(no_scheme, 422)
    assert "providerUrl" in err["details"]["fieldErrors"]
    not_oidc = owner.post("/auth/idps/auto-setup", json={"name": "A", "providerUrl": api_url})
    assert "not a usable OpenID provider" in assert_error(not_oidc, 422, "discovery_failed")["message"]
    no_dcr = owner.post("/auth/idps/auto-setup", json={"name": "A", "providerUrl": oidc_issuer_without_dcr})
    assert "no registration endpoint" in assert_error(no_dcr, 422, "dcr_not_supported")["message"]
    refused = owner.post("/auth/idps/auto-setup", json={"name": "A", "providerUrl": oidc_issuer_with_token_dcr})
    assert "refused" in assert_error(refused, 422, "dcr_refused")["message"]
    assert owner.get("/auth/idps").json()["items"] == []
    events = owner.get("/org/audit-events", params={"action": "identity_provider.auto_setup"}).json()["items"]
    assert sorted(e["details"]["reason"] for e in events) == ["dcr_not_supported", "dcr_refused", "discovery_failed"]
    # With the provider's initial access token the registration goes through.
    ok = owner.post("/auth/idps/auto-setup", json={"name": "A", "providerUrl": oidc_issuer_with_token_dcr,
                                                   "initialAccessToken": "iat-secret"})
    assert ok.status_code == 201, ok.text
