"""Sign-up, password sign-in, sign-out and throttling, through HTTP."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.support.actors import PASSWORD, Actor, assert_error, login, signup, unique_email
from tests.support.databases import fresh_database
from tests.support.server import ServerProcess


def test_signup_makes_the_first_user_owner_of_a_new_organization(api_url: str) -> None:
    owner = signup(api_url, name="Ada", org_name="Analytical Engines")
    me = owner.get("/me")
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["user"]["email"] == owner.email
    assert body["user"]["displayName"] == "Ada"
    assert body["organizationId"] == owner.org_id
    assert body["roleIds"] == ["OWNER"]
    assert [o["name"] for o in body["organizations"]] == ["Analytical Engines"]
    assert "passwordHash" not in me.text and PASSWORD not in me.text


def test_signup_with_a_taken_email_is_a_conflict(api_url: str) -> None:
    owner = signup(api_url)
    r = Actor(api_url).post("/auth/signup", json={"email": owner.email.upper(), "password": PASSWORD,
                                                 "displayName": "X", "organizationName": "Y"})
    assert_error(r, 409, "email_taken")


def test_login_returns_a_working_token_and_logout_revokes_it(api_url: str) -> None:
    owner = signup(api_url)
    r = login(api_url, owner.email, PASSWORD)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert r.json()["expiresAt"].endswith("Z")
    user = Actor(api_url, token)
    assert user.get("/me").status_code == 200
    assert user.post("/auth/logout").status_code == 200
    assert_error(user.get("/me"), 401, "unauthorized")


def test_wrong_password_and_unknown_email_get_the_same_answer(api_url: str) -> None:
    owner = signup(api_url)
    wrong = login(api_url, owner.email, "not-the-password", **{"X-Forwarded-For": "10.9.0.1"})
    unknown = login(api_url, unique_email(), "not-the-password", **{"X-Forwarded-For": "10.9.0.2"})
    e1, e2 = assert_error(wrong, 401), assert_error(unknown, 401)
    assert (e1["code"], e1["message"]) == (e2["code"], e2["message"])


def test_timing_does_not_reveal_whether_an_account_exists(tmp_path: Path, database_url: str) -> None:
    """Against `sailplane serve` as an operator runs it, hashing at production strength: the suite's own servers use
    argon2's test profile (tests/conftest.py), where a hash costs less than the request around it and this test could
    not fail."""
    server = ServerProcess(tmp_path / "node", fresh_database(database_url, tmp_path)).start()
    try:
        owner = signup(server.api)

        def timed(email: str, ip: str) -> float:
            start = time.perf_counter()
            login(server.api, email, "wrong-password-123", **{"X-Forwarded-For": ip})
            return time.perf_counter() - start

        known = sorted(timed(owner.email, f"10.8.0.{i}") for i in range(3))[1]
        unknown = sorted(timed(unique_email(), f"10.8.1.{i}") for i in range(3))[1]
        # Both verify an argon2 hash; a missing account must not answer in a fraction of the time.
        assert unknown > known * 0.5 and known > unknown * 0.5, (known, unknown)
    finally:
        server.stop()
    engine = create_engine(server.env["SAILPLANE_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT password_hash FROM users WHERE email = :e"), {"e": owner.email}).scalar()
    finally:
        engine.dispose()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # RFC 9106's low-memory parameters


def test_repeated_failures_lock_the_account_with_retry_after(api_url: str) -> None:
    owner = signup(api_url)
    for i in range(5):
        assert_error(login(api_url, owner.email, "bad-password!", **{"X-Forwarded-For": f"10.7.0.{i}"}), 401)
    locked = login(api_url, owner.email, PASSWORD, **{"X-Forwarded-For": "10.7.1.1"})
    err = assert_error(locked, 429, "too_many_attempts")
    assert int(locked.headers["Retry-After"]) > 0
    assert err["details"]["retryAfter"] == int(locked.headers["Retry-After"])
    # The same lock answers for an unknown account, so 429 does not reveal existence either.
    ghost = unique_email()
    for i in range(5):
        login(api_url, ghost, "bad-password!", **{"X-Forwarded-For": f"10.7.2.{i}"})
    assert_error(login(api_url, ghost, "bad-password!", **{"X-Forwarded-For": "10.7.3.1"}), 429)


def test_repeated_failures_from_one_ip_are_throttled(api_url: str) -> None:
    for _ in range(20):
        login(api_url, unique_email(), "bad-password!", **{"X-Forwarded-For": "10.6.6.6"})
    owner = signup(api_url)
    assert_error(login(api_url, owner.email, PASSWORD, **{"X-Forwarded-For": "10.6.6.6"}), 429)
    assert login(api_url, owner.email, PASSWORD, **{"X-Forwarded-For": "10.6.6.7"}).status_code == 200


def test_malformed_and_invalid_bodies_get_the_error_shape(api_url: str) -> None:
    anon = Actor(api_url)
    assert_error(anon.post("/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}),
                 400, "malformed_json")
    err = assert_error(anon.post("/auth/signup", json={"email": "nope", "password": PASSWORD,
                                                       "displayName": "x", "organizationName": "y"}), 422)
    assert "email" in err["details"]["fieldErrors"]
    err = assert_error(anon.post("/auth/signup", json={"email": unique_email(), "password": "short",
                                                       "displayName": "x", "organizationName": "y"}), 422)
    assert "password" in err["details"]["fieldErrors"]
    err = assert_error(anon.post("/auth/signup", json={"email": unique_email(), "password": PASSWORD,
                                                       "displayName": "x" * 300, "organizationName": "y"}), 422)
    assert "displayName" in err["details"]["fieldErrors"]


def test_bad_bearer_tokens_are_401(api_url: str) -> None:
    assert_error(Actor(api_url).get("/me"), 401)
    assert_error(Actor(api_url, "spl_forged").get("/me"), 401)
    assert_error(Actor(api_url).get("/me", headers={"Authorization": "Basic abc"}), 401)


def test_permission_catalog_lists_every_permission(api_url: str) -> None:
    owner = signup(api_url)
    r = owner.get("/auth/permissions")
    assert r.status_code == 200
    items = {p["relation"]: p for p in r.json()["items"]}
    assert "CanManageUsers" in items
    assert items["CanViewTeam"]["validObjectTypes"] == ["organization", "team"]
    assert items["CanManageOwners"]["systemOnly"] is True
