"""Test actors: an httpx client per principal, and shortcuts to create accounts through the API."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from sailplane.kit.ids import new_id

PASSWORD = "correct-horse-battery-staple"
# httpx builds a TLS context (loading the CA bundle) for every Client, about 20 ms each: more than the
# loopback request itself. One context for all actors keeps a fresh connection per request, cheaply.
_TLS = httpx.create_ssl_context()


@dataclass
class Actor:
    """One caller: a user login or an API key, optionally pinned to an organization."""

    base_url: str
    token: str | None = None
    org_id: str | None = None
    user_id: str | None = None
    member_id: str | None = None
    email: str | None = None
    password: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        h = dict(self.extra_headers)
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if self.org_id:
            h["LakeSail-Organization-Id"] = self.org_id
        return h

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        with httpx.Client(base_url=self.base_url, timeout=60, verify=_TLS) as client:
            return client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def as_org(self, org_id: str) -> Actor:
        return Actor(self.base_url, self.token, org_id, self.user_id, None, self.email, self.password,
                     dict(self.extra_headers))


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{new_id().lower()}@example.com"


def signup(base_url: str, *, email: str | None = None, password: str = PASSWORD, name: str = "Test User",
           org_name: str | None = None) -> Actor:
    email = email or unique_email()
    anon = Actor(base_url)
    r = anon.post("/auth/signup", json={"email": email, "password": password, "displayName": name,
                                        "organizationName": org_name or f"Org {new_id()}"})
    assert r.status_code == 201, r.text
    body = r.json()
    return Actor(base_url, body["token"], body["organizationId"], body["userId"], body["memberId"], email, password)


def login(base_url: str, email: str, password: str, **headers: str) -> httpx.Response:
    return Actor(base_url, extra_headers=headers).post("/auth/login", json={"email": email, "password": password})


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Every failure has the one error shape; returns the error object."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"code", "message", "errorType", "details"} <= set(err), err
    assert {"retryable", "retryAfter", "fieldErrors", "requestId", "causedBy"} <= set(err["details"]), err
    assert err["details"]["requestId"] == response.headers["x-request-id"]
    if code is not None:
        assert err["code"] == code, err
    return err  # type: ignore[no-any-return]


def unknown_reference(response: httpx.Response, field: str, ref: str) -> dict[str, Any]:
    """A 422 naming `field` for a reference (ID or key) `ref`; returns the error without its request ID
    and with `ref` replaced by a placeholder, so an invisible reference can be compared with an unknown
    one: equal means the answer does not reveal that the invisible one exists."""
    err = assert_error(response, 422, "validation_failed")
    assert list(err["details"]["fieldErrors"]) == [field], err
    details = {k: v for k, v in err["details"].items() if k != "requestId"}
    text = json.dumps({**err, "details": details}).replace(ref, "<REF>")
    return json.loads(text)  # type: ignore[no-any-return]
