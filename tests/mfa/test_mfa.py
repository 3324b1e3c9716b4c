"""MFA through HTTP with real TOTP codes: enrollment, the sign-in challenge, replay, recovery codes,
trusted devices, throttling, removal and the admin reset."""

from __future__ import annotations

import pyotp
from sqlalchemy import text

from sailplane.config import Settings
from tests.mfa.helpers import code_at, enrolled_user, fresh_ip, password_login
from tests.service_accounts.helpers import engine, make_user
from tests.support.actors import Actor, assert_error, signup


def complete(actor: Actor, challenge: str, ip: str | None = None, **body: object) -> object:
    return Actor(actor.base_url, extra_headers={"X-Forwarded-For": ip or fresh_ip()}).post(
        "/auth/login/mfa", json={"challengeToken": challenge, **body})


def test_enrollment_answers_secret_uri_qr_then_recovery_codes_once(api_url: str, settings: Settings) -> None:
    actor = signup(api_url)
    actor.extra_headers["X-Forwarded-For"] = fresh_ip()
    r = actor.get("/me/mfa")
    assert r.status_code == 200, r.text
    assert r.json() == {"enabled": False, "required": False, "factors": [], "recoveryCodesRemaining": 0}

    r = actor.post("/me/mfa/totp")
    assert r.status_code == 201, r.text
    body = r.json()
    secret = body["secret"]
    assert body["otpauthUri"].startswith("otpauth://totp/Sailplane:")
    assert f"secret={secret}" in body["otpauthUri"]
    assert body["qrCodeSvg"].lstrip().startswith("<svg") and "</svg>" in body["qrCodeSvg"]
    assert pyotp.parse_uri(body["otpauthUri"]).secret == secret

    pending = actor.get("/me/mfa").json()
    assert pending["enabled"] is False and pending["factors"][0]["status"] == "pending"
    assert secret not in actor.get("/me/mfa").text

    # A wrong first code does not confirm.
    wrong = str((int(pyotp.TOTP(secret).now()) + 1) % 1_000_000).zfill(6)
    assert_error(actor.post("/me/mfa/totp/verify", json={"code": wrong}), 400, "invalid_code")
    assert_error(actor.post("/me/mfa/totp/verify", json={"code": "12ab56"}), 422)

    r = actor.post("/me/mfa/totp/verify", json={"code": code_at(secret, 0)})
    assert r.status_code == 200, r.text
    codes = r.json()["recoveryCodes"]
    assert len(codes) == 10 and len(set(codes)) == 10

    status = actor.get("/me/mfa").json()
    assert status["enabled"] is True and status["recoveryCodesRemaining"] == 10
    assert status["factors"][0]["status"] == "active" and status["factors"][0]["confirmedAt"]
    # Confirmed: no second enrollment, no second confirmation, and nothing secret anywhere.
    assert_error(actor.post("/me/mfa/totp"), 409, "mfa_already_enrolled")
    assert_error(actor.post("/me/mfa/totp/verify", json={"code": code_at(secret, 1)}), 409)
    assert all(c not in actor.get("/me/mfa").text for c in codes)

    with engine(settings.database_url).connect() as conn:
        stored = conn.execute(text("SELECT secret_encrypted FROM mfa_totp_factors WHERE user_id = :u"),
                              {"u": actor.user_id}).scalar_one()
        hashes = [row[0] for row in conn.execute(text("SELECT code_hash FROM mfa_recovery_codes WHERE user_id = :u"),
                                                 {"u": actor.user_id})]
    assert secret not in stored and len(stored) > len(secret)
    assert len(hashes) == 10 and not set(hashes) & set(codes) and not any(c in h for c in codes for h in hashes)


