"""Email flows through HTTP with the real SMTP server: one-time sign-in codes, email verification,
extra addresses and password reset."""

from __future__ import annotations

import re
import time
from email.message import Message
from typing import Any

import httpx
from sqlalchemy import text

from sailplane.config import Settings
from tests.conftest import Mailbox
from tests.mfa.helpers import enrolled_user, fresh_ip
from tests.service_accounts.helpers import engine
from tests.support.actors import PASSWORD, Actor, assert_error, login, signup, unique_email

ACCEPTED = {"message": "If the address belongs to an account, an email is on its way."}
TOKEN_RE = re.compile(r"token=([A-Za-z0-9_\-]+)")
CODE_RE = re.compile(r"sign-in code is ([0-9]{6,8})")


def body_of(msg: Message) -> str:
    part = msg.get_payload(0) if msg.is_multipart() else msg
    payload = part.get_payload(decode=True)  # type: ignore[union-attr]
    return payload.decode()  # type: ignore[union-attr, no-any-return]


def anon(api_url: str, ip: str | None = None) -> Actor:
    return Actor(api_url, extra_headers={"X-Forwarded-For": ip or fresh_ip()})


def latest(mailbox: Mailbox, to: str, subject: str, count: int = 1) -> str:
    deadline = time.time() + 10
    while time.time() < deadline:
        found = [m for m in mailbox.to(to) if subject in str(m["Subject"])]
        if len(found) >= count:
            return body_of(found[-1])
        time.sleep(0.05)
    raise AssertionError(f"no mail {subject!r} #{count} to {to}")


def request_code(api_url: str, mailbox: Mailbox, email: str, count: int = 1) -> str:
    r = anon(api_url).post("/auth/login/code", json={"email": email})
    assert r.status_code == 202 and r.json() == ACCEPTED, r.text
    match = CODE_RE.search(latest(mailbox, email, "sign-in code", count))
    assert match
    return match.group(1)


def test_signup_sends_a_verification_link_that_works_once(api_url: str, mailbox: Mailbox) -> None:
    actor = signup(api_url)
    assert actor.get("/me").json()["user"]["emailVerified"] is False
    token = TOKEN_RE.search(latest(mailbox, actor.email or "", "Verify your email"))
    assert token
    r = anon(api_url).post("/auth/email/verify", json={"token": token.group(1)})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == actor.email and r.json()["verifiedAt"]
    assert actor.get("/me").json()["user"]["emailVerified"] is True
    assert_error(anon(api_url).post("/auth/email/verify", json={"token": token.group(1)}), 400, "invalid_token")
    assert_error(anon(api_url).post("/auth/email/verify", json={"token": "made-up"}), 400, "invalid_token")
    assert_error(anon(api_url).post("/auth/email/verify", json={}), 422)
    events = actor.get("/org/audit-events", params={"action": "auth.email.verify"}).json()["items"]
    assert [e["outcome"] for e in events] == ["failure", "success"]  # newest first: the replay, then the use


def test_login_code_signs_in_once_and_unknown_addresses_look_the_same(api_url: str, mailbox: Mailbox) -> None:
    actor = signup(api_url)
    code = request_code(api_url, mailbox, actor.email or "")
    assert len(code) == 8
    ghost = unique_email("ghost")
    r = anon(api_url).post("/auth/login/code", json={"email": ghost})
    assert r.status_code == 202 and r.json() == ACCEPTED

    assert_error(anon(api_url).post("/auth/login/code/verify", json={"email": actor.email, "code": "00000000"
                                                                     if code != "00000000" else "11111111"}),
                 401, "invalid_code")
    r = anon(api_url).post("/auth/login/code/verify", json={"email": actor.email.upper(), "code": code})  # type: ignore[union-attr]
    assert r.status_code == 200, r.text
    assert Actor(api_url, r.json()["token"]).get("/me").status_code == 200
    assert_error(anon(api_url).post("/auth/login/code/verify", json={"email": actor.email, "code": code}),
                 401, "invalid_code")
    assert_error(anon(api_url).post("/auth/login/code/verify", json={"email": ghost, "code": "12345678"}),
                 401, "invalid_code")
    assert_error(anon(api_url).post("/auth/login/code/verify", json={"email": ghost, "code": "12ab"}), 422)
    assert mailbox.to(ghost) == []
    methods = {x["method"] for x in Actor(api_url, r.json()["token"]).get("/me/logins").json()["items"]}
    assert "login_code" in methods
    events = actor.get("/org/audit-events", params={"action": "auth.login_code.verify"}).json()["items"]
    assert sorted(e["outcome"] for e in events) == ["failure", "failure", "success"]


