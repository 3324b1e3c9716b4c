"""MFA test helpers: real TOTP codes from pyotp, chosen so each use is a fresh time step."""

from __future__ import annotations

import random
import time
from typing import Any

import pyotp

from tests.support.actors import Actor, login, signup


def fresh_ip() -> str:
    """Failures from a unique address, so the per-IP lock never reaches other tests."""
    return f"10.{random.randint(20, 250)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def safe_now() -> float:
    """A time well inside a 30 s step, so a code generated now is still valid when the server checks it."""
    while time.time() % 30 > 25:
        time.sleep(0.5)
    return time.time()


def code_at(secret: str, offset_steps: int) -> str:
    """The code of the step `offset_steps` away from now (the server accepts -1, 0 and +1)."""
    now = safe_now()
    return pyotp.TOTP(secret).at(now + 30 * offset_steps)


def enrolled_user(api_url: str, ip: str | None = None) -> tuple[Actor, str, list[str]]:
    """A fresh owner with a confirmed authenticator; the confirmation used the previous step's code."""
    actor = signup(api_url)
    if ip:
        actor.extra_headers["X-Forwarded-For"] = ip
    r = actor.post("/me/mfa/totp")
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    r = actor.post("/me/mfa/totp/verify", json={"code": code_at(secret, -1)})
    assert r.status_code == 200, r.text
    return actor, secret, r.json()["recoveryCodes"]


def password_login(actor: Actor, **body: Any) -> dict[str, Any]:
    headers = {"X-Forwarded-For": actor.extra_headers.get("X-Forwarded-For", fresh_ip())}
    r = Actor(actor.base_url, extra_headers=headers).post(
        "/auth/login", json={"email": actor.email, "password": actor.password, **body})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


__all__ = ["code_at", "enrolled_user", "fresh_ip", "login", "password_login", "safe_now"]