def test_password_login_answers_challenge_and_code_completes_once(api_url: str) -> None:
    actor, secret, _codes = enrolled_user(api_url, fresh_ip())
    first = password_login(actor)
    assert first["mfaRequired"] is True and "token" not in first
    assert first["challengeToken"] and first["expiresAt"] and "totp" in first["methods"]

    code = code_at(secret, 0)
    r = complete(actor, first["challengeToken"], code=code)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    me = Actor(api_url, token).get("/me")
    assert me.status_code == 200 and me.json()["user"]["id"] == actor.user_id
    assert r.json()["trustedDeviceToken"] is None

    # The challenge is spent; the same code on a new challenge is a replay.
    assert_error(complete(actor, first["challengeToken"], code=code_at(secret, 1)), 401, "invalid_challenge")
    second = password_login(actor)
    assert_error(complete(actor, second["challengeToken"], code=code), 401, "invalid_code")
    # An earlier step than the last one used is refused too; the next step works.
    assert_error(complete(actor, second["challengeToken"], code=code_at(secret, -1)), 401, "invalid_code")
    ok = complete(actor, second["challengeToken"], code=code_at(secret, 1))
    assert ok.status_code == 200, ok.text

    # Bad requests: no factor, both factors, unknown challenge.
    third = password_login(actor)
    assert_error(complete(actor, third["challengeToken"]), 422)
    assert_error(complete(actor, third["challengeToken"], code="123456", recoveryCode="abcde-fghij"), 422)
    assert_error(complete(actor, "mfa_not-a-real-challenge", code="123456"), 401, "invalid_challenge")