def test_new_code_replaces_old_and_expired_codes_fail(api_url: str, mailbox: Mailbox, settings: Settings) -> None:
    actor = signup(api_url)
    first = request_code(api_url, mailbox, actor.email or "", 1)
    second = request_code(api_url, mailbox, actor.email or "", 2)
    if first != second:
        assert_error(anon(api_url).post("/auth/login/code/verify", json={"email": actor.email, "code": first}), 401)
    with engine(settings.database_url).begin() as conn:
        conn.execute(text("UPDATE login_codes SET expires_at = :t WHERE email = :e"),
                     {"t": "2000-01-01 00:00:00+00:00", "e": actor.email})
    assert_error(anon(api_url).post("/auth/login/code/verify", json={"email": actor.email, "code": second}),
                 401, "invalid_code")
    with engine(settings.database_url).connect() as conn:
        hashes = [row[0] for row in conn.execute(text("SELECT code_hash FROM login_codes WHERE email = :e"),
                                                 {"e": actor.email})]
    assert hashes and first not in hashes and second not in hashes


def test_login_code_guessing_is_throttled(api_url: str, mailbox: Mailbox) -> None:
    actor = signup(api_url)
    code = request_code(api_url, mailbox, actor.email or "")
    wrong = "99999999" if code != "99999999" else "88888888"
    statuses = [anon(api_url).post("/auth/login/code/verify", json={"email": actor.email, "code": wrong}).status_code
                for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses
    err = assert_error(anon(api_url).post("/auth/login/code/verify", json={"email": actor.email, "code": code}), 429)
    assert err["details"]["retryAfter"] > 0


def test_login_code_answers_mfa_challenge_when_enrolled(api_url: str, mailbox: Mailbox) -> None:
    actor, _secret, _codes = enrolled_user(api_url, fresh_ip())
    code = request_code(api_url, mailbox, actor.email or "")
    r = anon(api_url).post("/auth/login/code/verify", json={"email": actor.email, "code": code})
    assert r.status_code == 200, r.text
    assert r.json()["mfaRequired"] is True and "token" not in r.json()


def test_my_emails_add_verify_list_remove(api_url: str, mailbox: Mailbox) -> None:
    actor = signup(api_url)
    other = signup(api_url)
    extra = unique_email("extra")
    r = actor.post("/me/emails", json={"email": extra})
    assert r.status_code == 201, r.text
    assert r.json()["verified"] is False and r.json()["primary"] is False
    token = TOKEN_RE.search(latest(mailbox, extra, "Verify your email"))
    assert token

    listed = actor.get("/me/emails").json()
    assert [(i["email"], i["primary"], i["verified"]) for i in listed["items"]] == [
        (actor.email, True, False), (extra, False, False)]
    # limit + marker: the primary address counts on the first page.
    page1 = actor.get("/me/emails", params={"limit": 1}).json()
    assert [i["email"] for i in page1["items"]] == [actor.email] and page1["marker"]
    page2 = actor.get("/me/emails", params={"limit": 1, "marker": page1["marker"]}).json()
    assert [i["email"] for i in page2["items"]] == [extra] and page2["marker"] is None

    assert anon(api_url).post("/auth/email/verify", json={"token": token.group(1)}).status_code == 200
    assert actor.get("/me/emails").json()["items"][1]["verified"] is True

    assert_error(actor.post("/me/emails", json={"email": extra}), 409, "email_exists")
    assert_error(actor.post("/me/emails", json={"email": actor.email}), 409, "email_exists")
    assert_error(actor.post("/me/emails", json={"email": other.email}), 409, "email_taken")
    assert_error(other.post("/me/emails", json={"email": extra}), 409, "email_taken")
    assert_error(actor.post("/me/emails", json={"email": "not-an-email"}), 422)

    assert_error(actor.delete(f"/me/emails/{actor.email}"), 409, "primary_email")
    assert_error(other.delete(f"/me/emails/{extra}"), 404)
    assert actor.delete(f"/me/emails/{extra}").status_code == 200
    assert [i["email"] for i in actor.get("/me/emails").json()["items"]] == [actor.email]
    assert_error(actor.delete(f"/me/emails/{extra}"), 404)
    actions = {e["action"] for e in actor.get("/org/audit-events").json()["items"]}
    assert {"user.email.add", "user.email.remove"} <= actions


def test_password_reset_by_emailed_link(api_url: str, mailbox: Mailbox, settings: Settings) -> None:
    actor = signup(api_url)
    ghost = unique_email("ghost")
    known = anon(api_url).post("/auth/password/forgot", json={"email": actor.email})
    unknown = anon(api_url).post("/auth/password/forgot", json={"email": ghost})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json() == ACCEPTED
    token = TOKEN_RE.search(latest(mailbox, actor.email or "", "Reset your Sailplane password"))
    assert token

    assert_error(anon(api_url).post("/auth/password/reset", json={"token": token.group(1), "newPassword": "short"}),
                 422)
    assert_error(anon(api_url).post("/auth/password/reset", json={"token": "bogus", "newPassword": "a-new-password-1"}),
                 400, "invalid_token")
    r = anon(api_url).post("/auth/password/reset", json={"token": token.group(1), "newPassword": "a-new-password-1"})
    assert r.status_code == 200, r.text
    assert_error(actor.get("/me"), 401)  # every login ended
    assert_error(login(api_url, actor.email or "", PASSWORD, **{"X-Forwarded-For": fresh_ip()}), 401)
    assert login(api_url, actor.email or "", "a-new-password-1").status_code == 200
    assert_error(anon(api_url).post("/auth/password/reset", json={"token": token.group(1),
                                                                   "newPassword": "another-password-2"}),
                 400, "invalid_token")
    assert mailbox.to(ghost) == []

    # An expired link fails too.
    assert anon(api_url).post("/auth/password/forgot", json={"email": actor.email}).status_code == 202
    second = TOKEN_RE.search(latest(mailbox, actor.email or "", "Reset your Sailplane password", 2))
    assert second
    with engine(settings.database_url).begin() as conn:
        conn.execute(text("UPDATE email_tokens SET expires_at = :t WHERE user_id = :u"),
                     {"t": "2000-01-01 00:00:00+00:00", "u": actor.user_id})
        stored = [row[0] for row in conn.execute(text("SELECT token_hash FROM email_tokens WHERE user_id = :u"),
                                                 {"u": actor.user_id})]
    assert second.group(1) not in stored
    assert_error(anon(api_url).post("/auth/password/reset", json={"token": second.group(1),
                                                                   "newPassword": "another-password-2"}),
                 400, "invalid_token")
    fresh = Actor(api_url, login(api_url, actor.email or "", "a-new-password-1").json()["token"], actor.org_id)
    outcomes = [e["outcome"] for e in fresh.get("/org/audit-events", params={"action": "auth.password.reset"})
                .json()["items"]]
    assert sorted(outcomes) == ["failure", "failure", "success"]  # the reused and the expired link


def error_shape(response: httpx.Response) -> dict[str, Any]:
    """The error body without its request ID, to compare two answers."""
    err = dict(response.json()["error"])
    err["details"] = {k: v for k, v in err["details"].items() if k != "requestId"}
    return err


def test_login_code_works_for_every_verified_address_only(api_url: str, mailbox: Mailbox) -> None:
    actor = signup(api_url)
    verified, unverified, ghost = unique_email("alias"), unique_email("pending"), unique_email("ghost")
    assert actor.post("/me/emails", json={"email": verified}).status_code == 201
    assert actor.post("/me/emails", json={"email": unverified}).status_code == 201
    token = TOKEN_RE.search(latest(mailbox, verified, "Verify your email"))
    assert token and anon(api_url).post("/auth/email/verify", json={"token": token.group(1)}).status_code == 200
    latest(mailbox, unverified, "Verify your email")

    # A verified added address: the code goes to that address and signs in to the same account.
    code = request_code(api_url, mailbox, verified.upper())
    r = anon(api_url).post("/auth/login/code/verify", json={"email": verified, "code": code})
    assert r.status_code == 200, r.text
    assert r.json()["userId"] == actor.user_id
    assert Actor(api_url, r.json()["token"]).get("/me").json()["user"]["email"] == actor.email
    assert actor.get("/me").json()["user"]["emailVerified"] is False  # the primary address is not proven by it
    assert_error(anon(api_url).post("/auth/login/code/verify", json={"email": verified, "code": code}),
                 401, "invalid_code")

    # An unverified added address answers exactly like an unknown one, and gets no code.
    for address in (unverified, ghost):
        r = anon(api_url).post("/auth/login/code", json={"email": address})
        assert r.status_code == 202 and r.json() == ACCEPTED
    pending = anon(api_url).post("/auth/login/code/verify", json={"email": unverified, "code": "12345678"})
    unknown = anon(api_url).post("/auth/login/code/verify", json={"email": ghost, "code": "12345678"})
    assert_error(pending, 401, "invalid_code")
    assert error_shape(pending) == error_shape(unknown)
    assert request_code(api_url, mailbox, actor.email or "")  # a later mail arrived, so would an earlier one
    assert [m["Subject"] for m in mailbox.to(unverified)] == ["Verify your email address for Sailplane"]
    assert mailbox.to(ghost) == []

    # A code sent before the address was removed from the account no longer signs in.
    late = request_code(api_url, mailbox, verified, 2)
    assert actor.delete(f"/me/emails/{verified}").status_code == 200
    assert_error(anon(api_url).post("/auth/login/code/verify", json={"email": verified, "code": late}),
                 401, "invalid_code")
    r = anon(api_url).post("/auth/login/code", json={"email": verified})
    assert r.status_code == 202 and r.json() == ACCEPTED
    assert request_code(api_url, mailbox, actor.email or "", 2)
    assert len([m for m in mailbox.to(verified) if "sign-in code" in str(m["Subject"])]) == 2

    events = actor.get("/org/audit-events", params={"action": "auth.login_code.verify"}).json()["items"]
    assert [e["details"].get("primaryEmail") for e in events if e["outcome"] == "success"] == [False]
