"""Invitations, through HTTP and a real SMTP server: create, the emailed link, describe, accept
(signed in or with signup fields), single use under concurrency, expiry, validation, isolation."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from typing import Any

from sqlalchemy import text

from sailplane.config import Settings
from tests.conftest import Mailbox
from tests.service_accounts.helpers import engine, make_api_key, make_service_account, make_team, make_user
from tests.support.actors import PASSWORD, Actor, assert_error, login, signup, unique_email

TOKEN_RE = re.compile(r"/invites/([A-Z0-9]{20})\b")


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def invite(owner: Actor, mailbox: Mailbox, email: str | None = None, **extra: Any) -> tuple[dict[str, Any], str]:
    """Create an invitation and read its token from the email that was delivered."""
    email = email or unique_email("invitee")
    r = owner.post("/org/invites", json={"email": email, **extra})
    assert r.status_code == 201, r.text
    message = mailbox.wait_for(email, subject_contains="invited you")
    match = TOKEN_RE.search(body_of(message))
    assert match, body_of(message)
    return r.json(), match.group(1)


def test_create_invitation_sends_the_link_and_never_returns_the_token(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url, name="Ada Lovelace", org_name="Analytical Engines")
    email = unique_email("Invitee").upper()
    created, token = invite(owner, mailbox, email)
    assert created["email"] == email.lower() and created["status"] == "pending"
    assert created["roleIds"] == ["MEMBER"] and created["teamIds"] == []
    assert created["organizationId"] == owner.org_id and created["createdBy"] == owner.member_id
    assert set(created) == {"id", "organizationId", "email", "roleIds", "teamIds", "status", "expiresAt",
                            "createdAt", "createdBy", "updatedAt", "updatedBy"}
    assert token not in str(created)

    message = mailbox.wait_for(email.lower())
    text = body_of(message)
    assert f"http://127.0.0.1:8000/invites/{token}" in text and f"code {token}" in text
    assert "Ada Lovelace" in str(message["Subject"]) and "Analytical Engines" in str(message["Subject"])
    assert "Analytical Engines" in text and "Ada Lovelace" in text

    described = Actor(api_url).get(f"/invites/{token}")
    assert described.status_code == 200, described.text
    assert described.json() == {
        "id": created["id"], "organizationId": owner.org_id, "organizationName": "Analytical Engines",
        "email": email.lower(), "roleIds": ["MEMBER"], "status": "pending", "expiresAt": created["expiresAt"],
        "invitedBy": "Ada Lovelace",
    }


def test_accept_with_signup_fields_creates_the_account_and_signs_in(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    team = make_team(owner)
    created, token = invite(owner, mailbox, roleIds=["AUDITOR"], teamIds=[team])
    anon = Actor(api_url)
    r = anon.post(f"/invites/{token}/accept", json={"displayName": "Grace", "password": PASSWORD})
    assert r.status_code == 200, r.text
    accepted = r.json()
    assert accepted["organizationId"] == owner.org_id and accepted["tokenType"] == "Bearer"
    assert {"token", "loginId", "userId", "memberId", "expiresAt"} <= set(accepted)

    newcomer = Actor(api_url, accepted["token"])
    me = newcomer.get("/me").json()
    assert me["user"]["email"] == created["email"] and me["user"]["emailVerified"] is True
    assert me["organizationId"] == owner.org_id and me["memberId"] == accepted["memberId"]
    assert me["roleIds"] == ["AUDITOR"]
    teams = newcomer.get("/me/teams").json()["items"]
    assert [(t["teamId"], t["roleIds"]) for t in teams] == [(team, ["TEAMDEVELOPER"])]
    assert login(api_url, created["email"], PASSWORD).status_code == 200

    assert_error(anon.post(f"/invites/{token}/accept", json={"displayName": "Again", "password": PASSWORD}),
                 409, "invite_used")
    assert_error(newcomer.post(f"/invites/{token}/accept"), 409, "invite_used")
    assert anon.get(f"/invites/{token}").json()["status"] == "accepted"
    assert owner.get("/org/audit-events", params={"resourceId": created["id"]}).json()["items"][0]["action"] \
        == "invitation.accept"


def test_a_signed_in_user_accepts_into_a_second_organization(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    existing = signup(api_url)
    team = make_team(owner)
    _, token = invite(owner, mailbox, existing.email, teamIds=[team])
    r = existing.post(f"/invites/{token}/accept")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"organizationId", "memberId", "userId"}
    assert body["organizationId"] == owner.org_id and body["userId"] == existing.user_id
    in_new_org = existing.as_org(owner.org_id or "")
    me = in_new_org.get("/me").json()
    assert me["memberId"] == body["memberId"] and me["roleIds"] == ["MEMBER"]
    assert [t["teamId"] for t in in_new_org.get("/me/teams").json()["items"]] == [team]
    # Their own organization is unchanged.
    assert existing.get("/me").json()["organizationId"] == existing.org_id


def test_accepting_needs_the_invited_identity(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    existing, someone_else = signup(api_url), signup(api_url)
    _, token = invite(owner, mailbox, existing.email)
    anon = Actor(api_url)
    assert_error(someone_else.post(f"/invites/{token}/accept"), 403)
    assert_error(anon.post(f"/invites/{token}/accept"), 401)
    assert_error(anon.post(f"/invites/{token}/accept", json={}), 401)
    assert_error(anon.post(f"/invites/{token}/accept", json={"password": PASSWORD}), 422)
    assert_error(anon.post(f"/invites/{token}/accept", json={"displayName": "X", "password": PASSWORD}),
                 409, "account_exists")
    assert_error(existing.post(f"/invites/{token}/accept", json={"displayName": "X", "password": PASSWORD}), 422)
    assert_error(Actor(api_url, "spl_forged").post(f"/invites/{token}/accept"), 401)
    sa = make_service_account(owner)["id"]
    assert_error(Actor(api_url, make_api_key(owner, sa)["secret"]).post(f"/invites/{token}/accept"), 403)
    # None of the failures used the invitation.
    assert anon.get(f"/invites/{token}").json()["status"] == "pending"
    assert existing.post(f"/invites/{token}/accept").status_code == 200


def test_signup_fields_are_validated(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    _, token = invite(owner, mailbox)
    anon = Actor(api_url)
    path = f"/invites/{token}/accept"
    assert_error(anon.post(path, json={"displayName": "X", "password": "short"}), 422)
    assert_error(anon.post(path, json={"displayName": "", "password": PASSWORD}), 422)
    assert_error(anon.post(path, json={"displayName": "X", "password": PASSWORD, "email": "me@x.com"}), 422)
    assert_error(anon.post(path, content=b"{oops", headers={"Content-Type": "application/json"}), 400,
                 "malformed_json")
    assert anon.get(f"/invites/{token}").json()["status"] == "pending"


def test_unknown_and_malformed_tokens(api_url: str) -> None:
    anon = Actor(api_url)
    assert_error(anon.get("/invites/ABCDEFGHJKMNPQRSTVWX"), 404)
    assert_error(anon.post("/invites/ABCDEFGHJKMNPQRSTVWX/accept", json={"displayName": "X", "password": PASSWORD}),
                 404)
    assert_error(anon.get("/invites/not-a-token"), 400)
    assert_error(anon.get("/invites/ABCDEFGHJKMNPQRSTVWXYZ"), 400)


def test_an_invitation_is_used_once_even_under_concurrency(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    _, token = invite(owner, mailbox)
    anon = Actor(api_url)

    def attempt(i: int) -> int:
        return anon.post(f"/invites/{token}/accept",
                         json={"displayName": f"Racer {i}", "password": PASSWORD}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(attempt, range(6)))
    assert sorted(codes) == [200] + [409] * 5, codes
    members = owner.get("/users").json()["items"]
    assert len(members) == 2


def test_expired_invitations_cannot_be_accepted(short_ttl_api_url: str, mailbox: Mailbox) -> None:
    owner = signup(short_ttl_api_url)
    created, token = invite(owner, mailbox)
    time.sleep(1.2)
    anon = Actor(short_ttl_api_url)
    assert anon.get(f"/invites/{token}").json()["status"] == "expired"
    assert_error(anon.post(f"/invites/{token}/accept", json={"displayName": "Late", "password": PASSWORD}),
                 409, "invite_expired")
    assert len(owner.get("/users").json()["items"]) == 1
    assert owner.get("/org/audit-events", params={"resourceId": created["id"]}).json()["items"][0]["action"] \
        == "invitation.create"


def test_create_invitation_validation(api_url: str, mailbox: Mailbox) -> None:
    owner, stranger = signup(api_url), signup(api_url)
    member = make_user(owner)
    foreign_team = make_team(stranger)
    assert_error(owner.post("/org/invites", json={"email": member.email}), 409, "already_member")
    assert_error(owner.post("/org/invites", json={"email": owner.email.upper() if owner.email else ""}), 409,
                 "already_member")
    assert_error(owner.post("/org/invites", json={"email": "not-an-email"}), 422)
    assert_error(owner.post("/org/invites", json={}), 422)
    assert_error(owner.post("/org/invites", json={"email": unique_email(), "token": "MINE"}), 422)
    err = assert_error(owner.post("/org/invites", json={"email": unique_email(), "roleIds": ["WIZARD"]}), 422)
    assert "roleIds" in err["details"]["fieldErrors"]
    assert_error(owner.post("/org/invites", json={"email": unique_email(), "roleIds": ["bad id"]}), 422)
    err = assert_error(owner.post("/org/invites", json={"email": unique_email(), "teamIds": [foreign_team]}), 422)
    assert "teamIds" in err["details"]["fieldErrors"]
    assert_error(owner.post("/org/invites", json={"email": unique_email(), "teamIds": ["UNKNOWN1"]}), 422)
    assert_error(owner.post("/org/invites", content=b"[", headers={"Content-Type": "application/json"}), 400,
                 "malformed_json")
    assert_error(Actor(api_url).post("/org/invites", json={"email": unique_email()}), 401)
    # An Owner may invite an Owner.
    created, _ = invite(owner, mailbox, roleIds=["OWNER"])
    assert created["roleIds"] == ["OWNER"]


def test_who_may_invite_and_with_which_roles(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    member, admin = make_user(owner), make_user(owner, "ADMIN")
    refused = [unique_email("refused") for _ in range(3)]
    assert_error(member.post("/org/invites", json={"email": refused[0]}), 403)
    assert_error(admin.post("/org/invites", json={"email": refused[1], "roleIds": ["OWNER"]}), 403)
    created, _ = invite(admin, mailbox, roleIds=["ADMIN"])
    assert created["createdBy"] == admin.member_id
    # A policy with CanInviteMembers lets a member invite Members, but not hand out higher roles.
    owner.put(f"/org/policies/{member.user_id}", json={"permissions": ["CanInviteMembers"]})
    assert_error(member.post("/org/invites", json={"email": refused[2], "roleIds": ["ADMIN"]}), 403)
    invite(member, mailbox)
    # Nothing was mailed for refused invitations (the accepted one above was delivered after them).
    assert all(mailbox.to(email) == [] for email in refused)


def test_when_the_email_cannot_be_sent_nothing_is_left_behind(broken_mail_api_url: str, mailbox: Mailbox,
                                                              settings: Settings) -> None:
    owner = signup(broken_mail_api_url)
    email = unique_email("unreachable")
    err = assert_error(owner.post("/org/invites", json={"email": email}), 503, "mail_unavailable")
    assert err["details"]["retryable"] is True
    events = owner.get("/org/audit-events", params={"resourceType": "invitation"}).json()["items"]
    # Both events come from one request, possibly within one millisecond, so their order is not asserted.
    assert sorted((e["action"], e["outcome"]) for e in events) == [("invitation.create", "success"),
                                                                  ("invitation.withdraw", "failure")]
    assert mailbox.to(email) == []
    with engine(settings.database_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM invitations WHERE email = :e"), {"e": email}).scalar() == 0


def test_a_service_account_key_can_invite(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    sa = make_service_account(owner, "onboarding-bot")["id"]
    owner.put(f"/org/policies/{sa}", json={"permissions": ["CanInviteMembers"]})
    bot = Actor(api_url, make_api_key(owner, sa)["secret"])
    created, token = invite(bot, mailbox)
    assert created["createdBy"] == sa
    assert Actor(api_url).get(f"/invites/{token}").json()["invitedBy"] == "onboarding-bot"


def test_invitations_are_audited(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    created, token = invite(owner, mailbox)
    r = Actor(api_url).post(f"/invites/{token}/accept", json={"displayName": "New", "password": PASSWORD})
    events = owner.get("/org/audit-events", params={"resourceType": "invitation"}).json()["items"]
    assert [(e["action"], e["resourceId"]) for e in events] == [
        ("invitation.accept", created["id"]), ("invitation.create", created["id"])
    ]
    assert events[0]["actorId"] == r.json()["memberId"] and events[1]["actorId"] == owner.member_id
    assert events[1]["details"]["email"] == created["email"]
    assert all(token not in str(e) for e in events)


def test_a_new_account_joining_an_organization_that_requires_mfa_can_only_enroll(api_url: str,
                                                                                 mailbox: Mailbox) -> None:
    """The account created by accepting an invitation has no authenticator: in an organization that requires
    MFA, its first login may only enroll one, as a password sign-in would answer (it was a full login)."""
    owner = signup(api_url)
    assert owner.patch("/org", json={"requireMfa": True}).status_code == 200
    _, token = invite(owner, mailbox)
    r = Actor(api_url).post(f"/invites/{token}/accept", json={"displayName": "New", "password": PASSWORD})
    assert r.status_code == 200, r.text
    limited = Actor(api_url, r.json()["token"])
    assert_error(limited.get("/org/teams"), 403, "mfa_enrollment_required")
    assert_error(limited.get("/users"), 403, "mfa_enrollment_required")
    assert limited.get("/me/mfa").json()["required"] is True
    assert r.json()["mfaEnrollmentRequired"] is True

    # Without the requirement the same path gives a full login, and says so.
    relaxed = signup(api_url)
    _, token = invite(relaxed, mailbox)
    r = Actor(api_url).post(f"/invites/{token}/accept", json={"displayName": "New", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["mfaEnrollmentRequired"] is False
    assert Actor(api_url, r.json()["token"]).get("/org/teams").status_code == 200