def test_recovery_codes_are_single_use_and_regenerate_replaces_them(api_url: str) -> None:
    actor, secret, codes = enrolled_user(api_url, fresh_ip())
    ch = password_login(actor)["challengeToken"]
    r = complete(actor, ch, recoveryCode=codes[0].upper())  # case and dashes do not matter
    assert r.status_code == 200, r.text
    assert actor.get("/me/mfa").json()["recoveryCodesRemaining"] == 9
    ch = password_login(actor)["challengeToken"]
    assert_error(complete(actor, ch, recoveryCode=codes[0]), 401, "invalid_code")

    # Regenerating needs a current code; afterwards the old codes fail and the new ones work.
    assert_error(actor.post("/me/mfa/recovery-codes", json={"code": "000000"}), 400, "invalid_code")
    assert_error(actor.post("/me/mfa/recovery-codes", json={}), 422)
    r = actor.post("/me/mfa/recovery-codes", json={"code": code_at(secret, 0)})
    assert r.status_code == 200, r.text
    new_codes = r.json()["recoveryCodes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    ch = password_login(actor)["challengeToken"]
    assert_error(complete(actor, ch, recoveryCode=codes[1]), 401, "invalid_code")
    assert complete(actor, ch, recoveryCode=new_codes[0]).status_code == 200


def test_trusted_device_skips_challenge_until_revoked(api_url: str) -> None:
    actor, secret, _codes = enrolled_user(api_url, fresh_ip())
    ch = password_login(actor, deviceName="laptop")["challengeToken"]
    r = complete(actor, ch, code=code_at(secret, 0), trustDevice=True)
    assert r.status_code == 200, r.text
    device_token, device_id = r.json()["trustedDeviceToken"], r.json()["trustedDeviceId"]
    assert device_token and device_id

    direct = password_login(actor, trustedDeviceToken=device_token)
    assert "token" in direct and "mfaRequired" not in direct
    # Another user's login cannot borrow the device token.
    other, _s, _c = enrolled_user(api_url, fresh_ip())
    assert password_login(other, trustedDeviceToken=device_token)["mfaRequired"] is True

    listed = actor.get("/me/trusted-devices")
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [d["id"] for d in items] == [device_id]
    assert items[0]["name"] == "laptop" and items[0]["expiresAt"] > items[0]["createdAt"]
    assert device_token not in listed.text
    assert_error(other.delete(f"/me/trusted-devices/{device_id}"), 404)

    assert actor.delete(f"/me/trusted-devices/{device_id}").status_code == 200
    assert actor.get("/me/trusted-devices").json()["items"] == []
    assert password_login(actor, trustedDeviceToken=device_token)["mfaRequired"] is True
    assert_error(actor.delete(f"/me/trusted-devices/{device_id}"), 404)


def test_code_guessing_is_throttled_and_audited(api_url: str) -> None:
    ip = fresh_ip()
    actor, secret, _codes = enrolled_user(api_url, ip)
    ch = password_login(actor)["challengeToken"]
    statuses = []
    for guess in range(8):
        r = complete(actor, ch, ip=fresh_ip(), code=str(100000 + guess))
        statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5 and 429 in statuses[5:], statuses
    locked = complete(actor, password_login(actor)["challengeToken"], code=code_at(secret, 0))
    err = assert_error(locked, 429, "too_many_attempts")
    assert err["details"]["retryAfter"] > 0

    events = actor.get("/org/audit-events", params={"action": "auth.login.mfa"}).json()["items"]
    assert any(e["outcome"] == "failure" for e in events)


def test_remove_totp_needs_a_current_code(api_url: str) -> None:
    actor, secret, _codes = enrolled_user(api_url, fresh_ip())
    assert_error(actor.delete("/me/mfa/totp", json={"code": "000000"}), 400, "invalid_code")
    assert_error(actor.delete("/me/mfa/totp"), 422)
    assert actor.delete("/me/mfa/totp", json={"code": code_at(secret, 0)}).status_code == 200
    assert actor.get("/me/mfa").json() == {"enabled": False, "required": False, "factors": [],
                                           "recoveryCodesRemaining": 0}
    assert "token" in password_login(actor)
    assert_error(actor.delete("/me/mfa/totp", json={"code": code_at(secret, 1)}), 409, "mfa_not_enrolled")


def test_organization_requiring_mfa_lets_unenrolled_members_only_enroll(api_url: str) -> None:
    owner = signup(api_url)
    r = owner.patch("/org", json={"requireMfa": True})
    assert r.status_code == 200, r.text
    answer = password_login(owner)
    assert answer["mfaEnrollmentRequired"] is True and answer["token"]
    limited = Actor(api_url, answer["token"], extra_headers=dict(owner.extra_headers))
    # Only enrollment (and /me, sign-out) works with this login; nothing else in the organization.
    assert_error(limited.get("/org/teams"), 403, "mfa_enrollment_required")
    assert_error(limited.get("/users"), 403, "mfa_enrollment_required")
    assert limited.get("/me").status_code == 200
    assert limited.get("/me/mfa").json()["required"] is True
    secret = limited.post("/me/mfa/totp").json()["secret"]
    assert_error(limited.post("/me/mfa/totp/verify", json={"code": "000000"}), 400, "invalid_code")
    assert_error(limited.get("/org/teams"), 403, "mfa_enrollment_required")
    assert limited.post("/me/mfa/totp/verify", json={"code": code_at(secret, 0)}).status_code == 200
    assert limited.get("/org/teams").status_code == 200  # the same login is now a full one
    # From now on password sign-in asks for the second factor.
    again = password_login(owner)
    assert again["mfaRequired"] is True and "token" not in again


def test_admin_reset_mfa_removes_factor_and_ends_logins(api_url: str) -> None:
    owner = signup(api_url)
    user = make_user(owner)
    user.extra_headers["X-Forwarded-For"] = fresh_ip()
    secret = user.post("/me/mfa/totp").json()["secret"]
    assert user.post("/me/mfa/totp/verify", json={"code": code_at(secret, 0)}).status_code == 200
    assert password_login(user)["mfaRequired"] is True

    member_caller = make_user(owner)
    assert_error(member_caller.post(f"/users/{user.user_id}/reset-mfa"), 403)
    outsider = signup(api_url)
    assert_error(outsider.post(f"/users/{user.user_id}/reset-mfa"), 404)

    r = owner.post(f"/users/{user.user_id}/reset-mfa")
    assert r.status_code == 200, r.text
    assert_error(user.get("/me"), 401)
    signed_in = password_login(user)
    assert "token" in signed_in
    again = Actor(api_url, signed_in["token"])
    assert again.get("/me/mfa").json()["enabled"] is False
    events = owner.get("/org/audit-events", params={"action": "user.reset_mfa"}).json()["items"]
    assert [e["resourceId"] for e in events] == [user.user_id]


def test_reset_mfa_of_an_owner_needs_an_owner(api_url: str) -> None:
    owner = signup(api_url)
    admin = make_user(owner, "ADMIN")
    assert_error(admin.post(f"/users/{owner.user_id}/reset-mfa"), 403)
    assert_error(owner.post("/users/NOSUCHUSER/reset-mfa"), 404)
    assert_error(owner.post("/users/not-an-id/reset-mfa"), 400)
