"""Hostile and odd input (issue 12, item 2): every such request is refused in the one error shape, with
nothing stored, and never answered with a 500."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sailplane.config import load_settings
from sailplane.kit.input import FREE_JSON_DEPTH, MAX_JSON_DEPTH, MAX_PAGE
from tests.jobs.helpers import make_job, sql_job, unique_key
from tests.support.actors import Actor, assert_error, signup, unique_email
from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def owner(api_url: str) -> Actor:
    return signup(api_url)


@pytest.fixture(scope="module")
def team(owner: Actor) -> dict[str, Any]:
    r = owner.post("/org/teams", json={"name": "hostile-input"})
    assert r.status_code == 201, r.text
    return r.json()["team"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def job(owner: Actor, team: dict[str, Any]) -> dict[str, Any]:
    return make_job(owner, sql_job(unique_key(), [team["id"]]))


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep: {"a": {"a": ... {}}} has `depth` objects."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# --- JSON depth and size ----------------------------------------------------------------------------

def test_deeply_nested_preferences_are_refused_and_nothing_is_stored(owner: Actor) -> None:
    before = owner.get("/me").json()["preferences"]
    for depth in (300, MAX_JSON_DEPTH + 1, FREE_JSON_DEPTH + 1):
        err = assert_error(owner.patch("/me", json={"preferences": nested(depth), "displayName": "Changed"}), 422)
        assert list(err["details"]["fieldErrors"]) == ["preferences"], err
    me = owner.get("/me")
    assert me.status_code == 200, me.text
    assert me.json()["preferences"] == before
    assert me.json()["user"]["displayName"] != "Changed"

    ok = owner.patch("/me", json={"preferences": nested(FREE_JSON_DEPTH)})
    assert ok.status_code == 200, ok.text
    assert owner.get("/me").json()["preferences"] == nested(FREE_JSON_DEPTH)


def test_a_body_nested_beyond_the_parser_is_a_422_not_a_500(owner: Actor) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 5000, 100_000):
        raw = b'{"preferences":' + b"[" * depth + b"]" * depth + b"}"
        assert_error(owner.patch("/me", content=raw, headers={"Content-Type": "application/json"}), 422)


def test_free_form_fields_are_bounded_in_size(owner: Actor, team: dict[str, Any]) -> None:
    big = {f"k{i}": "x" * 1000 for i in range(70)}  # ~70 KB, over the 64 KiB of one free-form field
    assert_error(owner.patch("/me", json={"preferences": big}), 422)
    r = owner.post("/data/catalogs", json={"name": "big", "provider": "local", "teamIds": [team["id"]],
                                            "providerConfig": {"warehouseDir": "x", "extra": big}})
    err = assert_error(r, 422)
    assert "providerConfig" in err["details"]["fieldErrors"], err


def test_a_deeply_nested_member_filter_is_a_400(owner: Actor) -> None:
    nested_filter = '{"a":' + "[" * 995 + "]" * 995 + "}"
    err = assert_error(owner.get("/org/members", params={"filter": nested_filter}), 400)
    assert list(err["details"]["fieldErrors"]) == ["filter"], err


def test_non_standard_json_is_a_400(owner: Actor) -> None:
    for raw in (b'{"preferences": {"x": NaN}}', b'{"preferences": {"x": Infinity}}', b'{"displayName": "\xff"}',
                b'{"preferences": {"x": ' + b"9" * 5000 + b"}}", b'{"displayName": '):
        assert_error(owner.patch("/me", content=raw, headers={"Content-Type": "application/json"}), 400,
                     "malformed_json")


def test_command_line_arguments_are_bounded_in_all(owner: Actor, team: dict[str, Any]) -> None:
    body = sql_job(unique_key(), [team["id"]])
    body["config"] = {"python": {"source": "print(1)", "parameters": [["a" * 4096] * 40]}}
    assert_error(owner.post("/workloads/jobs", json=body), 422)


# --- paging bounds ----------------------------------------------------------------------------------

def test_page_and_offset_have_a_maximum(owner: Actor, team: dict[str, Any], job: dict[str, Any]) -> None:
    paths = ["/org/teams", "/org/members", f"/org/teams/{team['id']}/members", "/me/catalogs", "/me/queries",
             "/me/jobs", f"/workloads/jobs/{job['id']}/versions", "/org/roles", "/org/team-roles", "/me/clusters"]
    for path in paths:
        for page in (100000000000000000, 21_474_838, MAX_PAGE + 1):
            err = assert_error(owner.get(path, params={"page": page}), 400)
            assert list(err["details"]["fieldErrors"]) == ["page"], (path, err)
        last = owner.get(path, params={"page": MAX_PAGE})
        assert last.status_code == 200, (path, last.text)
    run = owner.post(f"/workloads/jobs/{job['id']}/runs", json={"hold": True})
    assert run.status_code in (200, 201), run.text
    logs = f"/workloads/jobs/{job['id']}/runs/{run.json()['id']}/logs"
    assert_error(owner.get(logs, params={"offset": 9223372036854775807}), 400)
    far = owner.get(logs, params={"offset": 2**53 - 1})
    assert far.status_code == 200 and far.text == "", far.text


# --- NUL characters ---------------------------------------------------------------------------------

def test_nul_characters_are_refused_everywhere_and_nothing_is_stored(api_url: str, owner: Actor,
                                                                     team: dict[str, Any]) -> None:
    nul = "a\u0000b"
    cases = [
        ("POST", "/org/teams", {"name": nul}, "name"),
        ("POST", "/workloads/queries", {"name": nul, "sql": "SELECT 1", "teamIds": [team["id"]]}, "name"),
        ("POST", "/workloads/queries", {"name": "q", "sql": f"SELECT '{nul}'", "teamIds": [team["id"]]}, "sql"),
        ("POST", "/org/service-accounts", {"name": nul}, "name"),
        ("POST", "/workloads/jobs", sql_job(nul, [team["id"]]), "jobKey"),
        ("POST", "/workloads/jobs", sql_job(unique_key(), [team["id"]], description=nul), "description"),
        ("PATCH", "/me", {"displayName": nul}, "displayName"),
        ("PATCH", "/me", {"preferences": {"theme": nul}}, "preferences.theme"),
        ("PATCH", "/me", {"preferences": {nul: 1}}, "preferences"),
        ("POST", "/workloads/compute-configs",
         {"name": "c", "teamId": team["id"], "config": {"sail": {"extraEnv": {"A": nul}}}}, "config.sail.extraEnv.A"),
    ]
    for method, path, body, field in cases:
        err = assert_error(owner.request(method, path, json=body), 422, "validation_failed")
        assert list(err["details"]["fieldErrors"]) == [field], (path, err)
    email = unique_email()
    err = assert_error(Actor(api_url).post("/auth/signup", json={
        "email": email, "password": "pass-word-1234", "displayName": nul, "organizationName": "Org"}), 422)
    assert list(err["details"]["fieldErrors"]) == ["displayName"], err
    assert Actor(api_url).post("/auth/login", json={"email": email, "password": "pass-word-1234"}).status_code == 401

    names = [t["team"]["name"] for t in owner.get("/org/teams").json()["items"]]
    assert all("\x00" not in n for n in names)
    assert owner.get("/org/service-accounts").json()["items"] == []
    assert owner.get("/me/queries").json()["total"] == 0

    for params in ({"search": nul}, {"sortBy": nul}):
        err = assert_error(owner.get("/org/roles", params=params), 422, "validation_failed")
        assert err["details"]["fieldErrors"] == {"query": "must not contain NUL characters"}
    assert_error(owner.get("/org/teams/A%00B"), 422, "validation_failed")


def test_nul_in_a_header_is_refused(server: LiveServer, owner: Actor) -> None:
    """HTTP parsers may refuse it first (400); whatever answers, it is never a 500 and never reaches a handler."""
    request = (f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {owner.token}\r\n"
               f"LakeSail-Organization-Id: A\x00B\r\nConnection: close\r\n\r\n").encode()
    status = _raw_status(server, request)
    assert status in (400, 422), status


# --- strict integers and booleans -------------------------------------------------------------------

def test_integer_and_boolean_fields_take_only_integers_and_booleans(owner: Actor) -> None:
    for value in (False, True, "3600", 3600.0, "", [3600]):
        err = assert_error(owner.post("/workloads/sessions/ABC/token", json={"durationSeconds": value}), 422)
        assert list(err["details"]["fieldErrors"]) == ["durationSeconds"], err
    for value in (1, 0, "true", "false", "yes"):
        err = assert_error(owner.patch("/org", json={"requireMfa": value}), 422)
        assert list(err["details"]["fieldErrors"]) == ["requireMfa"], err
    sa = owner.post("/org/service-accounts", json={"name": "strict"}).json()
    for value in ("3600", 3600.5, True, 2**63):
        r = owner.post(f"/org/service-accounts/{sa['id']}/api-keys", json={"name": "k", "expiresInSeconds": value})
        assert_error(r, 422)
    assert owner.get(f"/org/service-accounts/{sa['id']}/api-keys").json()["items"] == []


def test_a_session_token_duration_below_its_minimum_is_refused_not_defaulted(owner: Actor) -> None:
    """0 was falsy, so it silently meant the 8 h default; the body is checked before the session is looked up."""
    for value in (0, 59, -1):
        err = assert_error(owner.post("/workloads/sessions/ABC/token", json={"durationSeconds": value}), 422)
        assert list(err["details"]["fieldErrors"]) == ["durationSeconds"], err


# --- request size -----------------------------------------------------------------------------------

def _raw_status(server: LiveServer, request: bytes, then: Iterator[bytes] = iter(())) -> int:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        for chunk in then:
            try:
                sock.sendall(chunk)
            except OSError:
                break
        data = b""
        while b"\r\n" not in data:
            more = sock.recv(4096)
            if not more:
                break
            data += more
    return int(data.split(b" ", 2)[1])


def test_a_declared_oversized_body_is_refused_before_it_is_sent(server: LiveServer, owner: Actor) -> None:
    request = (f"PATCH /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {owner.token}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {5 * 1024**3}\r\n\r\n").encode()
    started = time.monotonic()
    assert _raw_status(server, request) == 413
    assert time.monotonic() - started < 5


def test_oversized_bodies_are_413_in_the_error_shape(owner: Actor, server: LiveServer) -> None:
    limit = server.settings.max_request_bytes
    big = json.dumps({"preferences": {"x": "y" * limit}}).encode()
    err = assert_error(owner.patch("/me", content=big, headers={"Content-Type": "application/json"}), 413,
                       "request_too_large")
    assert str(limit) in err["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"preferences": {"x": "'
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536
        yield b'"}}'

    assert_error(owner.patch("/me", content=chunks(), headers={"Content-Type": "application/json"}), 413,
                 "request_too_large")
    assert owner.get("/me").json()["preferences"].get("x") is None


def test_the_request_size_limit_is_configurable(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("SAILPLANE_DATA_DIR", str(tmp_path))
    assert load_settings().max_request_bytes == 2 * 1024 * 1024
    monkeypatch.setenv("SAILPLANE_MAX_REQUEST_BYTES", "1000")
    assert load_settings().max_request_bytes == 1000
    monkeypatch.setenv("SAILPLANE_MAX_REQUEST_BYTES", "0")
    with pytest.raises(ValueError, match="SAILPLANE_MAX_REQUEST_BYTES"):
        load_settings()


# --- headers that the status calls for --------------------------------------------------------------

def test_405_names_the_allowed_methods(api_url: str, owner: Actor) -> None:
    r = owner.request("PUT", "/me")
    assert_error(r, 405, "method_not_allowed")
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "PATCH"}


def test_a_literal_path_is_not_taken_for_an_id(owner: Actor) -> None:
    """PATCH /auth/idps/auto-setup is a method auto-setup does not serve, not an update of a provider called
    "auto-setup"; a malformed provider ID is still a 400."""
    r = owner.patch("/auth/idps/auto-setup", json={"name": "x"})
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "POST"
    assert_error(owner.get("/auth/idps/not-an-id"), 400)


def test_401_carries_a_bearer_challenge(api_url: str) -> None:
    r = httpx.get(f"{api_url}/me")
    assert_error(r, 401)
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="sailplane"'
    r = httpx.get(f"{api_url}/me", headers={"Authorization": "Bearer not-a-token"})
    assert_error(r, 401)
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="sailplane", error="invalid_token"')
    r = httpx.post(f"{api_url}/auth/login", json={"email": unique_email(), "password": "wrong-password"})
    assert_error(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
